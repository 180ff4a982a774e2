"""Dependency checks behind /healthz: PostgreSQL, the Cassandra ring, the Celery broker (Redis).

Each check is bounded by a short timeout and returns ``(ok, detail)``; run concurrently so a hung
dependency costs one timeout, not the sum.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from django.conf import settings
from django.db import connections


def check_postgres() -> str:
    conn = connections.create_connection("default")  # a private connection: safe in a worker thread
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
            cur.fetchone()
    finally:
        conn.close()
    return "ok"


def check_cassandra() -> str:
    from replication.ring import ring_ping

    ring_ping()
    return "ok"


def check_broker() -> str:
    import redis

    timeout = settings.HEALTH_CHECK_TIMEOUT_SECONDS
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        client.ping()
    finally:
        client.close()
    return "ok"


CHECKS: dict[str, Callable[[], str]] = {
    "postgres": check_postgres,
    "cassandra": check_cassandra,
    "broker": check_broker,
}

_pool = ThreadPoolExecutor(max_workers=6, thread_name_prefix="healthz")


def run_checks() -> dict[str, dict]:
    budget = settings.HEALTH_CHECK_TIMEOUT_SECONDS + 1.0
    started = time.monotonic()
    futures = {name: _pool.submit(_timed, fn) for name, fn in CHECKS.items()}
    results: dict[str, dict] = {}
    for name, fut in futures.items():
        remaining = max(0.05, budget - (time.monotonic() - started))
        try:
            results[name] = fut.result(timeout=remaining)
        except FutureTimeout:
            results[name] = {"status": "down", "error": f"no answer within {budget:.1f}s"}
    return results


def _timed(fn: Callable[[], str]) -> dict:
    t0 = time.monotonic()
    try:
        fn()
        return {"status": "up", "ms": round((time.monotonic() - t0) * 1000, 1)}
    except Exception as exc:  # any failure means "down"; the detail says why
        message = str(exc).splitlines()[0][:300] if str(exc) else ""
        return {"status": "down", "error": f"{type(exc).__name__}: {message}".rstrip(": ")}
