"""The ``peer-down`` drill: ``./letsema drill peer-down --district X [--observer Y]`` (runbook
docs/runbooks/peer-down.md).

One district node goes down whole (its gunicorn node and its Celery worker; its PostgreSQL keeps running, as when
the node's host is rebooted) while another district (the *observer*) keeps working: repayments through its API, and
network borrower look-ups that fan out to every peer. The drill shows, in numbers, that

- the other districts keep serving: no look-up fails, each one answers at once with the down district listed under
  ``missing`` (a *partial* answer), and the observer's writes are all acknowledged and present;
- the district rejoins and catches up: credit events it committed just before it went down (its worker was stopped
  first, so they waited in its outbox) reach the ring once it is back, its peers' back-off lets it back into their
  look-ups, and reconciliation of its events with the ring finds no gap.
"""

from __future__ import annotations

import sys
import threading
import time
import uuid
from datetime import UTC, date, datetime

import requests

from cluster import nodes, pg_standby
from cluster.commands import cluster_lock
from cluster.drills import (
    DrillRefused,
    LoadGenerator,
    Report,
    _duplicates,
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
from cluster.procs import pid_alive, read_pid
from cluster.profiles import Profile

TARGET_LOOKUP_FAILURES = 0
TARGET_CATCH_UP_S = 60.0


class LookupLoad:
    """One thread asking the observer ``GET /api/v1/network/borrowers/{key}/where`` every ``every`` seconds and
    recording what each answer said about the down district."""

    def __init__(self, url: str, token: str, borrower_key: str, down: str, *, every: float = 0.5,
                 timeout: float = 10.0):
        self.url, self.token, self.key, self.down = url.rstrip("/"), token, borrower_key, down
        self.every, self.timeout = every, timeout
        self.results: list[dict] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(self.timeout + 5)

    def snapshot(self) -> list[dict]:
        with self._lock:
            return list(self.results)

    def _run(self) -> None:
        sess = requests.Session()
        sess.headers["Authorization"] = f"Bearer {self.token}"
        while not self._stop.is_set():
            t0 = time.monotonic()
            row = {"at": t0, "status": None, "partial": None, "down_missing": None, "down_answered": None,
                   "reason": None}
            try:
                r = sess.get(f"{self.url}/api/v1/network/borrowers/{self.key}/where", timeout=self.timeout)
                row["status"] = r.status_code
                if r.status_code == 200:
                    body = r.json()
                    row["partial"] = body["partial"]
                    row["down_missing"] = self.down in body["missing"]
                    row["down_answered"] = self.down in body["answered"]
                    row["reason"] = body["missing"].get(self.down)
            except (requests.RequestException, ValueError, KeyError) as exc:
                row["reason"] = f"connection: {type(exc).__name__}"
            row["ms"] = round((time.monotonic() - t0) * 1000, 1)
            with self._lock:
                self.results.append(row)
            self._stop.wait(self.every)


def _post_repayments(fx: dict, n: int, run_id: str) -> list[dict]:
    """``n`` repayments at a district node (before it goes down): the acknowledged receipts."""
    sess = requests.Session()
    sess.headers["Authorization"] = f"Bearer {fx['token']}"
    acked = []
    for i in range(n):
        loan = fx["loans"][i % len(fx["loans"])]
        r = sess.post(f"{fx['url']}/api/v1/loans/{loan}/repayments", timeout=15,
                      headers={"Idempotency-Key": f"drill-{run_id}-queued-{i}"},
                      json={"amount": "1.00", "payment_date": date.today().isoformat(), "channel": "cash",
                            "reference": f"drill {run_id} queued #{i}"})
        if r.status_code == 201:
            acked.append(r.json())
    return acked


def _borrower_key_at(p: Profile, code: str) -> str:
    d = p.district(code)
    rows = pg_standby.query(_primary(p, code), "SELECT borrower_key FROM borrowers_borrower WHERE home_district = '' "
                                               "ORDER BY id LIMIT 1", dbname=d.pg_name)
    if not rows:
        raise DrillRefused(f"{code} has no borrower registered yet")
    return rows[0][0]


def _running(p: Profile, code: str) -> dict[str, bool]:
    return {"web": (pid := read_pid(nodes.web_pidfile(p, code))) is not None and pid_alive(pid),
            "worker": (pid := read_pid(nodes.worker_pidfile(p, code))) is not None and pid_alive(pid)}


def peer_down(p: Profile, code: str, *, observer: str | None = None, down_s: float = 10.0, queued_writes: int = 4,
              clients: int = 1, lookup_every: float = 0.5, web_workers: int = 2, allow_remote: bool = False,
              out=sys.stdout) -> Report:
    """Stop district ``code``'s node and worker for ``down_s`` seconds while ``observer`` works, start them again
    and measure how the network copes and how the district catches up."""
    _guard(p, code, allow_remote)
    others = [c for c in p.districts if c != code]
    if not others:
        raise DrillRefused("the peer-down drill needs at least two districts")
    observer = observer or others[0]
    if observer == code:
        raise DrillRefused("the observer must be another district than the one taken down")
    _guard(p, observer, allow_remote)
    not_ready = [c for c in p.districts if _healthz(p.district(c).public_url) != 200]
    if not_ready:
        raise DrillRefused(f"district node(s) {', '.join(not_ready)} are not healthy before the drill; "
                           f"see './letsema status'")
    say = _say(out)
    rep = Report(scenario="peer-down", profile=p.name, district=code,
                 started_at=datetime.now(UTC).isoformat(timespec="seconds"),
                 targets={"lookup_failures_max": TARGET_LOOKUP_FAILURES, "acknowledged_writes_lost_max": 0,
                          "catch_up_s_max": TARGET_CATCH_UP_S, "events_missing_max": 0})
    say(f"peer-down drill on {p.name}: {code} goes down, {observer} keeps working")
    fx_obs = _setup(p, observer, loans=2)
    fx_down = _setup(p, code, loans=2)
    key = _borrower_key_at(p, code)
    run_id = uuid.uuid4().hex[:10]
    tl: dict[str, float | None] = {"worker_stopped": None, "down": None, "restart": None, "back": None,
                                    "seen_again": None, "caught_up": None}
    load = LoadGenerator(fx_obs["url"], fx_obs["token"], fx_obs["loans"], run_id, clients=clients)
    looks = LookupLoad(fx_obs["url"], fx_obs["token"], key, code, every=lookup_every)
    t0 = time.monotonic()
    queued: list[dict] = []
    pending_while_down = None
    with cluster_lock(p):  # no `up` may start the stopped node while the drill runs
        try:
            say(f"stop {code}'s worker, then post {queued_writes} repayments there (their events wait in its outbox)")
            nodes.stop_worker(p, code)
            tl["worker_stopped"] = time.monotonic()
            queued = _post_repayments(fx_down, queued_writes, run_id)
            pending_while_down = _outbox_pending(fx_down["url"])
            say(f"stop {code}'s node ({len(queued)} repayments acknowledged, outbox pending {pending_while_down})")
            nodes.stop_web(p, code)
            tl["down"] = time.monotonic()
            load.start()
            looks.start()
            time.sleep(down_s)
            say(f"start {code} again (node and worker)")
            tl["restart"] = time.monotonic()
            nodes.start_web(p, code, workers=web_workers)
            nodes.start_worker(p, code)
            tl["back"] = time.monotonic()
            deadline = time.monotonic() + TARGET_CATCH_UP_S * 2
            while time.monotonic() < deadline and (tl["seen_again"] is None or tl["caught_up"] is None):
                if tl["seen_again"] is None and any(r["down_answered"] and r["at"] > tl["back"]
                                                    for r in looks.snapshot()):
                    tl["seen_again"] = time.monotonic()
                if tl["caught_up"] is None and _outbox_pending(fx_down["url"]) == 0:
                    tl["caught_up"] = time.monotonic()
                time.sleep(0.25)
        finally:
            looks.stop()
            load.stop()
            if not all(_running(p, code).values()):  # never leave the district down, whatever went wrong
                nodes.start_web(p, code, workers=web_workers)
                nodes.start_worker(p, code)

    say(f"reconcile {code}'s events with the ring")
    rc, recon, err = _manage_json(p, code, "reconcile_ring", "--json")
    d_obs = p.district(observer)
    inst_obs = _primary(p, observer)
    acked = load.acknowledged()
    ids = [w.repayment_id for w in acked]
    present = _present(inst_obs, d_obs.pg_name, ids)
    inst_down = _primary(p, code)
    queued_present = _present(inst_down, p.district(code).pg_name, [q["id"] for q in queued])
    lookups = looks.snapshot()
    during = [r for r in lookups if tl["down"] and r["at"] >= tl["down"] and tl["restart"] and r["at"] < tl["restart"]]
    failed = [r for r in lookups if r["status"] != 200]
    partial_during = [r for r in during if r["status"] == 200 and r["partial"] and r["down_missing"]]
    reasons = sorted({r["reason"] for r in during if r["reason"]})
    rel = {k: (round(v - t0, 2) if v else None) for k, v in tl.items()}
    rep.timeline_s = rel
    rep.results = {
        "lookups": len(lookups),
        "lookups_while_down": len(during),
        "lookups_failed": len(failed),
        "lookups_partial_naming_the_down_district": len(partial_during),
        "lookup_ms_max_while_down": max((r["ms"] for r in during), default=None),
        "missing_reasons_seen": reasons,
        "observer_writes_lost": len(ids) - len(present),
        "peer_seen_again_after_restart_s": round(tl["seen_again"] - tl["back"], 2) if tl["seen_again"] else None,
        "catch_up_s": round(tl["caught_up"] - tl["back"], 2) if tl["caught_up"] else None,
        "queued_events_while_down": pending_while_down,
        "events_checked": recon.get("checked") if recon else None,
        "events_missing": recon.get("missing") if recon else None,
        "ring_rows_unknown_here": recon.get("unknown_in_ring") if recon else None,
    }
    rep.writes = {"attempted": len(load.writes), "acknowledged": len(acked), "present_after": len(present),
                  "lost_ids": sorted(set(ids) - present),
                  "duplicates": _duplicates(inst_obs, d_obs.pg_name, fx_obs["mfi_id"], run_id),
                  "queued_at_down_district": len(queued), "queued_present": len(queued_present)}
    rep.errors_seen_by_clients = dict(load.errors) | {f"look-up {r['status']} {r['reason']}": 1 for r in failed}
    if recon is None:
        rep.notes.append(f"reconcile_ring did not answer (exit {rc}): {err}")
    problems = [f"{code}: {what} not running" for what, up in _running(p, code).items() if not up]
    problems += [f"node {c}: /healthz not 200" for c in p.districts if _healthz(p.district(c).public_url) != 200]
    if not _outbox_drains(fx_down["url"]):
        problems.append(f"{code}: outbox not drained within 30 s")
    rep.not_healthy, rep.healthy_after = problems, not problems
    r = rep.results
    rep.passed = bool(during and r["lookups_failed"] == TARGET_LOOKUP_FAILURES
                      and r["lookups_partial_naming_the_down_district"] == len(during)
                      and r["observer_writes_lost"] == 0 and rep.writes["duplicates"] == 0 and acked
                      and len(queued_present) == len(queued) == queued_writes
                      and r["catch_up_s"] is not None and r["catch_up_s"] <= TARGET_CATCH_UP_S
                      and r["peer_seen_again_after_restart_s"] is not None
                      and r["events_missing"] == 0 and r["ring_rows_unknown_here"] == 0 and rep.healthy_after)
    rep.ended_at = datetime.now(UTC).isoformat(timespec="seconds")
    _save(p, rep)
    _print_rows(rep, [
        ("scenario", f"{rep.scenario}: {code} down for {down_s:.0f} s, {observer} observing ({p.name})"),
        ("started / ended (UTC)", f"{rep.started_at} / {rep.ended_at}"),
        ("look-ups while down / partial naming it", f"{len(during)} / {len(partial_during)}"),
        ("look-ups failed (whole run)", f"{len(failed)}  (target {TARGET_LOOKUP_FAILURES})"),
        ("slowest look-up while down (ms)", r["lookup_ms_max_while_down"]),
        ("why the peers could not reach it", ", ".join(reasons) or "-"),
        (f"{observer} repayments acknowledged / present", f"{len(acked)} / {len(present)}"),
        (f"events queued in {code} before it went down", r["queued_events_while_down"]),
        ("outbox drained after restart (s)", f"{r['catch_up_s']}  (target <= {TARGET_CATCH_UP_S:.0f})"),
        ("answering peers' look-ups again after (s)", r["peer_seen_again_after_restart_s"]),
        ("events checked / missing in the ring", f"{r['events_checked']} / {r['events_missing']}"),
        ("errors seen by clients", ", ".join(f"{k} x{v}" for k, v in rep.errors_seen_by_clients.items()) or "none"),
        ("cluster healthy after", "yes" if rep.healthy_after else "NO: " + "; ".join(rep.not_healthy)),
        ("result", "PASS" if rep.passed else "FAIL"),
        ("report", rep.file),
    ], out)
    return rep
