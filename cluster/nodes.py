"""District node processes: Django management steps, the gunicorn web node and the Celery worker."""

from __future__ import annotations

import os
import signal
import sys

from cluster.procs import StepFailed, port_open, read_pid, run, spawn, stop_pidfile, wait_port
from cluster.profiles import Profile
from config.district import REPO_ROOT

PY = sys.executable


def manage(p: Profile, code: str, *args: str, timeout: int = 600) -> str:
    return run(
        [PY, str(REPO_ROOT / "manage.py"), *args],
        what=f"{code}: manage.py {' '.join(args)}",
        log=p.log_dir / f"manage-{code}.log",
        env=p.env_for(code),
        timeout=timeout,
    )


def web_pidfile(p: Profile, code: str):
    return p.run_dir / f"web-{code}.pid"


def worker_pidfile(p: Profile, code: str):
    return p.run_dir / f"worker-{code}.pid"


def web_log(p: Profile, code: str):
    return p.log_dir / f"web-{code}.log"


def worker_log(p: Profile, code: str):
    return p.log_dir / f"worker-{code}.log"


def start_web(p: Profile, code: str, workers: int = 2) -> None:
    d = p.district(code)
    if read_pid(web_pidfile(p, code)) is not None:
        return
    if port_open(d.bind_host, d.port):
        raise StepFailed(f"node {code}: port {d.port} is already taken by another process")
    pid = spawn(
        [PY, "-m", "gunicorn", "config.wsgi:application", "--bind", f"{d.bind_host}:{d.port}",
         "--workers", str(workers), "--threads", "4", "--timeout", "60", "--graceful-timeout", "10",
         # idle keep-alive connections stay open 75 s (gunicorn's default is 2 s): a client pausing 2 s between
         # requests would otherwise often reuse a connection the server is just closing (a reset, not an answer)
         "--keep-alive", "75", "--name", f"letsema-{code}"],
        log=web_log(p, code), pidfile=web_pidfile(p, code), env=p.env_for(code), cwd=REPO_ROOT,
    )
    wait_port(d.bind_host, d.port, 60, pid=pid, what=f"node {code} (gunicorn)", log=web_log(p, code))


def start_or_reload_web(p: Profile, code: str, workers: int = 2) -> None:
    """Start the node, or gracefully reload a running one (SIGHUP: new workers with the current code)."""
    pid = read_pid(web_pidfile(p, code))
    if pid is None:
        start_web(p, code, workers)
        return
    os.kill(pid, signal.SIGHUP)
    d = p.district(code)
    wait_port(d.bind_host, d.port, 60, pid=pid, what=f"node {code} (gunicorn reload)", log=web_log(p, code))


def start_worker(p: Profile, code: str) -> None:
    if read_pid(worker_pidfile(p, code)) is not None:
        return
    spawn(
        [PY, "-m", "celery", "-A", "config", "worker", "--loglevel", "INFO", "--concurrency", "1",
         "--hostname", f"worker-{code}@%h", "--without-gossip", "--without-mingle",
         "--beat", "--schedule", str(p.run_dir / f"beat-{code}")],
        log=worker_log(p, code), pidfile=worker_pidfile(p, code), env=p.env_for(code), cwd=REPO_ROOT,
    )


def stop_web(p: Profile, code: str) -> None:
    stop_pidfile(web_pidfile(p, code), timeout=20)


def stop_worker(p: Profile, code: str) -> None:
    stop_pidfile(worker_pidfile(p, code), timeout=20)
