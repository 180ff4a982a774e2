"""Writes outbox events to the ring at the working consistency level, each idempotently.

Two kinds: ``holds.set`` changes a partition's holds by compare-and-set (drop some keys, put others — re-applying it
changes nothing); every other event type is an immutable row in ``credit_events`` keyed by its event id.
"""

from __future__ import annotations

from django.conf import settings

from replication.events import event_insert
from replication.holds import holds_change
from replication.models import OutboxEvent

HOLDS_SET = "holds.set"


def write_event(ev: OutboxEvent) -> None:
    if ev.event_type == HOLDS_SET:
        drop, put = set(ev.payload.get("drop", [])), dict(ev.payload.get("put", {}))

        def change(holds: dict) -> dict:
            kept = {k: v for k, v in holds.items() if k not in drop}
            kept.update(put)
            return kept

        holds_change(ev.partition_key, change)
        return
    event_insert(partition_key=ev.partition_key, event_time=ev.occurred_at, event_id=ev.event_id,
                 event_type=ev.event_type, origin_district=settings.DISTRICT.code, payload=ev.payload)
