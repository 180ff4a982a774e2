"""Test-suite wiring: one real test cluster per session (cluster.profiles.TEST).

The cluster is the same one ``./letsema up`` starts — three district PostgreSQL instances, Redis, Celery
workers, gunicorn nodes and a 3-node Cassandra ring — on other ports and ring addresses (127.0.0.11-13),
so a running demo cluster is never touched. Nothing here is mocked.
"""

from __future__ import annotations

import os
import signal
import time

import pytest
import requests

from cluster import nodes
from cluster.commands import down, up
from cluster.procs import pid_alive, read_pid
from cluster.profiles import TEST

RING_NODES = int(os.environ.get("LETSEMA_TEST_RING", "3"))


@pytest.fixture(scope="session")
def test_cluster():
    up(TEST, ring=RING_NODES, demo_data=False, web_workers=1)
    yield TEST
    if os.environ.get("LETSEMA_TEST_KEEP_CLUSTER") != "1":
        down(TEST)


@pytest.fixture(scope="session")
def django_db_setup(test_cluster, django_db_setup):  # noqa: F811 - extends pytest-django's fixture
    yield


@pytest.fixture(scope="module")
def module_db(django_db_setup, django_db_blocker):
    """Database access for a module-scoped fixture that builds data once for the module's tests: everything it
    writes is inside one transaction rolled back when the module ends, and each test (``django_db``, not
    transactional) runs in a savepoint inside it, so no test sees another's changes. A module using it must not
    hold ``transaction=True`` tests (they would run inside the open transaction)."""
    from django.db import transaction

    with django_db_blocker.unblock(), transaction.atomic():
        yield
        transaction.set_rollback(True)


@pytest.fixture
def node_url(test_cluster):
    """Base URL of a district node of the test cluster: ``node_url("maseru")``."""

    def url(code: str) -> str:
        return test_cluster.district(code).public_url

    return url


def wait_for(predicate, timeout: float, interval: float = 0.5, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last value: {last!r})")


def wait_worker_ready(cluster, code: str, offset: int) -> None:
    """Wait until district ``code``'s Celery worker log says ``ready.`` after byte ``offset`` (its size before the
    start)."""
    log = nodes.worker_log(cluster, code)

    def ready() -> bool:
        with open(log, "rb") as fh:
            fh.seek(offset)
            return b" ready." in fh.read()

    wait_for(ready, 90, interval=0.1, what=f"worker-{code} ready")


def district_sql(cluster, code: str, sql: str, params=()) -> list[tuple]:
    """Rows of ``sql`` on district ``code``'s own database (its primary), as the node sees it — not the test
    process's test database."""
    from cluster import drills, pg_standby

    return pg_standby.query(drills._primary(cluster, code), sql, params, dbname=cluster.district(code).pg_name)


def kill_worker(cluster, code: str, *, must_run: bool = True) -> None:
    """SIGKILL district ``code``'s Celery worker with its whole process group, as a crash would end it."""
    pid = read_pid(nodes.worker_pidfile(cluster, code))
    if pid is None and not must_run:
        return
    assert pid is not None, f"worker-{code} is not running"
    os.killpg(os.getpgid(pid), signal.SIGKILL)  # the Celery main process, its pool child and its beat, mid-work
    wait_for(lambda: not pid_alive(pid), 10, interval=0.1, what=f"worker-{code} gone")
    try:
        os.waitpid(pid, os.WNOHANG)  # reap it if this process started it (the test cluster fixture)
    except ChildProcessError:
        pass


def healthz(base: str) -> tuple[int, dict]:
    r = requests.get(f"{base}/healthz", timeout=10)
    return r.status_code, r.json()


@pytest.fixture
def network_policy(test_cluster):
    """Set the network policy for one test; afterwards the settings default applies again."""

    def set_policy(**kw):
        kw.setdefault("max_active_loans", None)
        kw.setdefault("max_dti", None)
        kw.setdefault("reservation_days", 30)
        from node.credit.stacking import policy_write

        return policy_write(by="tests", **kw)

    yield set_policy
    from cassandra.query import SimpleStatement

    from replication.ring import get_session

    session, cl = get_session()
    session.execute(SimpleStatement("DELETE FROM network_policy WHERE name = 'network'", consistency_level=cl))


def _allow_test_flush(sender, connection, **kwargs):
    """Only the test suite may TRUNCATE append-only tables (Django's flush after transaction=True tests)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("SET letsema.test_flush = 'on'")


def pytest_configure(config):
    from django.db.backends.signals import connection_created

    connection_created.connect(_allow_test_flush, dispatch_uid="letsema-test-flush")
