"""One PostgreSQL 15 instance per district (Debian binaries, data under <var>/pg/<district>)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from cluster.procs import StepFailed, chown_to, is_root, port_open, run, wait_port
from cluster.profiles import Profile

PG_BIN = Path(os.environ.get("LETSEMA_PG_BIN", "/usr/lib/postgresql/15/bin"))
PG_USER = "postgres"  # the OS user that owns data directories when we run as root


def _user() -> str | None:
    return PG_USER if is_root() else None


def data_dir(p: Profile, code: str) -> Path:
    return p.var_dir / "pg" / code


def socket_dir(p: Profile) -> Path:
    return p.run_dir / "pg"


def log_file(p: Profile, code: str) -> Path:
    return p.log_dir / "pg" / f"{code}.log"


def ctl_log(p: Profile, code: str) -> Path:
    return p.log_dir / f"pg-{code}-ctl.log"


def ensure_dirs(p: Profile, code: str) -> None:
    for d in (data_dir(p, code).parent, socket_dir(p), log_file(p, code).parent):
        d.mkdir(parents=True, exist_ok=True)
        chown_to(d, PG_USER)
    if is_root():
        # the postgres user must be able to traverse every parent of var/
        for parent in [p.var_dir, *p.var_dir.parents]:
            mode = parent.stat().st_mode
            if not mode & 0o001:
                raise StepFailed(
                    f"PostgreSQL: user {PG_USER!r} cannot enter {parent} (mode {oct(mode & 0o777)}); "
                    "run from a directory others can traverse"
                )


def initdb(p: Profile, code: str, password: str, user: str) -> bool:
    """Create the data directory once. Returns True when it was created now."""
    ddir = data_dir(p, code)
    if (ddir / "PG_VERSION").exists():
        return False
    ensure_dirs(p, code)
    with tempfile.NamedTemporaryFile("w", delete=False, dir=socket_dir(p)) as fh:
        fh.write(password + "\n")
        pwfile = Path(fh.name)
    try:
        chown_to(pwfile, PG_USER)
        run(
            [str(PG_BIN / "initdb"), "-D", str(ddir), "-U", user, f"--pwfile={pwfile}", "-E", "UTF8",
             "--locale=C", "--auth-local=trust", "--auth-host=scram-sha-256", "--data-checksums"],
            what=f"PostgreSQL initdb for {code}", log=ctl_log(p, code), user=_user(),
        )
    finally:
        pwfile.unlink(missing_ok=True)
    with open(ddir / "postgresql.conf", "a") as fh:
        fh.write(
            "\n# --- Letsema local cluster ---\n"
            "listen_addresses = '127.0.0.1'\n"
            "max_connections = 100\n"
            "shared_buffers = 64MB\n"
            "wal_level = replica\n"
            "wal_log_hints = on\n"
            "fsync = on\n"
            "synchronous_commit = on\n"
            "log_line_prefix = '%m [%p] %d '\n"
        )
    chown_to(ddir, PG_USER)
    return True


def is_running(p: Profile, code: str) -> bool:
    pidfile = data_dir(p, code) / "postmaster.pid"
    if not pidfile.exists():
        return False
    try:
        pid = int(pidfile.read_text().splitlines()[0])
        os.kill(pid, 0)
        return True
    except (ValueError, IndexError, ProcessLookupError, OSError):
        return False


def start(p: Profile, code: str, port: int) -> None:
    if is_running(p, code):
        return
    if port_open("127.0.0.1", port):
        raise StepFailed(f"PostgreSQL {code}: port {port} is already taken by another process")
    ensure_dirs(p, code)
    run(
        [str(PG_BIN / "pg_ctl"), "-D", str(data_dir(p, code)), "-l", str(log_file(p, code)), "-w", "-t", "60",
         "-o", f"-p {port} -k {socket_dir(p)}", "start"],
        what=f"PostgreSQL {code} start (server log {log_file(p, code)})", log=ctl_log(p, code), user=_user(),
    )
    wait_port("127.0.0.1", port, 30, what=f"PostgreSQL {code}", log=log_file(p, code))


def stop(p: Profile, code: str, mode: str = "fast") -> None:
    if not is_running(p, code):
        return
    run(
        [str(PG_BIN / "pg_ctl"), "-D", str(data_dir(p, code)), "-m", mode, "-w", "-t", "60", "stop"],
        what=f"PostgreSQL {code} stop", log=ctl_log(p, code), user=_user(),
    )


def pid(p: Profile, code: str) -> int | None:
    try:
        return int((data_dir(p, code) / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None


def ensure_database(host: str, port: int, user: str, password: str, name: str) -> None:
    import psycopg2

    conn = psycopg2.connect(host=host, port=port, user=user, password=password, dbname="postgres", connect_timeout=5)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone() is None:
                cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        conn.close()
