"""The borrower directory in the ring: ``borrower_key -> home district`` (see replication/cql/0002).

Every write is a lightweight transaction and every read is at SERIAL, so the network-wide uniqueness of a
national ID holds when two districts register the same person at the same moment. Any ring failure
(unavailable, timeout, unknown LWT outcome) raises ``RingUnavailable``: registration fails closed.
"""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from cassandra import ConsistencyLevel
from cassandra.query import SimpleStatement

from replication.ring import RingUnavailable, get_session

SERIAL = ConsistencyLevel.SERIAL


@dataclass(frozen=True)
class DirectoryEntry:
    borrower_key: str
    home_district: str
    claim_id: uuid.UUID
    registered_at: datetime | None
    verified: bool
    verified_at: datetime | None
    verification_method: str | None


@dataclass(frozen=True)
class ClaimResult:
    applied: bool
    existing: DirectoryEntry | None


def _execute(query: str, params: tuple, *, read: bool = False):
    session, cl = get_session()
    stmt = SimpleStatement(query, consistency_level=SERIAL if read else cl, serial_consistency_level=SERIAL)
    try:
        return session.execute(stmt, params)
    except Exception as exc:
        raise RingUnavailable(f"borrower directory: {type(exc).__name__}: {str(exc)[:200]}") from exc


def _utc(value: datetime | None) -> datetime | None:
    # the driver returns naive datetimes that are UTC
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _entry(row) -> DirectoryEntry:
    return DirectoryEntry(
        borrower_key=row.borrower_key, home_district=row.home_district, claim_id=row.claim_id,
        registered_at=_utc(row.registered_at), verified=bool(row.verified), verified_at=_utc(row.verified_at),
        verification_method=row.verification_method,
    )


def directory_get(keys: list[str]) -> DirectoryEntry | None:
    """The entry under any of ``keys`` (all pepper versions), current version first."""
    for key in keys:
        row = _read_serial(key)
        if row is not None:
            return _entry(row)
    return None


def _read_serial(key: str):
    return _execute(
        "SELECT borrower_key, home_district, claim_id, registered_at, verified, verified_at, "
        "verification_method FROM borrower_directory WHERE borrower_key = %s",
        (key,), read=True,
    ).one()


def directory_claim(key: str, home_district: str, claim_id: uuid.UUID, *, attempts: int = 4) -> ClaimResult:
    """Claim ``key`` for ``home_district``. A Paxos round that times out (contention with another district
    claiming the same person) has an unknown outcome: read back at SERIAL — our claim id means we won, another
    one means we lost, no row means nobody won yet, so try again after a short random pause."""
    for attempt in range(attempts):
        try:
            rs = _execute(
                "INSERT INTO borrower_directory (borrower_key, home_district, claim_id, registered_at, verified) "
                "VALUES (%s, %s, %s, %s, false) IF NOT EXISTS",
                (key, home_district, claim_id, datetime.now(UTC)),
            )
            break
        except RingUnavailable:
            if attempt == attempts - 1:
                raise
            time.sleep(random.uniform(0.05, 0.3) * (attempt + 1))
            row = _read_serial(key)
            if row is None:
                continue
            if row.claim_id == claim_id:
                return ClaimResult(True, None)
            return ClaimResult(False, _entry(row))
    if rs.was_applied:
        return ClaimResult(True, None)
    row = rs.one()
    return ClaimResult(False, _entry(row))  # a refused LWT answers with the existing row


def directory_take_over(key: str, old_claim: uuid.UUID, new_claim: uuid.UUID) -> bool:
    """Replace an orphaned claim of this district (its local row was never committed)."""
    rs = _execute(
        "UPDATE borrower_directory SET claim_id = %s, registered_at = %s WHERE borrower_key = %s IF claim_id = %s",
        (new_claim, datetime.now(UTC), key, old_claim),
    )
    return bool(rs.was_applied)


def directory_release(key: str, claim_id: uuid.UUID) -> bool:
    rs = _execute("DELETE FROM borrower_directory WHERE borrower_key = %s IF claim_id = %s", (key, claim_id))
    return bool(rs.was_applied)


def directory_mark_verified(key: str, claim_id: uuid.UUID, method: str) -> bool:
    rs = _execute(
        "UPDATE borrower_directory SET verified = true, verified_at = %s, verification_method = %s "
        "WHERE borrower_key = %s IF claim_id = %s",
        (datetime.now(UTC), method, key, claim_id),
    )
    return bool(rs.was_applied)
