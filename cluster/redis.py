"""Redis (Debian redis-server) as the Celery broker: one server, one database per district."""

from __future__ import annotations

import shutil

from cluster.procs import StepFailed, port_open, read_pid, run, stop_pidfile, wait_port
from cluster.profiles import Profile


def pidfile(p: Profile):
    return p.run_dir / "redis.pid"


def log_file(p: Profile):
    return p.log_dir / "redis.log"


def start(p: Profile) -> None:
    if read_pid(pidfile(p)) is not None:
        return
    binary = shutil.which("redis-server")
    if not binary:
        raise StepFailed("Redis: redis-server not installed (apt-get install redis-server)")
    if port_open("127.0.0.1", p.redis_port):
        raise StepFailed(f"Redis: port {p.redis_port} is already taken by another process")
    data = p.var_dir / "redis"
    data.mkdir(parents=True, exist_ok=True)
    p.run_dir.mkdir(parents=True, exist_ok=True)
    p.log_dir.mkdir(parents=True, exist_ok=True)
    run(
        [binary, "--port", str(p.redis_port), "--bind", "127.0.0.1", "--daemonize", "yes",
         "--pidfile", str(pidfile(p)), "--logfile", str(log_file(p)), "--dir", str(data),
         "--save", "", "--appendonly", "no", "--protected-mode", "yes"],
        what="Redis start", log=p.log_dir / "redis-ctl.log",
    )
    wait_port("127.0.0.1", p.redis_port, 20, what="Redis", log=log_file(p))


def stop(p: Profile) -> None:
    stop_pidfile(pidfile(p), timeout=10)
