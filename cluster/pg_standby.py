"""A streaming-replication standby per district PostgreSQL, with promotion and rejoin (runbook:
docs/runbooks/pg-failover.md).

Each district has two data directories, ``<var>/pg/<code>`` on ``postgres.port`` and ``<var>/pg/<code>-standby`` on
``postgres.standby_port`` (the shipped configs use port + 1000). Ports follow the data directories; the roles move:
after a failover the ``-standby`` directory is the primary and ``<code>`` rejoins as its standby. The role of an
instance is on disk: a data directory with ``standby.signal`` is a standby.

* The standby is made with ``pg_basebackup`` from the primary and streams through the physical replication slot
  ``letsema_standby`` (so the primary keeps the WAL the standby has not received yet).
* Replication is **synchronous** (``synchronous_standby_names = '*'`` on the primary): a commit, and so every
  acknowledged money movement, is flushed on both servers before the client hears "201". The price: if the
  standby stops, commits on the primary *wait* (requests hang until their timeout) until the standby is back or
  the operator runs ``./letsema pg-async <district>`` (runbook, "Standby down").
* ``wal_log_hints = on`` (set at initdb, :mod:`cluster.postgres`) and data checksums let ``pg_rewind`` turn a failed
  old primary into the standby of the new one without a full copy.
* After a promotion the new primary runs *asynchronously* (there is no standby to wait for) until ``pg-rejoin``
  has the old primary streaming again; rejoin turns synchronous replication back on.

Replication connections use the cluster's Unix socket directory with the ``trust`` rule initdb writes for local
connections, so no password is stored in ``primary_conninfo``.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from cluster import postgres
from cluster.procs import StepFailed, chown_to, pid_alive, port_open, run
from cluster.profiles import Profile

SLOT = "letsema_standby"
_CONF_KEYS = ("primary_conninfo", "primary_slot_name", "synchronous_standby_names")


@dataclass(frozen=True)
class Instance:
    """One PostgreSQL server of a district: ``name`` is its data directory's name under ``<var>/pg``."""

    p: Profile
    name: str
    port: int

    @property
    def ddir(self) -> Path:
        return postgres.data_dir(self.p, self.name)

    @property
    def exists(self) -> bool:
        return (self.ddir / "PG_VERSION").exists()

    @property
    def is_standby(self) -> bool:
        return (self.ddir / "standby.signal").exists()

    @property
    def running(self) -> bool:
        return postgres.is_running(self.p, self.name) and port_open("127.0.0.1", self.port)

    @property
    def pid(self) -> int | None:
        return postgres.pid(self.p, self.name)

    def start(self) -> None:
        postgres.start(self.p, self.name, self.port)

    def stop(self, mode: str = "fast") -> None:
        postgres.stop(self.p, self.name, mode)

    def log(self) -> Path:
        return postgres.log_file(self.p, self.name)


def instances(p: Profile, code: str) -> tuple[Instance, Instance]:
    """The configured primary and the configured standby (by data directory, not by current role)."""
    d = p.district(code)
    if d.pg_standby_port is None:
        raise StepFailed(f"PostgreSQL {code}: no postgres.standby_port in {d.path}; add one to run a standby")
    return Instance(p, code, d.pg_port), Instance(p, f"{code}-standby", d.pg_standby_port)


def has_standby(p: Profile, code: str) -> bool:
    d = p.district(code)
    return d.pg_standby_port is not None and instances(p, code)[1].exists


def _connect(inst: Instance, dbname: str = "postgres"):
    import psycopg2

    d = inst.p.district(inst.name.removesuffix("-standby"))
    conn = psycopg2.connect(host=str(postgres.socket_dir(inst.p)), port=inst.port, user=d.pg_user, dbname=dbname,
                            connect_timeout=5)
    conn.autocommit = True
    return conn


def query(inst: Instance, sql: str, params=(), dbname: str = "postgres") -> list[tuple]:
    conn = _connect(inst, dbname)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def in_recovery(inst: Instance) -> bool | None:
    """True for a running standby, False for a running primary, None when it does not answer."""
    import psycopg2

    try:
        return bool(query(inst, "SELECT pg_is_in_recovery()")[0][0])
    except psycopg2.Error:
        return None


def _timeline(inst: Instance) -> int:
    out = run([str(postgres.PG_BIN / "pg_controldata"), str(inst.ddir)], what=f"pg_controldata {inst.name}",
              user=postgres._user())
    for line in out.splitlines():
        if line.startswith("Latest checkpoint's TimeLineID:"):
            return int(line.split(":")[1])
    return 0


def roles(p: Profile, code: str) -> tuple[Instance, Instance]:
    """(current primary, current standby). When both directories say "primary" (a promotion not yet followed by
    ``pg-rejoin``) the running one, else the one on the newer timeline, is the primary."""
    a, b = instances(p, code)
    if not b.exists:
        raise StepFailed(f"PostgreSQL {code}: no standby yet; run './letsema up --standby'")
    if a.is_standby != b.is_standby:
        return (b, a) if a.is_standby else (a, b)
    if a.is_standby:
        raise StepFailed(f"PostgreSQL {code}: both {a.ddir} and {b.ddir} are standbys; promote one "
                         f"('./letsema pg-promote {code}')")
    ra, rb = in_recovery(a) is False, in_recovery(b) is False
    if ra != rb:
        return (a, b) if ra else (b, a)
    return (a, b) if _timeline(a) >= _timeline(b) else (b, a)


def needs_rejoin(p: Profile, code: str) -> bool:
    a, b = instances(p, code)
    return b.exists and not a.is_standby and not b.is_standby


# --- configuration -------------------------------------------------------------------------------------------

def _write_standby_conf(standby: Instance, primary: Instance) -> None:
    """Point ``standby`` at ``primary`` (postgresql.auto.conf) and mark it a standby (standby.signal)."""
    d = standby.p.district(standby.name.removesuffix("-standby"))
    auto = standby.ddir / "postgresql.auto.conf"
    kept = [ln for ln in (auto.read_text().splitlines() if auto.exists() else [])
            if not ln.strip().startswith(_CONF_KEYS)]
    conninfo = (f"host={postgres.socket_dir(standby.p)} port={primary.port} user={d.pg_user} "
                f"application_name={standby.name}")
    kept += [f"primary_conninfo = '{conninfo}'", f"primary_slot_name = '{SLOT}'"]
    auto.write_text("\n".join(kept) + "\n")
    (standby.ddir / "standby.signal").write_text("")
    chown_to(standby.ddir, postgres.PG_USER)


def ensure_slot(primary: Instance) -> None:
    """The physical slot the standby streams from, reserving WAL from now on (also while the standby is away)."""
    query(primary, "SELECT pg_create_physical_replication_slot(%s, true) WHERE NOT EXISTS "
                   "(SELECT 1 FROM pg_replication_slots WHERE slot_name = %s)", (SLOT, SLOT))


def set_synchronous(primary: Instance, on: bool, timeout: float = 15) -> None:
    """Turn synchronous replication on or off. ``pg_reload_conf()`` only signals the server, so this waits (up to
    ``timeout`` s) until the setting is in effect — with ``on``, until a streaming standby is reported ``sync`` —
    so that a status read right after it sees the new state."""
    if on:
        query(primary, "ALTER SYSTEM SET synchronous_standby_names = '*'")
    else:
        query(primary, "ALTER SYSTEM RESET synchronous_standby_names")
    query(primary, "SELECT pg_reload_conf()")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if is_synchronous(primary) == on and (not on or any(
                r[1] == "streaming" and r[2] in ("sync", "quorum") for r in replication(primary))):
            return
        time.sleep(0.1)


def is_synchronous(primary: Instance) -> bool:
    return query(primary, "SHOW synchronous_standby_names")[0][0] != ""


def replication(primary: Instance) -> list[tuple]:
    """(application_name, state, sync_state, replay lag in bytes) of every connected standby."""
    return query(primary, "SELECT application_name, state, sync_state, "
                          "pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint FROM pg_stat_replication")


def wait_streaming(primary: Instance, timeout: float = 60) -> bool:
    import psycopg2

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if any(r[1] == "streaming" for r in replication(primary)):
                return True
        except psycopg2.Error:
            time.sleep(0.7)  # the primary is (re)starting
        time.sleep(0.3)
    return False


def wait_caught_up(primary: Instance, timeout: float = 30) -> bool:
    """Wait until every standby has replayed everything the primary has written so far."""
    target = query(primary, "SELECT pg_current_wal_lsn()::text")[0][0]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = query(primary, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' "
                              "AND replay_lsn >= %s::pg_lsn", (target,))
        if rows[0][0] >= 1:
            return True
        time.sleep(0.2)
    return False


# --- creating and starting -----------------------------------------------------------------------------------

def _basebackup(primary: Instance, target: Instance) -> None:
    d = primary.p.district(primary.name.removesuffix("-standby"))
    if target.running:
        raise StepFailed(f"PostgreSQL {target.name} is running; stop it before re-copying it")
    shutil.rmtree(target.ddir, ignore_errors=True)
    postgres.ensure_dirs(primary.p, target.name)
    query(primary, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                   "WHERE slot_name = %s AND NOT active", (SLOT,))
    run([str(postgres.PG_BIN / "pg_basebackup"), "-D", str(target.ddir), "-h", str(postgres.socket_dir(primary.p)),
         "-p", str(primary.port), "-U", d.pg_user, "-X", "stream", "-C", "-S", SLOT, "-c", "fast"],
        what=f"pg_basebackup of {primary.name} into {target.ddir}", log=postgres.ctl_log(primary.p, target.name),
        user=postgres._user())
    _write_standby_conf(target, primary)


def start_pair(p: Profile, code: str, *, create: bool) -> str:
    """Start a district's primary and (if it exists, or ``create``) its synchronous standby. Idempotent; returns a
    short description. Never starts two primaries: a promoted-but-not-rejoined pair is rejoined first."""
    a, b = instances(p, code)
    if not b.exists:
        a.start()
        if not create:
            return "primary only"
        _basebackup(a, b)
        b.start()
    else:
        primary, standby = roles(p, code)
        primary.start()
        ensure_slot(primary)
        try:  # starts the standby; rewinds it first if it was the primary before a failover (or cannot follow)
            rejoin(p, code)
            return f"primary {primary.name}:{primary.port}, synchronous standby {standby.name}:{standby.port}"
        except StepFailed as exc:
            set_synchronous(primary, False)
            print(f"\nletsema: WARNING: {exc}; {primary.name} runs without synchronous replication. "
                  f"Fix with './letsema pg-rejoin {code}' (docs/runbooks/pg-failover.md).")
            return f"primary {primary.name}:{primary.port}, standby {standby.name} NOT streaming"
    if wait_streaming(a, 60):
        set_synchronous(a, True)
        return f"primary {a.name}:{a.port}, synchronous standby {b.name}:{b.port}"
    # never leave a synchronous primary without a standby: its commits would wait forever
    set_synchronous(a, False)
    print(f"\nletsema: WARNING: PostgreSQL standby {b.name} is not streaming from {a.name} (see {b.log()}); "
          f"{a.name} runs without synchronous replication. Fix with './letsema pg-rejoin {code}'.")
    return f"primary {a.name}:{a.port}, standby {b.name} NOT streaming"


# --- failover ------------------------------------------------------------------------------------------------

def kill_postmaster(inst: Instance) -> int:
    """SIGKILL the postmaster of ``inst`` and its children at once (what a crashed host looks like to clients).
    Returns the postmaster's pid."""
    pid = inst.pid
    if pid is None or not pid_alive(pid):
        raise StepFailed(f"PostgreSQL {inst.name} is not running")
    children = _children(pid)
    os.kill(pid, signal.SIGKILL)
    for c in children:
        try:
            os.kill(c, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for _ in range(100):
        if not pid_alive(pid) and not any(pid_alive(c) for c in children):
            break
        time.sleep(0.05)
    return pid


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                if int(fh.read().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(entry))
        except (OSError, ValueError, IndexError):
            continue
    return out


def promote(p: Profile, code: str) -> Instance:
    """Promote the district's standby. Refuses while the primary still answers (that would make two primaries)."""
    primary, standby = roles(p, code)
    if not standby.is_standby:
        raise StepFailed(f"PostgreSQL {code}: {standby.name} is not a standby (already promoted?); "
                         f"run './letsema pg-rejoin {code}'")
    if primary.running:
        raise StepFailed(f"PostgreSQL {code}: the primary {primary.name} on port {primary.port} is still running; "
                         f"stop it first (pg_ctl -D {primary.ddir} -m immediate stop) so there are never two primaries")
    if not standby.running:
        standby.start()
    run([str(postgres.PG_BIN / "pg_ctl"), "-D", str(standby.ddir), "-w", "-t", "60", "promote"],
        what=f"PostgreSQL {standby.name} promote", log=postgres.ctl_log(p, standby.name), user=postgres._user())
    deadline = time.monotonic() + 30
    while in_recovery(standby) is not False:
        if time.monotonic() > deadline:
            raise StepFailed(f"PostgreSQL {standby.name} did not leave recovery; see {standby.log()}")
        time.sleep(0.1)
    # a lone primary must not wait for a standby; reserve WAL for the old primary's return
    if is_synchronous(standby):
        set_synchronous(standby, False)
    ensure_slot(standby)
    return standby


def rejoin(p: Profile, code: str) -> Instance:
    """Turn the old primary into the standby of the new one (pg_rewind; a fresh pg_basebackup if rewinding is
    impossible), start it, wait until it streams, then make replication synchronous again."""
    primary, old = roles(p, code)
    if in_recovery(primary) is not False:
        raise StepFailed(f"PostgreSQL {code}: the primary {primary.name} is not running as a primary; "
                         f"start or promote it first")
    if old.is_standby:
        if not old.running:
            old.start()
        if wait_streaming(primary, 20):
            set_synchronous(primary, True)
            return old
        # a standby that cannot follow (it has WAL the new primary never had): stop it and rewind it below
        print(f"letsema: {old.name} does not stream from {primary.name}; rewinding it")
        old.stop("fast")
    if old.running:
        raise StepFailed(f"PostgreSQL {code}: {old.name} still runs as a primary; stop it first "
                         f"(pg_ctl -D {old.ddir} -m fast stop)")
    _wait_shmem_free(old)
    d = p.district(code)
    source = f"host={postgres.socket_dir(p)} port={primary.port} user={d.pg_user} dbname=postgres"
    ensure_slot(primary)
    # a just-promoted server writes its new timeline to pg_control only at its first checkpoint; without one
    # pg_rewind would see "the same timeline" and wrongly decide that no rewind is required
    query(primary, "CHECKPOINT")
    try:
        run([str(postgres.PG_BIN / "pg_rewind"), "-D", str(old.ddir), f"--source-server={source}"],
            what=f"pg_rewind of {old.name} from {primary.name}", log=postgres.ctl_log(p, old.name),
            user=postgres._user())
        _write_standby_conf(old, primary)
    except StepFailed as exc:
        print(f"letsema: {exc}; copying {primary.name} afresh with pg_basebackup")
        _basebackup(primary, old)
        ensure_slot(primary)
    old.start()
    if not wait_streaming(primary, 60):
        raise StepFailed(f"PostgreSQL {old.name} does not stream from {primary.name}; see {old.log()} "
                         f"({primary.name} stays asynchronous)")
    set_synchronous(primary, True)
    return old


def set_async(p: Profile, code: str) -> Instance:
    """Operator escape hatch when the standby is down: stop waiting for it (commits are then on one server only)."""
    primary, _ = roles(p, code)
    set_synchronous(primary, False)
    return primary


def _wait_shmem_free(inst: Instance, timeout: float = 15) -> None:
    """After a crash: wait until the dead postmaster and its children are gone, and drop its pid file once the
    postmaster is dead or an unreaped zombie (PostgreSQL itself would take a zombie's pid for a live server)."""
    pid = inst.pid
    if pid is None:
        return
    deadline = time.monotonic() + timeout
    while pid_alive(pid) or _children(pid):
        if time.monotonic() > deadline:
            raise StepFailed(f"PostgreSQL {inst.name}: the old server (pid {pid}) is still running")
        time.sleep(0.1)
    (inst.ddir / "postmaster.pid").unlink(missing_ok=True)
    lock = postgres.socket_dir(inst.p) / f".s.PGSQL.{inst.port}.lock"
    try:
        if int(lock.read_text().splitlines()[0]) == pid:
            lock.unlink()
    except (OSError, ValueError, IndexError):
        pass


# --- status --------------------------------------------------------------------------------------------------

def describe(p: Profile, code: str) -> dict:
    """Roles, state and replication of a district's pair (for status, drills and tests)."""
    primary, standby = roles(p, code)
    out = {"primary": {"name": primary.name, "port": primary.port, "running": primary.running},
           "standby": {"name": standby.name, "port": standby.port, "running": standby.running,
                       "is_standby": standby.is_standby},
           "synchronous": None, "replication": []}
    if primary.running:
        try:
            out["synchronous"] = is_synchronous(primary)
            out["replication"] = [{"application_name": r[0], "state": r[1], "sync_state": r[2], "lag_bytes": r[3]}
                                  for r in replication(primary)]
        except Exception as exc:  # noqa: BLE001 - status must not fail
            out["error"] = str(exc)
    out["healthy"] = bool(primary.running and standby.running and standby.is_standby and out["synchronous"]
                          and any(r["state"] == "streaming" and r["sync_state"] in ("sync", "quorum")
                                  for r in out["replication"]))
    return out


def status_rows(p: Profile, code: str) -> list[tuple[str, str, str, str, str]]:
    """Rows for ``./letsema status``: the ``-standby`` server, and the replication of the pair (which one is the
    primary now; "up" only when the standby streams synchronously)."""
    _, b = instances(p, code)
    rows = [(f"postgres-{b.name}", str(b.pid or "-"), f"127.0.0.1:{b.port}", "up" if b.running else "down",
             str(b.log()))]
    try:
        info = describe(p, code)
        where = f"{info['primary']['name']} -> {info['standby']['name']}"
        rows.append((f"replication-{code}", "-", where, "up" if info["healthy"] else "down",
                     "sync" if info["synchronous"] else "async"))
    except StepFailed as exc:
        rows.append((f"replication-{code}", "-", "-", "down", str(exc)))
    return rows
