"""Cluster operations shared by the CLI (``python -m cluster``) and the test suite's session fixture."""

from __future__ import annotations

import fcntl
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

from cluster import cassandra, nodes, pg_standby, postgres, redis
from cluster.procs import Progress, port_open, read_pid
from cluster.profiles import PROFILES, Profile
from federation.keys import generate_keypair

DEMO_PASSWORD = "Letsema-demo-2026"


def _db_password(p: Profile, code: str) -> str:
    return (p.secrets_dir(code) / "db_password").read_text().strip()


@contextmanager
def cluster_lock(p: Profile):
    """Serialise operations on one profile's cluster (two `up`s at once would race for the same ports)."""
    p.run_dir.mkdir(parents=True, exist_ok=True)
    with open(p.run_dir / "cluster.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def up(p: Profile, ring: int, demo_data: bool, web_workers: int, standby: bool | None = None) -> None:
    """``standby``: create a streaming standby per district (None: the profile's default, ``p.standby``)."""
    with cluster_lock(p):
        _up(p, ring, demo_data, web_workers, standby)


def _up(p: Profile, ring: int, demo_data: bool, web_workers: int, standby: bool | None = None) -> None:
    t0 = time.monotonic()
    codes = p.districts
    steps = 2 + len(codes) * 5 + ring + 2 + (len(codes) if demo_data else 0)
    prog = Progress(steps)
    with prog.step("Validating district configurations and generating secrets"):
        p.prepare_configs()
        p.prepare_secrets()
        for code in codes:
            generate_keypair(p.secrets_dir(code) / "node_ed25519.key", p.keys_dir / f"{code}.pub")
    for code in codes:
        district_database(p, code, prog, standby=p.standby if standby is None else standby)
    with prog.step(f"Redis broker on 127.0.0.1:{p.redis_port}"):
        redis.start(p)
    cassandra.start_ring(p, ring, progress=prog)
    with prog.step("Ring schema (keyspace, CQL migrations)"):
        nodes.manage(p, codes[0], "ring_migrate", "--expect-nodes", str(ring))
    with prog.step("Static files"):
        nodes.manage(p, codes[0], "collectstatic_changed")
    for code in codes:
        district_migrate(p, code, prog)
        if demo_data:
            with prog.step(f"{code}: demo data"):
                nodes.manage(p, code, "load_demo", "--password", DEMO_PASSWORD)
    for code in codes:
        district_processes(p, code, prog, web_workers)
    took = time.monotonic() - t0
    print(f"\nLetsema {p.name} cluster is up ({len(codes)} districts, {ring}-node ring) in {took:.0f}s.\n")
    for code in codes:
        d = p.district(code)
        print(f"  {d.name:<14} {d.public_url}/  health {d.public_url}/healthz  API docs {d.public_url}/api/docs/")
    if demo_data:
        print(f"\nDemo log-ins (password for all: {DEMO_PASSWORD}):")
        for code in codes:
            d = p.district(code)
            mfi = d.mfis[0].code if d.mfis else "-"
            print(f"  {code}: {code}.admin (letsema_admin), {code}.operator (operator), "
                  f"{mfi}.officer / {mfi}.admin / {mfi}.analyst, {code}.borrower1")
    print("\n'./letsema status' lists every process; './letsema down' stops them (data kept).")


# --- one district's steps: used by `up` for every district and by `add-district` for a new one -------------
def district_database(p: Profile, code: str, prog: Progress, standby: bool = False) -> None:
    d = p.district(code)
    with prog.step(f"PostgreSQL 15 for {code} (initdb if new)"):
        postgres.initdb(p, code, _db_password(p, code), d.pg_user)
    with prog.step(f"PostgreSQL {code} on 127.0.0.1:{d.pg_port}"):
        port = d.pg_port
        # a district with a standby (new with --standby, or made earlier) starts as a pair: docs/runbooks/pg-failover.md
        if d.pg_standby_port is not None and (standby or pg_standby.has_standby(p, code)):
            pg_standby.start_pair(p, code, create=True)
            port = pg_standby.roles(p, code)[0].port
        else:
            postgres.start(p, code, d.pg_port)
        postgres.ensure_database(d.pg_host, port, d.pg_user, _db_password(p, code), d.pg_name)


def district_migrate(p: Profile, code: str, prog: Progress) -> None:
    with prog.step(f"{code}: database migrations"):
        nodes.manage(p, code, "migrate", "--noinput")


def district_processes(p: Profile, code: str, prog: Progress, web_workers: int) -> None:
    with prog.step(f"{code}: Celery worker (restarted if running, to load current code)"):
        nodes.stop_worker(p, code)
        nodes.start_worker(p, code)
    with prog.step(f"{code}: web node (gunicorn; reloaded if running)"):
        nodes.start_or_reload_web(p, code, workers=web_workers)


def start_district(p: Profile, code: str, prog: Progress, *, web_workers: int) -> None:
    """Bring one district up on an already running broker and ring (idempotent)."""
    district_database(p, code, prog)
    district_migrate(p, code, prog)
    district_processes(p, code, prog, web_workers)


def status_rows(p: Profile) -> list[tuple[str, str, str, str, str]]:
    rows = []
    for code in p.districts:
        d = p.district(code)
        rows.append((f"postgres-{code}", str(postgres.pid(p, code) or "-"), f"127.0.0.1:{d.pg_port}",
                     "up" if postgres.is_running(p, code) and port_open("127.0.0.1", d.pg_port) else "down",
                     str(postgres.log_file(p, code))))
        if pg_standby.has_standby(p, code):
            rows += pg_standby.status_rows(p, code)
    rpid = read_pid(redis.pidfile(p))
    rows.append(("redis", str(rpid or "-"), f"127.0.0.1:{p.redis_port}",
                 "up" if rpid and port_open("127.0.0.1", p.redis_port) else "down", str(redis.log_file(p))))
    for i in range(1, (cassandra.ring_size(p) or 1) + 1):
        cpid = read_pid(cassandra.pidfile(p, i))
        rows.append((f"cassandra-{i}", str(cpid or "-"), f"{p.ring_ip(i)}:{cassandra.CQL_PORT}",
                     "up" if cassandra.is_up(p, i) else "down", str(cassandra.log_file(p, i))))
    for code in p.districts:
        d = p.district(code)
        wpid = read_pid(nodes.worker_pidfile(p, code))
        rows.append((f"worker-{code}", str(wpid or "-"), "-", "up" if wpid else "down", str(nodes.worker_log(p, code))))
        gpid = read_pid(nodes.web_pidfile(p, code))
        rows.append((f"web-{code}", str(gpid or "-"), f"{d.bind_host}:{d.port}",
                     "up" if gpid and port_open(d.bind_host, d.port) else "down", str(nodes.web_log(p, code))))
    return rows


def status(p: Profile) -> int:
    p.prepare_configs()
    rows = status_rows(p)
    header = ("SERVICE", "PID", "ADDRESS", "STATE", "LOG")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(5)]
    for r in [header, *rows]:
        print("  ".join(col.ljust(widths[i]) for i, col in enumerate(r)).rstrip())
    return 0 if all(r[3] == "up" for r in rows) else 3


def down(p: Profile) -> None:
    with cluster_lock(p):
        _down(p)


def _down(p: Profile) -> None:
    p.prepare_configs()
    for code in p.districts:
        nodes.stop_web(p, code)
        nodes.stop_worker(p, code)
    redis.stop(p)
    cassandra.stop_ring(p)
    for code in p.districts:
        postgres.stop(p, code)
        postgres.stop(p, f"{code}-standby")  # no-op without a standby (cluster/pg_standby.py)
    print(f"Letsema {p.name} cluster stopped (data kept in {p.var_dir}).")


def reset(p: Profile) -> None:
    """Stop the profile's cluster and delete its data. The demo's ``var/`` holds the test cluster's ``var/test``:
    that is another cluster's data (and the benches' loaded books), so it stays."""
    down(p)  # takes and releases the lock; var/ (and the lock file) go next
    kept = wipe(p.var_dir, keep={q.var_dir for q in PROFILES.values() if p.var_dir in q.var_dir.parents})
    print(f"Removed {p.var_dir}" + (f" (kept {', '.join(kept)}: the test cluster's own data)." if kept else "."))


def wipe(var_dir: Path, *, keep: set[Path]) -> list[str]:
    """Delete everything under ``var_dir`` but the directories in ``keep``; the kept ones, relative, sorted."""
    if var_dir.is_dir():
        for child in var_dir.iterdir():
            if child in keep:
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
    return sorted(str(d.relative_to(var_dir)) for d in keep if d.exists())
