"""Writes outbox events to the ring: one idempotent INSERT per event at the working consistency level."""

from __future__ import annotations

import json

from cassandra.query import SimpleStatement
from django.conf import settings

from replication.models import OutboxEvent
from replication.ring import RingUnavailable, get_session


def write_credit_event(ev: OutboxEvent) -> None:
    session, cl = get_session()
    stmt = SimpleStatement(
        "INSERT INTO credit_events (borrower_key, event_time, event_id, event_type, origin_district, payload) "
        "VALUES (%s, %s, %s, %s, %s, %s)",
        consistency_level=cl, is_idempotent=True,
    )
    try:
        session.execute(stmt, (ev.partition_key, ev.occurred_at, ev.event_id, ev.event_type,
                               settings.DISTRICT.code, json.dumps(ev.payload, sort_keys=True, default=str)))
    except RingUnavailable:
        raise
    except Exception as exc:
        raise RingUnavailable(f"{type(exc).__name__}: {str(exc)[:200]}") from exc
