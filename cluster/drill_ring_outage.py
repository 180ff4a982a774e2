"""The ``ring-outage`` drill: ``./letsema drill ring-outage [--district X] [--seconds S]`` (runbook
docs/runbooks/ring-outage.md).

The whole Cassandra ring stops (every node, cleanly: what a data-centre power cut or a bad rolling upgrade looks
like to the districts) while a district keeps working: repayments through its API (local work: they must all be
acknowledged and kept) and loan approvals (cross-network decisions: each needs the stacking guard's
compare-and-set on the ring, so each must *fail closed* with ``503 credit_network_unavailable`` — never approve
blind). The ring starts again; the drill measures how long the district's outbox backlog (the credit events of the
repayments made during the outage) takes to drain, reconciles the district's events with the ring, and checks that
approvals pass again.
"""

from __future__ import annotations

import sys
import time
import uuid
from datetime import UTC, datetime

import requests

from cluster import cassandra, pg_standby
from cluster.commands import cluster_lock
from cluster.drills import (
    ApprovalLoad,
    DrillRefused,
    LoadGenerator,
    Report,
    _duplicates,
    _error_code,
    _guard,
    _healthz,
    _manage_json,
    _outbox_drains,
    _outbox_pending,
    _present,
    _primary,
    _print_rows,
    _save,
    _say,
    _setup,
)
from cluster.profiles import Profile

TARGET_DRAIN_S = 60.0
FAIL_CLOSED_CODE = "credit_network_unavailable"


def _max_seq(p: Profile, code: str) -> int:
    rows = pg_standby.query(_primary(p, code), "SELECT coalesce(max(seq), 0) FROM replication_outboxevent",
                            dbname=p.district(code).pg_name)
    return rows[0][0]


def _unshipped_upto(p: Profile, code: str, seq: int) -> int:
    rows = pg_standby.query(_primary(p, code), "SELECT count(*) FROM replication_outboxevent "
                                               "WHERE shipped_at IS NULL AND seq <= %s", (seq,),
                            dbname=p.district(code).pg_name)
    return rows[0][0]


def _approve_each(fx: dict, loans: list[int]) -> list[dict]:
    """Approve ``loans`` one after the other through the API (the ring is back: each must pass)."""
    sess = requests.Session()
    sess.headers["Authorization"] = f"Bearer {fx['token']}"
    results = []
    for lid in loans:
        try:
            r = sess.post(f"{fx['url']}/api/v1/loans/{lid}/approve", json={}, timeout=30)
            results.append({"loan": lid, "status": r.status_code, "code": _error_code(r)})
        except requests.RequestException as exc:
            results.append({"loan": lid, "status": None, "code": f"connection: {type(exc).__name__}"})
    return results


def ring_outage(p: Profile, code: str, *, down_s: float = 300.0, approvals: int = 6, clients: int = 1,
                warmup_writes: int = 5, allow_remote: bool = False, out=sys.stdout) -> Report:
    """Stop the whole ring for ``down_s`` seconds under load in ``code``, start it again, measure the catch-up."""
    _guard(p, code, allow_remote)
    n = cassandra.ring_size(p)
    if n < 1:
        raise DrillRefused("this cluster has no ring")
    down = [i for i in range(1, n + 1) if not cassandra.is_up(p, i)]
    if down:
        raise DrillRefused(f"ring node(s) {down} are already down; start them first ('./letsema ring-start N')")
    if _healthz(p.district(code).public_url) != 200:
        raise DrillRefused(f"{code} is not healthy before the drill; see './letsema status'")
    say = _say(out)
    rep = Report(scenario="ring-outage", profile=p.name, district=code,
                 started_at=datetime.now(UTC).isoformat(timespec="seconds"),
                 targets={"backlog_drain_s_max": TARGET_DRAIN_S, "acknowledged_writes_lost_max": 0,
                          "approvals_passed_without_ring_max": 0, "events_missing_max": 0})
    say(f"ring-outage drill on {p.name}: all {n} ring node(s) stop for {down_s:.0f} s, load in {code}")
    fx = _setup(p, code, loans=2, review_loans=approvals + 2)
    during_loans, after_loans = fx["review_loans"][:approvals], fx["review_loans"][approvals:]
    run_id = uuid.uuid4().hex[:10]
    load = LoadGenerator(fx["url"], fx["token"], fx["loans"], run_id, clients=clients)
    appr = ApprovalLoad(fx["url"], fx["token"], during_loans, every=max(0.5, down_s / max(approvals, 1) / 2))
    tl: dict[str, float | None] = {"ring_stopped": None, "ring_restart": None, "ring_up": None, "drained": None,
                                    "load_stopped": None}
    t0 = time.monotonic()
    start_errors: list[str] = []
    peak_backlog = 0
    load.start()
    with cluster_lock(p):  # no `up` may start the ring while the drill holds it down
        try:
            load.wait_acknowledged(warmup_writes)
            say("stop every ring node")
            for i in range(1, n + 1):
                cassandra.stop_node(p, i)
            tl["ring_stopped"] = time.monotonic()
            appr.start()
            end = time.monotonic() + down_s
            while time.monotonic() < end:
                peak_backlog = max(peak_backlog, _outbox_pending(fx["url"]) or 0)
                time.sleep(min(2.0, max(0.0, end - time.monotonic())))
            appr.stop()
            peak_backlog = max(peak_backlog, _outbox_pending(fx["url"]) or 0)
            say(f"start the ring again (outbox backlog in {code}: {peak_backlog} events)")
            tl["ring_restart"] = time.monotonic()
            start_errors = cassandra.start_nodes(p, list(range(1, n + 1)), n)
            tl["ring_up"] = time.monotonic()
            # the backlog = every event enqueued until the ring came back; the load goes on, so "drained" means
            # none of those is still unshipped (newer events are normal traffic)
            backlog_upto = _max_seq(p, code)
            deadline = time.monotonic() + TARGET_DRAIN_S * 3
            while time.monotonic() < deadline:
                if _unshipped_upto(p, code, backlog_upto) == 0:
                    tl["drained"] = time.monotonic()
                    break
                time.sleep(0.5)
        finally:
            appr.stop()
            load.stop()
            tl["load_stopped"] = time.monotonic()
            if not all(cassandra.is_up(p, i) for i in range(1, n + 1)):  # never leave the ring down
                start_errors += cassandra.start_nodes(p, list(range(1, n + 1)), n)

    say("approvals after recovery, then reconcile the district's events with the ring")
    after = _approve_each(fx, after_loans)
    rc, recon, err = _manage_json(p, code, "reconcile_ring", "--json")
    d = p.district(code)
    inst = _primary(p, code)
    acked = load.acknowledged()
    ids = [w.repayment_id for w in acked]
    present = _present(inst, d.pg_name, ids)
    stopped, up_at = tl["ring_stopped"] or 0, tl["ring_up"] or float("inf")
    while_down = [w for w in acked if w.acked_at and stopped <= w.acked_at <= (tl["ring_restart"] or up_at)]
    appr_down = [a for a in appr.results if stopped <= a["at"] < (tl["ring_restart"] or up_at)]
    blind = [a for a in appr_down if a["status"] == 200]
    closed = [a for a in appr_down if a["status"] == 503 and a["code"] == FAIL_CLOSED_CODE]
    after_ok = [a for a in after if a["status"] == 200]
    rep.timeline_s = {k: (round(v - t0, 2) if v else None) for k, v in tl.items()}
    rep.results = {
        "outage_s": round((tl["ring_restart"] or 0) - stopped, 1) if tl["ring_restart"] else None,
        "repayments_acknowledged_while_ring_down": len(while_down),
        "rpo_acknowledged_writes_lost": len(ids) - len(present),
        "approvals_while_ring_down": len(appr_down),
        "approvals_failed_closed": len(closed),
        "approvals_passed_without_ring": len(blind),
        "approval_answers_while_down": sorted({f"{a['status']} {a['code']}" for a in appr_down}),
        "approvals_after_recovery_ok": f"{len(after_ok)}/{len(after)}",
        "outbox_backlog_peak": peak_backlog,
        "ring_restart_s": round(up_at - tl["ring_restart"], 1) if tl["ring_up"] and tl["ring_restart"] else None,
        "backlog_drain_s": round(tl["drained"] - tl["ring_up"], 1) if tl["drained"] and tl["ring_up"] else None,
        "events_checked": recon.get("checked") if recon else None,
        "events_missing": recon.get("missing") if recon else None,
        "ring_rows_unknown_here": recon.get("unknown_in_ring") if recon else None,
    }
    rep.writes = {"attempted": len(load.writes), "acknowledged": len(acked), "present_after": len(present),
                  "lost_ids": sorted(set(ids) - present),
                  "duplicates": _duplicates(inst, d.pg_name, fx["mfi_id"], run_id)}
    rep.errors_seen_by_clients = dict(load.errors) | {
        f"approve {s}": sum(1 for a in appr.results if f"{a['status']} {a['code']}" == s)
        for s in {f"{a['status']} {a['code']}" for a in appr.results if a["status"] != 200}}
    if recon is None:
        rep.notes.append(f"reconcile_ring did not answer (exit {rc}): {err}")
    if start_errors:
        rep.notes += start_errors
    problems = [f"ring node {i} down" for i in range(1, n + 1) if not cassandra.is_up(p, i)]
    if not _outbox_drains(fx["url"]):
        problems.append(f"{code}: outbox not drained within 30 s")
    if _healthz(fx["url"]) != 200:
        problems.append(f"node {code}: /healthz not 200")
    rep.not_healthy, rep.healthy_after = problems, not problems
    r = rep.results
    rep.passed = bool(while_down and r["rpo_acknowledged_writes_lost"] == 0 and rep.writes["duplicates"] == 0
                      and appr_down and not blind and len(closed) == len(appr_down)
                      and after_ok and len(after_ok) == len(after)
                      and r["backlog_drain_s"] is not None and r["backlog_drain_s"] <= TARGET_DRAIN_S
                      and r["events_missing"] == 0 and r["ring_rows_unknown_here"] == 0 and rep.healthy_after)
    rep.ended_at = datetime.now(UTC).isoformat(timespec="seconds")
    _save(p, rep)
    _print_rows(rep, [
        ("scenario", f"{rep.scenario}: all {n} ring node(s) down for {r['outage_s']} s, load in {p.name}/{code}"),
        ("started / ended (UTC)", f"{rep.started_at} / {rep.ended_at}"),
        ("repayments acknowledged while the ring was down", r["repayments_acknowledged_while_ring_down"]),
        ("repayments acknowledged / present / lost", f"{len(acked)} / {len(present)} / {len(ids) - len(present)}"),
        ("approvals while down: failed closed / passed", f"{len(closed)} / {len(blind)} of {len(appr_down)}  "
                                                         f"(target: all {FAIL_CLOSED_CODE}, none passed)"),
        ("approvals after recovery ok", r["approvals_after_recovery_ok"]),
        ("outbox backlog at its peak (events)", r["outbox_backlog_peak"]),
        ("ring back after (s)", r["ring_restart_s"]),
        ("backlog drained after the ring was back (s)", f"{r['backlog_drain_s']}  (target <= {TARGET_DRAIN_S:.0f})"),
        ("events checked / missing in the ring", f"{r['events_checked']} / {r['events_missing']}"),
        ("errors seen by clients", ", ".join(f"{k} x{v}" for k, v in rep.errors_seen_by_clients.items()) or "none"),
        ("cluster healthy after", "yes" if rep.healthy_after else "NO: " + "; ".join(rep.not_healthy)),
        ("result", "PASS" if rep.passed else "FAIL"),
        ("report", rep.file),
    ], out)
    return rep
