"""Immutable event rows in the ring's ``credit_events`` table: one partition per partition key (a borrower key).

Inserts are keyed by event id, so writing one event twice leaves one row; a partition is read newest first.
Knows nothing about what the events mean.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from replication.ring import RingUnavailable, get_prepared


@dataclass(frozen=True)
class EventRow:
    partition_key: str
    event_time: datetime  # UTC, aware
    event_id: uuid.UUID
    event_type: str
    origin_district: str
    payload: dict


def event_insert(*, partition_key: str, event_time: datetime, event_id: uuid.UUID, event_type: str,
                 origin_district: str, payload: dict) -> None:
    try:
        session, stmt = get_prepared(
            "INSERT INTO credit_events (borrower_key, event_time, event_id, event_type, origin_district, payload) "
            "VALUES (?, ?, ?, ?, ?, ?)")
        session.execute(stmt, (partition_key, event_time, event_id, event_type, origin_district,
                               json.dumps(payload, sort_keys=True, default=str)))
    except RingUnavailable:
        raise
    except Exception as exc:
        raise RingUnavailable(f"{type(exc).__name__}: {str(exc)[:200]}") from exc


def events_read(partition_key: str, *, limit: int = 5000) -> list[EventRow]:
    """The partition, newest first, at the working consistency level (one partition read)."""
    try:
        session, stmt = get_prepared(
            "SELECT event_time, event_id, event_type, origin_district, payload FROM credit_events "
            "WHERE borrower_key = ? LIMIT ?")
        rows = list(session.execute(stmt, (partition_key, limit)))
    except Exception as exc:
        raise RingUnavailable(f"{type(exc).__name__}: {str(exc)[:200]}") from exc
    return [
        EventRow(partition_key, r.event_time.replace(tzinfo=UTC) if r.event_time.tzinfo is None else r.event_time,
                 r.event_id, r.event_type, r.origin_district, json.loads(r.payload) if r.payload else {})
        for r in rows
    ]
