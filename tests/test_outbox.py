"""The transactional outbox and its shipper, against the real PostgreSQL and the real ring."""

from __future__ import annotations

import uuid

import pytest
from cassandra.query import SimpleStatement
from django.db import transaction

from replication.models import OutboxEvent
from replication.outbox import OutboxOutsideTransaction, outbox_enqueue, outbox_lag, ship_batch
from replication.ring import get_session
from replication.ring_writer import write_event

pytestmark = pytest.mark.django_db


def _key() -> str:
    return "v1:" + uuid.uuid4().hex * 2


def _ring_rows(key: str):
    session, cl = get_session()
    return list(session.execute(SimpleStatement(
        "SELECT event_id, event_type, origin_district, payload FROM credit_events WHERE borrower_key = %s",
        consistency_level=cl), (key,)))


def test_enqueue_requires_the_domain_transaction():
    with pytest.raises(OutboxOutsideTransaction):
        # pytest-django wraps the test in a transaction; leave it to look like autocommit code
        from django.db import connection

        in_block = connection.in_atomic_block
        connection.in_atomic_block = False
        try:
            outbox_enqueue(event_type="loan.disbursed", partition_key=_key(), payload={})
        finally:
            connection.in_atomic_block = in_block


def test_event_exists_only_if_the_change_committed():
    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        outbox_enqueue(event_type="loan.disbursed", partition_key=_key(), payload={"principal": "100.00"})
        raise Boom
    assert OutboxEvent.objects.count() == 0


def test_ship_to_the_ring_idempotently():
    a, b = _key(), _key()
    with transaction.atomic():
        for i, key in enumerate((a, a, b)):
            outbox_enqueue(event_type=f"loan.event{i}", partition_key=key, payload={"n": i, "amount": "10.00"})
    assert outbox_lag().pending == 3
    result = ship_batch(write_event)
    assert (result.shipped, result.failed, result.blocked) == (3, 0, 0)
    assert outbox_lag().pending == 0
    rows = _ring_rows(a)
    assert sorted(r.event_type for r in rows) == ["loan.event0", "loan.event1"]
    assert {r.origin_district for r in rows} == {"maseru"}
    # a repeated write (a crash after the ring write, before marking shipped) adds nothing
    write_event(OutboxEvent.objects.filter(partition_key=a).first())
    assert len(_ring_rows(a)) == 2
    assert ship_batch(write_event).shipped == 0


def test_a_failed_event_holds_back_its_partition_only_and_order_is_kept():
    a, b = _key(), _key()
    with transaction.atomic():
        for i, key in enumerate((a, b, a, b)):
            outbox_enqueue(event_type=f"e{i}", partition_key=key, payload={"i": i})
    written = []

    def flaky(ev):
        if ev.partition_key == a and not written_ok["a"]:
            raise ConnectionError("ring node down")
        written.append((ev.partition_key, ev.event_type))

    written_ok = {"a": False}
    r = ship_batch(flaky)
    assert (r.shipped, r.failed, r.blocked) == (2, 1, 1)
    assert written == [(b, "e1"), (b, "e3")]
    failed = OutboxEvent.objects.get(event_type="e0")
    assert failed.attempts == 1 and "ring node down" in failed.last_error and failed.shipped_at is None
    assert outbox_lag().pending == 2
    written_ok["a"] = True
    r = ship_batch(flaky)
    assert (r.shipped, r.failed, r.blocked) == (2, 0, 0)
    assert written[-2:] == [(a, "e0"), (a, "e2")]


def test_partitions_ship_side_by_side_each_in_order():
    """With concurrency the partitions are written at once by several threads; within a partition the order is kept
    and a refusal holds back only the rest of that partition. The rows are marked in one statement."""
    import threading
    import time

    keys = [_key() for _ in range(6)]
    with transaction.atomic():
        for i in range(4):
            for k in keys:
                outbox_enqueue(event_type=f"e{i}", partition_key=k, payload={"i": i})
    written, threads, bad = [], set(), keys[2]

    def write(ev):
        threads.add(threading.current_thread().name)
        time.sleep(0.005)  # a ring round trip: the pool needs more than one thread
        if ev.partition_key == bad and ev.event_type == "e1":
            raise ConnectionError("timeout")
        written.append((ev.partition_key, ev.event_type))

    r = ship_batch(write, concurrency=4)
    assert (r.shipped, r.failed, r.blocked) == (5 * 4 + 1, 1, 2)
    assert len(threads) > 1 and all(t.startswith("ship") for t in threads)
    for k in keys:
        mine = [t for key, t in written if key == k]
        assert mine == (["e0"] if k == bad else ["e0", "e1", "e2", "e3"])
    assert OutboxEvent.objects.filter(partition_key=bad, shipped_at__isnull=True).count() == 3
    assert OutboxEvent.objects.get(partition_key=bad, event_type="e1").last_error == "ConnectionError: timeout"
    assert OutboxEvent.objects.filter(shipped_at__isnull=False, attempts=1).count() == 21


def test_ship_outbox_command(capsys):
    from django.core.management import call_command

    with transaction.atomic():
        outbox_enqueue(event_type="loan.applied", partition_key=_key(), payload={})
    call_command("ship_outbox")
    assert "shipped 1, failed 0, held back 0; pending 0" in capsys.readouterr().out


def test_a_commit_with_events_wakes_the_shipper_once_per_window(django_capture_on_commit_callbacks, monkeypatch,
                                                                settings):
    """After a commit that wrote events, one shipping run is queued, due at the end of the window
    (LETSEMA_SHIP_WAKE_MS); further commits in that window queue nothing (that run ships them); the next window
    queues again. Coalesced through the node's Redis, so it holds across processes. Redis unreachable: logged,
    nothing raised (the beat ships)."""
    import time

    import redis

    from replication import outbox, tasks
    from replication.outbox import outbox_enqueue_many

    sent = []
    monkeypatch.setattr(tasks.ship_outbox, "apply_async", lambda **kw: sent.append(kw))
    settings.LETSEMA_SHIP_WAKE_MS = 300
    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(outbox.WAKE_KEY)

    with django_capture_on_commit_callbacks(execute=True):
        outbox_enqueue(event_type="loan.disbursed", partition_key=_key(), payload={})
    assert sent == [{"countdown": 0.3, "expires": 60}]
    with django_capture_on_commit_callbacks(execute=True):
        outbox_enqueue_many([("loan.repaid", _key(), {}), ("loan.repaid", _key(), {})])
    assert len(sent) == 1  # same window: the queued run ships these too
    time.sleep(0.4)
    with django_capture_on_commit_callbacks(execute=True):
        outbox_enqueue(event_type="loan.disbursed", partition_key=_key(), payload={})
    assert len(sent) == 2

    with django_capture_on_commit_callbacks(execute=True) as callbacks:  # nothing written: no wake-up
        outbox_enqueue_many([])
    assert callbacks == [] and len(sent) == 2
    settings.LETSEMA_SHIP_WAKE_MS = 0  # only the beat
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        outbox_enqueue(event_type="loan.disbursed", partition_key=_key(), payload={})
    assert callbacks == []

    settings.LETSEMA_SHIP_WAKE_MS = 300
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens there (a client of its own: by URL)
    warned = []
    monkeypatch.setattr(outbox.log, "warning", lambda msg, **kw: warned.append(msg))
    with django_capture_on_commit_callbacks(execute=True):
        outbox_enqueue(event_type="loan.disbursed", partition_key=_key(), payload={})
    assert len(sent) == 2 and warned and "could not wake the outbox shipper" in warned[0]
