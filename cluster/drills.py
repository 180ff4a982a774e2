"""Failure drills against the running local cluster: ``./letsema drill <scenario> [--district X]``.

A drill scripts one failure end to end while a load generator keeps doing real money-moving writes (repayments
through the district node's HTTP API, each with its own ``Idempotency-Key``), then checks what clients were told
against what the database holds, prints a report and saves it as JSON under ``<var>/drills/``. It refuses to run
against anything but a local cluster unless told ``--i-know-this-is-not-local``, and it always tries to leave the
cluster healthy; the report's ``healthy_after`` says exactly what is not.

Scenarios: ``pg-failover`` (runbook docs/runbooks/pg-failover.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from urllib.parse import urlsplit

import requests

from cluster import pg_standby
from cluster.commands import cluster_lock
from cluster.procs import StepFailed
from cluster.profiles import Profile
from config.district import REPO_ROOT

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
TARGET_RTO_S = 60.0
TARGET_RPO = 0
PY = sys.executable


class DrillRefused(StepFailed):
    """The drill would not start (wrong target or an unhealthy cluster): nothing was disturbed."""


def is_local(p: Profile) -> tuple[bool, list[str]]:
    """Whether every address a profile's districts use is on this machine."""
    remote = []
    for code in p.districts:
        d = p.district(code)
        for what, host in (("postgres.host", d.pg_host), ("postgres.standby_host", d.pg_standby_host or d.pg_host),
                           ("node.bind", d.bind_host), ("district.public_url", urlsplit(d.public_url).hostname)):
            if host not in LOOPBACK:
                remote.append(f"{code}: {what} = {host}")
    return not remote, remote


# --- load generator ------------------------------------------------------------------------------------------

@dataclass
class Write:
    seq: int
    key: str
    loan: int
    reference: str
    started: float  # time.monotonic() of the first attempt
    status: str = "pending"  # acknowledged | rejected | indeterminate
    attempts: int = 0
    acked_at: float | None = None
    last_attempt_started: float | None = None
    repayment_id: int | None = None
    receipt: str | None = None


@dataclass
class Attempt:
    started: float
    ended: float
    ok: bool


class LoadGenerator:
    """``clients`` threads posting repayments of ``amount`` round-robin over ``loans``. A write whose answer is
    a server error or a broken connection is retried with the same ``Idempotency-Key`` (so it can post at most
    once) until it is acknowledged (201, or the stored 201 replayed), rejected (another 4xx), or the run ends."""

    def __init__(self, url: str, token: str, loans: list[int], run_id: str, *, clients: int = 2,
                 amount: str = "1.00", timeout: float = 10.0):
        self.url, self.token, self.loans, self.run_id = url.rstrip("/"), token, loans, run_id
        self.clients, self.amount, self.timeout = clients, amount, timeout
        self.writes: list[Write] = []
        self.attempts: list[Attempt] = []
        self.errors: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._give_up_at: float | None = None
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self._threads = [threading.Thread(target=self._client, args=(c,), daemon=True) for c in range(self.clients)]
        for t in self._threads:
            t.start()

    def stop(self, drain: float = 30.0) -> None:
        """Stop starting new writes; in-flight ones keep retrying for up to ``drain`` seconds."""
        self._give_up_at = time.monotonic() + drain
        self._stop.set()
        for t in self._threads:
            t.join(drain + self.timeout + 5)

    def wait_acknowledged(self, n: int, timeout: float = 30.0) -> None:
        """Block until ``n`` writes are acknowledged (the warm-up before any failure); a node that cannot do that
        is not healthy, so the drill is refused before it disturbs anything."""
        deadline = time.monotonic() + timeout
        while len(self.acknowledged()) < n:
            if time.monotonic() > deadline:
                raise DrillRefused(f"the load generator got only {len(self.acknowledged())} writes acknowledged in "
                                   f"{timeout:.0f} s before any failure ({dict(self.errors)}); the node is not healthy")
            time.sleep(0.1)

    def acknowledged(self) -> list[Write]:
        with self._lock:
            return [w for w in self.writes if w.status == "acknowledged"]

    def first_ack_after(self, t: float) -> float | None:
        """When the first write whose attempt *started* after ``t`` was acknowledged."""
        with self._lock:
            oks = [a.ended for a in self.attempts if a.ok and a.started >= t]
        return min(oks) if oks else None

    def last_ack_before(self, t: float) -> float | None:
        with self._lock:
            oks = [a.ended for a in self.attempts if a.ok and a.ended <= t]
        return max(oks) if oks else None

    def _client(self, c: int) -> None:
        sess = requests.Session()
        sess.headers["Authorization"] = f"Bearer {self.token}"
        mine = self.loans[c::self.clients] or self.loans
        i = 0
        while not self._stop.is_set():
            with self._lock:
                seq = len(self.writes)
                w = Write(seq=seq, key=f"drill-{self.run_id}-{seq}", loan=mine[i % len(mine)],
                          reference=f"drill {self.run_id} #{seq}", started=time.monotonic())
                self.writes.append(w)
            i += 1
            self._post_until_done(sess, w)

    def _post_until_done(self, sess: requests.Session, w: Write) -> None:
        body = {"amount": self.amount, "payment_date": date.today().isoformat(), "channel": "cash",
                "reference": w.reference}
        while True:
            w.attempts += 1
            t0 = time.monotonic()
            w.last_attempt_started = t0
            ok, err = False, None
            try:
                r = sess.post(f"{self.url}/api/v1/loans/{w.loan}/repayments", json=body,
                              headers={"Idempotency-Key": w.key}, timeout=self.timeout)
            except requests.RequestException as exc:
                err = f"connection: {type(exc).__name__}"
                r = None
            t1 = time.monotonic()
            if r is not None:
                code = _error_code(r)
                if r.status_code == 201:
                    data = r.json()
                    w.status, w.acked_at, w.repayment_id, w.receipt = "acknowledged", t1, data["id"], data[
                        "receipt_number"]
                    ok = True
                elif r.status_code == 409 and code == "request_in_progress":
                    # the first attempt died with the database after the key was stored: the outcome is unknown
                    # to the client (not acknowledged); the drill checks afterwards whether it was applied
                    err = f"409 {code}"
                    w.status = "indeterminate"
                elif r.status_code >= 500:
                    err = f"{r.status_code} {code or ''}".strip()
                else:
                    err = f"{r.status_code} {code or ''}".strip()
                    w.status = "rejected"
            with self._lock:
                self.attempts.append(Attempt(started=t0, ended=t1, ok=ok))
                if err:
                    self.errors[err] += 1
            if w.status != "pending":
                return
            if self._give_up_at is not None and time.monotonic() > self._give_up_at:
                w.status = "indeterminate"
                return
            time.sleep(0.2)


def _error_code(r: requests.Response) -> str | None:
    try:
        body = r.json()
    except ValueError:
        return None
    return body.get("code") if isinstance(body, dict) else None


# --- database checks (read-only SQL on a given server) --------------------------------------------------------

def trial_balance(inst: pg_standby.Instance, dbname: str, mfi_id: int) -> dict[str, list[str]]:
    """Per account code: [total debit, total credit] of the MFI's journal (what ``ledger/trial-balance`` sums)."""
    rows = pg_standby.query(inst, "SELECT a.code, COALESCE(sum(l.debit), 0), COALESCE(sum(l.credit), 0) "
                                  "FROM ledger_account a LEFT JOIN ledger_journalline l ON l.account_id = a.id "
                                  "WHERE a.mfi_id = %s GROUP BY a.code ORDER BY a.code", (mfi_id,), dbname=dbname)
    return {code: [str(dr), str(cr)] for code, dr, cr in rows}


def _drill_lines(inst: pg_standby.Instance, dbname: str, mfi_id: int, run_id: str) -> dict[str, list[str]]:
    rows = pg_standby.query(inst, "SELECT a.code, sum(l.debit), sum(l.credit) FROM repayments_repayment r "
                                  "JOIN ledger_journalline l ON l.entry_id = r.journal_entry_id "
                                  "JOIN ledger_account a ON a.id = l.account_id "
                                  "WHERE r.mfi_id = %s AND r.reference LIKE %s GROUP BY a.code",
                            (mfi_id, f"drill {run_id} #%"), dbname=dbname)
    return {code: [str(dr), str(cr)] for code, dr, cr in rows}


def _tb_plus(before: dict[str, list[str]], delta: dict[str, list[str]]) -> dict[str, list[str]]:
    out = {k: [Decimal(v[0]), Decimal(v[1])] for k, v in before.items()}
    for k, (dr, cr) in delta.items():
        cur = out.setdefault(k, [Decimal(0), Decimal(0)])
        cur[0] += Decimal(dr)
        cur[1] += Decimal(cr)
    return {k: [str(v[0]), str(v[1])] for k, v in sorted(out.items())}


def _totals(tb: dict[str, list[str]]) -> tuple[str, str]:
    return (str(sum((Decimal(v[0]) for v in tb.values()), Decimal(0))),
            str(sum((Decimal(v[1]) for v in tb.values()), Decimal(0))))


def _norm(tb: dict[str, list[str]]) -> dict[str, tuple[Decimal, Decimal]]:
    return {k: (Decimal(v[0]), Decimal(v[1])) for k, v in tb.items()}


def _present(inst: pg_standby.Instance, dbname: str, ids: list[int]) -> set[int]:
    if not ids:
        return set()
    rows = pg_standby.query(inst, "SELECT id FROM repayments_repayment WHERE id = ANY(%s)", (ids,), dbname=dbname)
    return {r[0] for r in rows}


def _applied_references(inst: pg_standby.Instance, dbname: str, refs: list[str]) -> set[str]:
    if not refs:
        return set()
    rows = pg_standby.query(inst, "SELECT reference FROM repayments_repayment WHERE reference = ANY(%s)", (refs,),
                            dbname=dbname)
    return {r[0] for r in rows}


def _duplicates(inst: pg_standby.Instance, dbname: str, mfi_id: int, run_id: str) -> int:
    """Drill writes posted more than once (each carries its own reference; the Idempotency-Key must prevent this)."""
    rows = pg_standby.query(inst, "SELECT count(*) FROM (SELECT reference FROM repayments_repayment WHERE mfi_id = %s "
                                  "AND reference LIKE %s GROUP BY reference HAVING count(*) > 1) x",
                            (mfi_id, f"drill {run_id} #%"), dbname=dbname)
    return rows[0][0]


def _healthz(url: str) -> int | None:
    try:
        return requests.get(f"{url}/healthz", timeout=5).status_code
    except requests.RequestException:
        return None


def _setup(p: Profile, code: str, loans: int, review_loans: int = 0) -> dict:
    env = p.env_for(code)
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    res = subprocess.run([PY, "-m", "cluster.drill_setup", "--loans", str(loans), "--review-loans", str(review_loans)],
                         capture_output=True, text=True,
                         env=env, cwd=REPO_ROOT, timeout=300, check=False)
    if res.returncode != 0:
        tail = " | ".join((res.stderr or res.stdout).strip().splitlines()[-3:])
        raise DrillRefused(f"drill set-up in {code} failed: {tail}")
    return json.loads(res.stdout.strip().splitlines()[-1])


# --- pg-failover ---------------------------------------------------------------------------------------------

@dataclass
class Timeline:
    kill: float = 0.0
    promoted: float | None = None
    writes_back: float | None = None
    rejoined: float | None = None
    load_stopped: float | None = None


@dataclass
class Report:
    scenario: str
    profile: str
    district: str
    started_at: str
    ended_at: str = ""
    passed: bool = False
    targets: dict = field(default_factory=dict)
    results: dict = field(default_factory=dict)
    writes: dict = field(default_factory=dict)
    errors_seen_by_clients: dict = field(default_factory=dict)
    timeline_s: dict = field(default_factory=dict)
    trial_balance: dict = field(default_factory=dict)
    healthy_after: bool = False
    not_healthy: list = field(default_factory=list)
    replication_after: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    file: str = ""


def pg_failover(p: Profile, code: str, *, clients: int = 2, loans: int = 4, warmup_writes: int = 15,
                after_rejoin_s: float = 3.0, allow_remote: bool = False, out=sys.stdout) -> Report:
    """Kill -9 the district's primary mid-write, promote the standby, rejoin the old primary as the new standby,
    and account for every write."""
    _guard(p, code, allow_remote)
    d = p.district(code)
    if not pg_standby.has_standby(p, code):
        raise DrillRefused(f"{code} has no PostgreSQL standby; start the cluster with './letsema up --standby'")
    state = pg_standby.describe(p, code)
    if not state["healthy"]:
        raise DrillRefused(f"{code}: primary/standby pair is not healthy before the drill ({state}); "
                           f"see './letsema status' and docs/runbooks/pg-failover.md")
    say = _say(out)
    rep = Report(scenario="pg-failover", profile=p.name, district=code,
                 started_at=datetime.now(UTC).isoformat(timespec="seconds"),
                 targets={"rto_s_max": TARGET_RTO_S, "acknowledged_writes_lost_max": TARGET_RPO})
    say(f"pg-failover drill on {p.name}/{code}: set-up (drill MFI, {loans} disbursed loans)")
    fx = _setup(p, code, loans)
    run_id = uuid.uuid4().hex[:10]
    old_primary, old_standby = pg_standby.roles(p, code)
    tb_before = trial_balance(old_primary, d.pg_name, fx["mfi_id"])
    load = LoadGenerator(fx["url"], fx["token"], fx["loans"], run_id, clients=clients)
    tl = Timeline()
    t_start = time.monotonic()
    load.start()
    try:
        load.wait_acknowledged(warmup_writes)
        with cluster_lock(p):  # no `up` may start the killed server while the drill runs
            say(f"kill -9 the primary {old_primary.name} (port {old_primary.port}) under load "
                f"({len(load.acknowledged())} writes acknowledged so far)")
            tl.kill = time.monotonic()
            pg_standby.kill_postmaster(old_primary)
            say(f"promote {old_standby.name} (port {old_standby.port})")
            pg_standby.promote(p, code)
            tl.promoted = time.monotonic()
            deadline = time.monotonic() + TARGET_RTO_S * 2
            while (back := load.first_ack_after(tl.kill)) is None:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            tl.writes_back = back
            say("writes " + (f"acknowledged again {back - tl.kill:.1f}s after the kill" if back else "NOT back"))
            say(f"rejoin {old_primary.name} as the standby of {old_standby.name} (pg_rewind)")
            pg_standby.rejoin(p, code)
            tl.rejoined = time.monotonic()
        time.sleep(after_rejoin_s)  # writes now commit synchronously on the new pair
    finally:
        load.stop()
        tl.load_stopped = time.monotonic()

    new_primary, new_standby = pg_standby.roles(p, code)
    caught_up = pg_standby.wait_caught_up(new_primary, 30)
    acked = load.acknowledged()
    ids = [w.repayment_id for w in acked]
    present = _present(new_primary, d.pg_name, ids)
    present_standby = _present(new_standby, d.pg_name, ids) if caught_up else set()
    indeterminate = [w for w in load.writes if w.status == "indeterminate"]
    applied_indet = _applied_references(new_primary, d.pg_name, [w.reference for w in indeterminate])
    rejected = [w for w in load.writes if w.status == "rejected"]

    tb_after = trial_balance(new_primary, d.pg_name, fx["mfi_id"])
    tb_after_standby = trial_balance(new_standby, d.pg_name, fx["mfi_id"]) if caught_up else {}
    delta = _drill_lines(new_primary, d.pg_name, fx["mfi_id"], run_id)
    expected = _tb_plus(tb_before, delta)
    # every journal line the drill added belongs to a repayment the drill posted, and nothing else changed
    ack_refs = {w.reference for w in acked}
    applied_refs = _applied_references(new_primary, d.pg_name, [w.reference for w in load.writes])
    unexplained = sorted(applied_refs - ack_refs - applied_indet)
    before_tot, after_tot = _totals(tb_before), _totals(tb_after)
    tb_consistent = (_norm(tb_after) == _norm(expected) and before_tot[0] == before_tot[1]
                     and after_tot[0] == after_tot[1] and not unexplained)
    standby_equal = caught_up and _norm(tb_after_standby) == _norm(tb_after)

    rto = (tl.writes_back - tl.kill) if tl.writes_back else None
    last_before = load.last_ack_before(tl.kill)
    lost = len(ids) - len(present)
    rep.timeline_s = {k: (round(v - t_start, 2) if v else None) for k, v in asdict(tl).items()}
    rep.results = {
        "rto_s": round(rto, 2) if rto is not None else None,
        "write_gap_s": round(tl.writes_back - last_before, 2) if (tl.writes_back and last_before) else None,
        "promote_s": round(tl.promoted - tl.kill, 2) if tl.promoted else None,
        "rejoin_s": round(tl.rejoined - tl.writes_back, 2) if (tl.rejoined and tl.writes_back) else None,
        "rpo_acknowledged_writes_lost": lost,
        "trial_balance_consistent": tb_consistent,
        "standby_identical": standby_equal,
    }
    rep.writes = {
        "attempted": len(load.writes),
        "acknowledged": len(acked),
        "present_after": len(present),
        "present_on_new_standby": len(present_standby),
        "lost_ids": sorted(set(ids) - present),
        "duplicates": _duplicates(new_primary, d.pg_name, fx["mfi_id"], run_id),
        "indeterminate": len(indeterminate),
        "indeterminate_applied": len(applied_indet),
        "rejected": len(rejected),
        "attempts": len(load.attempts),
        "unexplained_applied": unexplained,
    }
    rep.errors_seen_by_clients = dict(load.errors)
    rep.trial_balance = {"mfi": fx["mfi"], "before_totals": before_tot, "after_totals": after_tot,
                         "expected_after": expected, "after": tb_after, "delta_from_drill_repayments": delta}
    if indeterminate:
        rep.notes.append(f"{len(indeterminate)} write(s) were in flight when the primary died and were never "
                         f"acknowledged (their Idempotency-Key stayed 'in progress'); {len(applied_indet)} of them "
                         f"were applied. Unacknowledged writes do not count against the RPO.")
    _check_health(p, code, d.public_url, rep)
    rep.passed = bool(rto is not None and rto <= TARGET_RTO_S and lost == TARGET_RPO and tb_consistent
                      and rep.writes["duplicates"] == 0
                      and standby_equal and rep.healthy_after and not rejected)
    rep.ended_at = datetime.now(UTC).isoformat(timespec="seconds")
    _save(p, rep)
    print_report(rep, out)
    return rep


def _check_health(p: Profile, code: str, url: str, rep: Report) -> None:
    problems = []
    state = pg_standby.describe(p, code)
    rep.replication_after = state
    if not state["healthy"]:
        problems.append(f"postgres {code}: primary/standby pair not streaming synchronously ({state})")
    deadline = time.monotonic() + 30
    while (hz := _healthz(url)) != 200 and time.monotonic() < deadline:
        time.sleep(0.5)
    if hz != 200:
        problems.append(f"node {code}: /healthz answered {hz}")
    rep.not_healthy = problems
    rep.healthy_after = not problems


def _guard(p: Profile, code: str, allow_remote: bool) -> None:
    if code not in p.districts:
        raise DrillRefused(f"unknown district {code!r} (known: {', '.join(p.districts)})")
    local, remote = is_local(p)
    if not local and not allow_remote:
        raise DrillRefused("refusing to run a drill against a cluster that is not on this machine ("
                           + "; ".join(remote) + "); pass --i-know-this-is-not-local to override")


def _say(out):
    def say(msg: str) -> None:
        out.write(f"[drill] {msg}\n")
        out.flush()
    return say


def _save(p: Profile, rep: Report) -> None:
    folder = p.var_dir / "drills"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = folder / f"{rep.scenario}-{stamp}.json"
    rep.file = str(path)
    path.write_text(json.dumps(asdict(rep), indent=2, default=str) + "\n")


def print_report(rep: Report, out=sys.stdout) -> None:
    r, w = rep.results, rep.writes
    rows = [
        ("scenario", f"{rep.scenario} on {rep.profile}/{rep.district}"),
        ("started / ended (UTC)", f"{rep.started_at} / {rep.ended_at}"),
        ("writes attempted", w.get("attempted")),
        ("writes acknowledged", w.get("acknowledged")),
        ("acknowledged present after", w.get("present_after")),
        ("acknowledged present on new standby", w.get("present_on_new_standby")),
        ("in flight, never acknowledged (applied)", f"{w.get('indeterminate')} ({w.get('indeterminate_applied')})"),
        ("RTO: writes unavailable (s)", f"{r.get('rto_s')}  (target <= {TARGET_RTO_S:.0f})"),
        ("gap between acknowledged writes (s)", r.get("write_gap_s")),
        ("RPO: acknowledged writes lost", f"{r.get('rpo_acknowledged_writes_lost')}  (target {TARGET_RPO})"),
        ("trial balance consistent", r.get("trial_balance_consistent")),
        ("new standby identical", r.get("standby_identical")),
        ("errors seen by clients", ", ".join(f"{k} x{v}" for k, v in rep.errors_seen_by_clients.items()) or "none"),
        ("cluster healthy after", "yes" if rep.healthy_after else "NO: " + "; ".join(rep.not_healthy)),
        ("result", "PASS" if rep.passed else "FAIL"),
        ("report", rep.file),
    ]
    width = max(len(k) for k, _ in rows)
    out.write("\n")
    for k, v in rows:
        out.write(f"  {k:<{width}}  {v}\n")
    for n in rep.notes:
        out.write(f"  note: {n}\n")
    out.flush()




# --- cassandra-node ------------------------------------------------------------------------------------------

class ApprovalLoad:
    """One thread approving ``loans`` (under review) through the API, one every ``every`` seconds. An approval
    passes the stacking guard's compare-and-set on the ring (QUORUM/SERIAL), so it is what a ring failure hurts
    first. A failed approval is counted, not retried."""

    def __init__(self, url: str, token: str, loans: list[int], *, every: float = 0.5, timeout: float = 15.0):
        self.url, self.token, self.loans, self.every, self.timeout = url.rstrip("/"), token, loans, every, timeout
        self.results: list[dict] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(self.timeout + 5)

    def _run(self) -> None:
        sess = requests.Session()
        sess.headers["Authorization"] = f"Bearer {self.token}"
        for lid in self.loans:
            if self._stop.is_set():
                return
            t0 = time.monotonic()
            try:
                r = sess.post(f"{self.url}/api/v1/loans/{lid}/approve", json={}, timeout=self.timeout)
                status, code = r.status_code, _error_code(r)
            except requests.RequestException as exc:
                status, code = None, f"connection: {type(exc).__name__}"
            self.results.append({"loan": lid, "status": status, "code": code, "at": t0,
                                 "ms": round((time.monotonic() - t0) * 1000)})
            self._stop.wait(self.every)


def _primary(p: Profile, code: str) -> pg_standby.Instance:
    if pg_standby.has_standby(p, code):
        return pg_standby.roles(p, code)[0]
    d = p.district(code)
    return pg_standby.Instance(p, code, d.pg_port)


def _manage_json(p: Profile, code: str, *args: str) -> tuple[int, dict | None, str]:
    env = p.env_for(code)
    res = subprocess.run([PY, "manage.py", *args], capture_output=True, text=True, env=env, cwd=REPO_ROOT,
                         timeout=600, check=False)
    try:
        return res.returncode, json.loads(res.stdout.strip().splitlines()[-1]), res.stderr[-500:]
    except (ValueError, IndexError):
        return res.returncode, None, (res.stderr or res.stdout)[-500:]


def _outbox_pending(url: str) -> int | None:
    try:
        return requests.get(f"{url}/healthz", timeout=5).json()["outbox"]["pending"]
    except (requests.RequestException, ValueError, KeyError, TypeError):
        return None


def _outbox_drains(url: str, within_s: float = 30.0) -> bool:
    """Whether the district's outbox empties within ``within_s`` (polled every second; the beat ships every few
    seconds)."""
    deadline = time.monotonic() + within_s
    while (pending := _outbox_pending(url)) != 0 and time.monotonic() < deadline:
        time.sleep(1.0)
    return pending == 0


def cassandra_node(p: Profile, code: str, *, node: int = 3, down_s: float = 8.0, approvals: int = 8,
                   clients: int = 1, warmup_writes: int = 5, allow_remote: bool = False, out=sys.stdout) -> Report:
    """Kill -9 one of the three ring nodes under load (repayments and approvals in ``code``), keep working on the
    remaining quorum for ``down_s``, start it again, let the outbox drain and reconcile the district's events."""
    from cluster import cassandra

    _guard(p, code, allow_remote)
    n = cassandra.ring_size(p)
    if n != 3 or not 1 <= node <= n:
        raise DrillRefused(f"the cassandra-node drill needs a 3-node ring (this one has {n}); node must be 1..3")
    down = [i for i in range(1, n + 1) if not cassandra.is_up(p, i)]
    if down:
        raise DrillRefused(f"ring node(s) {down} are already down; start them first ('./letsema ring-start N')")
    d = p.district(code)
    say = _say(out)
    rep = Report(scenario="cassandra-node", profile=p.name, district=code,
                 started_at=datetime.now(UTC).isoformat(timespec="seconds"),
                 targets={"failed_approvals_max": 0, "events_missing_max": 0, "acknowledged_writes_lost_max": 0})
    say(f"cassandra-node drill on {p.name}: ring node {node} ({p.ring_ip(node)}), load in {code}")
    fx = _setup(p, code, loans=2, review_loans=approvals)
    run_id = uuid.uuid4().hex[:10]
    load = LoadGenerator(fx["url"], fx["token"], fx["loans"], run_id, clients=clients)
    appr = ApprovalLoad(fx["url"], fx["token"], fx["review_loans"], every=max(0.3, (down_s + 10) / max(approvals, 1)))
    t_start = time.monotonic()
    tl: dict[str, float | None] = {"kill": None, "restart": None, "node_up": None, "load_stopped": None,
                                    "outbox_drained": None}
    load.start()
    try:
        load.wait_acknowledged(warmup_writes)
        appr.start()
        say(f"kill -9 ring node {node}")
        tl["kill"] = time.monotonic()
        cassandra.stop_node(p, node, kill=True)
        time.sleep(down_s)
        say(f"start ring node {node} again")
        tl["restart"] = time.monotonic()
        try:
            cassandra.start_node(p, node, n)
        finally:
            tl["node_up"] = time.monotonic() if cassandra.is_up(p, node) else None
        time.sleep(2)
    finally:
        appr.stop()
        load.stop()
        tl["load_stopped"] = time.monotonic()
    tl["outbox_drained"] = time.monotonic() if _outbox_drains(fx["url"], within_s=90) else None
    say("reconcile the district's events with the ring")
    rc, before_repair, err = _manage_json(p, code, "reconcile_ring", "--json")
    repaired = None
    if before_repair and before_repair.get("missing"):
        _, repaired, _ = _manage_json(p, code, "reconcile_ring", "--json", "--repair")

    inst = _primary(p, code)
    acked = load.acknowledged()
    ids = [w.repayment_id for w in acked]
    present = _present(inst, d.pg_name, ids)
    approved = [a for a in appr.results if a["status"] == 200]
    failed = [a for a in appr.results if a["status"] != 200]
    during = [a for a in appr.results if tl["kill"] and a["at"] >= tl["kill"] and
              (tl["node_up"] is None or a["at"] <= tl["node_up"])]
    rep.timeline_s = {k: (round(v - t_start, 2) if v else None) for k, v in tl.items()}
    rep.results = {
        "failed_approvals": len(failed),
        "approvals_while_node_down": len(during),
        "events_checked": before_repair.get("checked") if before_repair else None,
        "events_missing": before_repair.get("missing") if before_repair else None,
        "events_repaired": repaired.get("repaired") if repaired else 0,
        "ring_rows_unknown_here": before_repair.get("unknown_in_ring") if before_repair else None,
        "rpo_acknowledged_writes_lost": len(ids) - len(present),
        "node_restart_s": round(tl["node_up"] - tl["restart"], 1) if tl["node_up"] and tl["restart"] else None,
        "outbox_drain_s": round(tl["outbox_drained"] - tl["load_stopped"], 1) if tl["outbox_drained"] else None,
    }
    rep.writes = {"attempted": len(load.writes), "acknowledged": len(acked), "present_after": len(present),
                  "lost_ids": sorted(set(ids) - present),
                  "duplicates": _duplicates(inst, d.pg_name, fx["mfi_id"], run_id),
                  "approvals_attempted": len(appr.results), "approvals_ok": len(approved),
                  "approvals_failed": failed}
    rep.errors_seen_by_clients = dict(load.errors) | {f"approve {a['status']} {a['code']}": 1 for a in failed}
    if before_repair is None:
        rep.notes.append(f"reconcile_ring did not answer (exit {rc}): {err}")
    problems = [f"ring node {i} down" for i in range(1, n + 1) if not cassandra.is_up(p, i)]
    if not _outbox_drains(fx["url"]):
        problems.append(f"{code}: outbox not drained within 30 s")
    if _healthz(fx["url"]) != 200:
        problems.append(f"node {code}: /healthz not 200")
    rep.not_healthy, rep.healthy_after = problems, not problems
    r = rep.results
    rep.passed = bool(r["failed_approvals"] == 0 and r["events_missing"] == 0 and r["ring_rows_unknown_here"] == 0
                      and r["rpo_acknowledged_writes_lost"] == 0 and rep.writes["duplicates"] == 0
                      and approved and rep.healthy_after)
    rep.ended_at = datetime.now(UTC).isoformat(timespec="seconds")
    _save(p, rep)
    _print_rows(rep, [
        ("scenario", f"{rep.scenario} (ring node {node}) under load in {p.name}/{code}"),
        ("started / ended (UTC)", f"{rep.started_at} / {rep.ended_at}"),
        ("approvals attempted / ok / failed", f"{len(appr.results)} / {len(approved)} / {len(failed)}  (target 0 failed)"),
        ("  of them while the node was down", r["approvals_while_node_down"]),
        ("repayments acknowledged / present", f"{len(acked)} / {len(present)}"),
        ("ring node back after (s)", r["node_restart_s"]),
        ("outbox drained after load stop (s)", r["outbox_drain_s"]),
        ("events checked / missing / repaired", f"{r['events_checked']} / {r['events_missing']} / {r['events_repaired']}"),
        ("ring rows unknown to the node", r["ring_rows_unknown_here"]),
        ("errors seen by clients", ", ".join(f"{k} x{v}" for k, v in rep.errors_seen_by_clients.items()) or "none"),
        ("cluster healthy after", "yes" if rep.healthy_after else "NO: " + "; ".join(rep.not_healthy)),
        ("result", "PASS" if rep.passed else "FAIL"),
        ("report", rep.file),
    ], out)
    return rep


def _print_rows(rep: Report, rows: list[tuple[str, object]], out) -> None:
    width = max(len(k) for k, _ in rows)
    out.write("\n")
    for k, v in rows:
        out.write(f"  {k:<{width}}  {v}\n")
    for note in rep.notes:
        out.write(f"  note: {note}\n")
    out.flush()


SCENARIOS = {"pg-failover": pg_failover, "cassandra-node": cassandra_node}
