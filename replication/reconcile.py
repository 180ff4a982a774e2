"""Reconciliation: compare what this node has shipped with what the ring holds, and repair gaps.

For every partition key with shipped events, one partition read lists the event ids the ring has; a shipped event
the ring lacks (lost by a ring failure beyond its replication, a restored backup, an operator's mistake) is
written again — idempotent, because the event id is the key. Events this node's district wrote that the outbox
does not know are counted, never deleted. ``holds.set`` events are not rows and are not compared.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from cassandra.query import SimpleStatement
from django.conf import settings

from replication.models import OutboxEvent
from replication.ring import RingUnavailable, get_session
from replication.ring_writer import HOLDS_SET, write_event


@dataclass
class ReconcileReport:
    partitions: int = 0
    checked: int = 0  # shipped events compared
    present: int = 0
    missing: int = 0
    repaired: int = 0
    unknown_in_ring: int = 0  # rows from this district the outbox has no record of
    pending: int = 0  # not shipped yet: the shipper's job, not a gap
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}


def _ring_ids(partition_key: str, district: str) -> tuple[set, set]:
    session, cl = get_session()
    stmt = SimpleStatement("SELECT event_id, event_type, origin_district FROM credit_events WHERE borrower_key = %s",
                           consistency_level=cl, fetch_size=5000, is_idempotent=True)
    try:
        rows = list(session.execute(stmt, (partition_key,)))
    except Exception as exc:
        raise RingUnavailable(f"{type(exc).__name__}: {str(exc)[:200]}") from exc
    all_ids = {r.event_id for r in rows}
    ours = {r.event_id for r in rows if r.origin_district == district and r.event_type != "enquiry"}
    return all_ids, ours


def reconcile(*, repair: bool, progress: Callable[[int, int], None] | None = None) -> ReconcileReport:
    report = ReconcileReport()
    report.pending = OutboxEvent.objects.filter(shipped_at__isnull=True).count()
    by_key: dict[str, list[OutboxEvent]] = defaultdict(list)
    shipped = (OutboxEvent.objects.filter(shipped_at__isnull=False).exclude(event_type=HOLDS_SET)
               .only("seq", "event_id", "partition_key", "event_type", "occurred_at", "payload").order_by("seq"))
    for ev in shipped.iterator(chunk_size=2000):
        by_key[ev.partition_key].append(ev)
    known = set(OutboxEvent.objects.exclude(event_type=HOLDS_SET).values_list("event_id", flat=True))
    total = len(by_key)
    for i, (key, events) in enumerate(by_key.items(), start=1):
        report.partitions += 1
        try:
            in_ring, ours = _ring_ids(key, settings.DISTRICT.code)
        except RingUnavailable as exc:
            report.errors.append(f"{key[:12]}…: {exc}")
            if len(report.errors) >= 20:
                report.errors.append("stopped: the ring keeps failing")
                break
            continue
        report.unknown_in_ring += len(ours - known)
        for ev in events:
            report.checked += 1
            if ev.event_id in in_ring:
                report.present += 1
                continue
            report.missing += 1
            if repair:
                try:
                    write_event(ev)
                    report.repaired += 1
                except RingUnavailable as exc:
                    report.errors.append(f"event {ev.event_id}: {exc}")
        if progress:
            progress(i, total)
    return report
