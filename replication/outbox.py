"""Outbox API for domain services (which know what happened) and the shipper (which knows only rows).

``outbox_enqueue`` must run inside the domain transaction: the event exists if and only if the change committed.
The shipper (``ship_batch``) moves unshipped events to the ring in ``seq`` order, under row locks with SKIP LOCKED so
several workers never ship one event twice at the same time; the ring insert is keyed by ``event_id`` and so is
idempotent if a crash repeats it. An event that fails blocks the later events of the same partition key (order per
borrower) but not the others. When the ring is down, events wait and drain when it returns.

Wake-up on commit: the beat ships every few seconds (``LETSEMA_SHIP_EVERY``, the safety net); a transaction that
wrote events also asks for a shipping run ``LETSEMA_SHIP_WAKE_MS`` after it commits, coalesced across the node's
processes with one Redis key (``SET NX PX``, ``node.core.wakeup``): the first commit of a window queues one ``ship_outbox`` task due at
the window's end, which ships whatever committed meanwhile; a commit after the window opens the next one. So an event
reaches the ring within about that window plus one shipping run, with at most ``1000 / LETSEMA_SHIP_WAKE_MS``
broker messages a second however many transactions commit. If Redis cannot be reached the beat still ships.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Min, Q
from django.utils import timezone

from node.core.bulk import insert_columns
from node.core.wakeup import wake_after_commit
from replication.models import OutboxEvent

log = logging.getLogger("letsema.replication")
WAKE_KEY = "letsema:outbox:ship-wake"


class OutboxOutsideTransaction(RuntimeError):
    pass


def _wake_shipper_after_commit() -> None:
    """After commit: make sure a shipping run is due within ``LETSEMA_SHIP_WAKE_MS`` (0: only the beat ships)."""
    from replication import tasks

    if settings.LETSEMA_SHIP_WAKE_MS > 0:
        wake_after_commit(key=WAKE_KEY, window_ms=settings.LETSEMA_SHIP_WAKE_MS, task=tasks.ship_outbox, log=log,
                          what="the outbox shipper")


def outbox_enqueue(*, event_type: str, partition_key: str, payload: dict, occurred_at: datetime | None = None) -> OutboxEvent:
    if not connection.in_atomic_block:
        raise OutboxOutsideTransaction("outbox_enqueue must run inside the transaction of the change it describes")
    json.dumps(payload, default=str)  # fail early on a payload that cannot travel
    _wake_shipper_after_commit()
    return OutboxEvent.objects.create(event_type=event_type, partition_key=partition_key, payload=payload,
                                      occurred_at=occurred_at or timezone.now())


def outbox_enqueue_many(events: list[tuple[str, str, dict]]) -> int:
    """Many events at once (``(event_type, partition_key, payload)``, in order), e.g. from close of business."""
    if not connection.in_atomic_block:
        raise OutboxOutsideTransaction("outbox_enqueue_many must run inside the transaction of the change")
    now = timezone.now()
    # one INSERT of plain columns (node.core.bulk): no model instance per event; event_id etc. take their defaults
    insert_columns(OutboxEvent, {"event_type": [t for t, _, _ in events], "partition_key": [k for _, k, _ in events],
                                 "payload": [p for _, _, p in events], "occurred_at": [now] * len(events)})
    if events:
        _wake_shipper_after_commit()
    return len(events)


@dataclass(frozen=True)
class ShipResult:
    shipped: int
    failed: int
    blocked: int  # held back behind a failed event of the same partition key


@dataclass(frozen=True)
class Lag:
    """The shipping cursor as operators see it."""

    pending: int
    oldest_pending_seconds: float
    failing: int = 0  # pending events the ring refused at least once
    last_shipped_seq: int | None = None  # the cursor: the newest event that reached the ring
    last_shipped_at: datetime | None = None

    def to_json(self) -> dict:
        return {"pending": self.pending, "oldest_pending_seconds": round(self.oldest_pending_seconds, 1),
                "failing": self.failing, "last_shipped_seq": self.last_shipped_seq,
                "last_shipped_at": self.last_shipped_at.isoformat() if self.last_shipped_at else None}


def ship_batch(write: Callable[[OutboxEvent], None], *, limit: int = 200, concurrency: int = 1) -> ShipResult:
    """Ship up to ``limit`` unshipped events with ``write`` (the ring writer). With ``concurrency`` > 1 the
    partitions are written side by side (threads; the ring's driver session is thread-safe), each partition's events
    still one after the other in ``seq`` order, stopping at its first refusal. The rows are marked in one UPDATE."""
    shipped = failed = blocked = 0
    with transaction.atomic():
        events = list(
            OutboxEvent.objects.select_for_update(skip_locked=True).filter(shipped_at__isnull=True).order_by("seq")[:limit]
        )
        stuck: set[str] = set(
            OutboxEvent.objects.filter(shipped_at__isnull=True, seq__lt=events[0].seq)
            .values_list("partition_key", flat=True).distinct()
        ) if events else set()
        partitions: dict[str, list[OutboxEvent]] = {}
        for ev in events:
            if ev.partition_key in stuck:
                blocked += 1
            else:
                partitions.setdefault(ev.partition_key, []).append(ev)

        def ship_partition(evs: list[OutboxEvent]) -> tuple[list[OutboxEvent], OutboxEvent | None, int]:
            for i, ev in enumerate(evs):
                try:
                    write(ev)
                except Exception as exc:  # the ring said no: keep it, keep its partition's order
                    ev.last_error = f"{type(exc).__name__}: {exc}"[:300]
                    return evs[:i], ev, len(evs) - i - 1
            return evs, None, 0

        if concurrency > 1 and len(partitions) > 1:
            results = list(_pool(concurrency).map(ship_partition, partitions.values()))
        else:
            results = [ship_partition(evs) for evs in partitions.values()]
        now = timezone.now()
        done = [ev.seq for ok, _, _ in results for ev in ok]
        if done:
            OutboxEvent.objects.filter(seq__in=done).update(shipped_at=now, attempts=F("attempts") + 1, last_error="")
        for _, bad, held in results:
            if bad is not None:
                OutboxEvent.objects.filter(seq=bad.seq).update(attempts=F("attempts") + 1, last_error=bad.last_error)
                failed += 1
                blocked += held
        shipped = len(done)
    return ShipResult(shipped, failed, blocked)


_pools: dict[int, ThreadPoolExecutor] = {}


def _pool(size: int) -> ThreadPoolExecutor:
    """One pool per process (made on first use, so after a prefork worker has forked)."""
    if size not in _pools:
        _pools[size] = ThreadPoolExecutor(max_workers=size, thread_name_prefix="ship")
    return _pools[size]


def outbox_lag() -> Lag:
    pending = OutboxEvent.objects.filter(shipped_at__isnull=True).aggregate(
        n=Count("seq"), oldest=Min("created_at"), failing=Count("seq", filter=Q(attempts__gt=0)))
    last = OutboxEvent.objects.filter(shipped_at__isnull=False).order_by("-shipped_at", "-seq").values(
        "seq", "shipped_at").first()
    oldest = pending["oldest"]
    return Lag(pending=pending["n"], oldest_pending_seconds=(timezone.now() - oldest).total_seconds() if oldest else 0.0,
               failing=pending["failing"], last_shipped_seq=last["seq"] if last else None,
               last_shipped_at=last["shipped_at"] if last else None)
