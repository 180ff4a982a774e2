"""Process helpers for the local cluster: detached start, pid files, port waits, clean stop."""

from __future__ import annotations

import os
import pwd
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


class StepFailed(Exception):
    """A cluster step failed; the message names the service and where its log is."""


def is_root() -> bool:
    return os.geteuid() == 0


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child counts as dead
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def read_pid(pidfile: Path) -> int | None:
    try:
        pid = int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if pid_alive(pid) else None


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_port(host: str, port: int, timeout: float, *, pid: int | None = None, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(host, port):
            return
        if pid is not None and not pid_alive(pid):
            raise StepFailed(f"{what} exited during start-up; see {log}")
        time.sleep(0.3)
    raise StepFailed(f"{what} did not open {host}:{port} within {timeout:.0f}s; see {log}")


def spawn(cmd: list[str], *, log: Path, pidfile: Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> int:
    """Start a long-running process detached from this one, stdout+stderr appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=cwd,
            start_new_session=True,
        )
    pidfile.write_text(f"{proc.pid}\n")
    return proc.pid


def stop_pid(pid: int, *, timeout: float = 30.0, sig: int = signal.SIGTERM) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            _reap(pid)
            return
        time.sleep(0.2)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    for _ in range(50):
        if not pid_alive(pid):
            break
        time.sleep(0.1)
    _reap(pid)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def stop_pidfile(pidfile: Path, *, timeout: float = 30.0, sig: int = signal.SIGTERM) -> bool:
    pid = read_pid(pidfile)
    if pid is None:
        pidfile.unlink(missing_ok=True)
        return False
    stop_pid(pid, timeout=timeout, sig=sig)
    pidfile.unlink(missing_ok=True)
    return True


def run(cmd: list[str], *, what: str, log: Path | None = None, env=None, user: str | None = None, timeout=600) -> str:
    """Run a command to completion; on failure raise StepFailed naming ``what`` and the log."""
    if user and is_root():
        cmd = ["runuser", "-u", user, "--", *cmd]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise StepFailed(f"{what}: timed out after {timeout}s") from None
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a") as fh:
            fh.write(f"$ {' '.join(cmd)}\n{res.stdout}{res.stderr}\n")
    if res.returncode != 0:
        tail = (res.stderr or res.stdout).strip().splitlines()[-3:]
        where = f"; see {log}" if log else ""
        raise StepFailed(f"{what} failed (exit {res.returncode}): {' | '.join(tail)}{where}")
    return res.stdout


def chown_to(path: Path, user: str) -> None:
    if not is_root():
        return
    pw = pwd.getpwnam(user)
    if not path.is_dir():
        os.chown(path, pw.pw_uid, pw.pw_gid)
        return
    for root, dirs, files in os.walk(path):
        os.chown(root, pw.pw_uid, pw.pw_gid)
        for name in files:
            os.chown(os.path.join(root, name), pw.pw_uid, pw.pw_gid)


class Progress:
    """Numbered progress lines for long steps: ``[3/9] Starting Cassandra node 2 ... done (21.4s)``."""

    def __init__(self, total: int, stream=None):
        self.total, self.n = total, 0
        self.stream = stream or sys.stdout

    def step(self, label: str):
        self.n += 1
        return _Step(self, label)


class _Step:
    def __init__(self, progress: Progress, label: str):
        self.p, self.label = progress, label

    def __enter__(self):
        self.t0 = time.monotonic()
        self.p.stream.write(f"[{self.p.n}/{self.p.total}] {self.label} ... ")
        self.p.stream.flush()
        return self

    def __exit__(self, exc_type, exc, tb):
        took = time.monotonic() - self.t0
        if exc_type is None:
            self.p.stream.write(f"done ({took:.1f}s)\n")
        else:
            self.p.stream.write(f"FAILED ({took:.1f}s)\n")
        self.p.stream.flush()
        return False
