"""Per-partition holds in the ring, changed only by compare-and-set (the stacking guard's primitive).

A partition (e.g. a borrower key) has one row: a version number and a map ``hold key -> JSON``. ``holds_change``
reads the row, lets the caller compute the new map (or refuse by raising), and writes it with
``UPDATE ... IF version = v`` (``INSERT ... IF NOT EXISTS`` for a new row). A lost race re-reads and re-decides;
an unknown outcome (a timeout during the Paxos round) is resolved the same way, which is why ``change`` must be
idempotent: "make sure hold X is in the map", never "add another hold". Every write to this table is a
lightweight transaction — plain writes never touch these cells. Knows nothing about loans.

The first read is at QUORUM, not SERIAL: a SERIAL read is a Paxos round of its own, and the compare-and-set makes
the decision safe without it. Every write is a compare-and-set that moves ``version`` to ``version + 1`` and
nothing ever deletes the row, so a version names exactly one map: a write ``IF version = v`` applies only if the
map it was computed from is still the current one. A stale QUORUM read therefore costs at most a lost race (then
every later read is SERIAL). The one place staleness could mislead is "nothing to change": a stale map may already
look like the wanted one (a hold released or added since), and a stale map may hold a released hold that makes
``change`` refuse: both answers are only trusted from a SERIAL read.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from cassandra import ConsistencyLevel, Unavailable
from cassandra.cluster import NoHostAvailable
from replication.ring import RingUnavailable, get_prepared

SERIAL = ConsistencyLevel.SERIAL
Holds = dict[str, dict]


@dataclass(frozen=True)
class HoldsState:
    version: int  # 0: no row yet
    holds: Holds


@dataclass(frozen=True)
class ChangeResult:
    state: HoldsState  # the state after the change
    written: bool  # False when the map already was what ``change`` wanted
    attempts: int


class _Contended(RingUnavailable):
    """A Paxos round that did not settle (timeout, unknown outcome, contention): worth another round."""


def _run(query: str, params: tuple, *, read: bool, serial: bool = True):
    try:
        # prepared: the routing key sends each Paxos round straight to a replica of the borrower's partition
        session, prepared = get_prepared(query.replace("%s", "?"), idempotent=read)
        stmt = prepared.bind(params)
        if read and serial:
            stmt.consistency_level = SERIAL
        stmt.serial_consistency_level = SERIAL
        return session.execute(stmt)
    except RingUnavailable:
        raise
    except (Unavailable, NoHostAvailable) as exc:  # no quorum: fail at once, retrying cannot help
        raise RingUnavailable(f"credit holds: {type(exc).__name__}: {str(exc)[:200]}") from exc
    except Exception as exc:  # WriteTimeout/ReadTimeout, "CAS operation result is unknown", client timeouts
        raise _Contended(f"credit holds: {type(exc).__name__}: {str(exc)[:200]}") from exc


def holds_read(partition_key: str, *, serial: bool = True) -> HoldsState:
    """The partition's row: at SERIAL (linearizable, a Paxos round), or at the working consistency level (QUORUM:
    may be stale against a concurrent compare-and-set, see the module docstring)."""
    row = _run("SELECT version, holds FROM credit_holds WHERE borrower_key = %s", (partition_key,),
               read=True, serial=serial).one()
    if row is None:
        return HoldsState(0, {})
    return HoldsState(int(row.version), {k: json.loads(v) for k, v in (row.holds or {}).items()})


def holds_change(partition_key: str, change: Callable[[Holds], Holds], *, attempts: int = 12) -> ChangeResult:
    """Apply ``change`` (current map -> wanted map; may raise to refuse) with compare-and-set. Raises
    ``RingUnavailable`` when the ring cannot decide (no quorum, or contention that outlasts ``attempts``)."""
    last_error: Exception | None = None
    serial = False  # the first read at QUORUM; SERIAL after a lost race, a contended round, or to confirm a no-op
    for attempt in range(1, attempts + 1):
        try:
            state = holds_read(partition_key, serial=serial)
        except _Contended as exc:
            last_error, serial = exc, True
            time.sleep(random.uniform(0.02, 0.1) * attempt)
            continue
        try:
            wanted = change({k: dict(v) for k, v in state.holds.items()})
        except Exception:
            if serial:
                raise
            serial = True  # a refusal is only trusted from a linearizable read (the stale map may hold a released hold)
            continue
        if wanted == state.holds:
            if not serial:  # "nothing to change" is only trusted from a linearizable read
                serial = True
                continue
            return ChangeResult(state, False, attempt)
        encoded = {k: json.dumps(v, sort_keys=True, default=str) for k, v in wanted.items()}
        now = datetime.now(UTC)
        try:
            if state.version == 0:
                rs = _run("INSERT INTO credit_holds (borrower_key, version, holds, updated_at) VALUES (%s, 1, %s, %s) "
                          "IF NOT EXISTS", (partition_key, encoded, now), read=False)
            else:
                rs = _run("UPDATE credit_holds SET version = %s, holds = %s, updated_at = %s WHERE borrower_key = %s "
                          "IF version = %s", (state.version + 1, encoded, now, partition_key, state.version), read=False)
        except _Contended as exc:
            # the outcome is unknown (a timeout mid-Paxos, a proposal accepted by too few): re-read and decide again
            last_error, serial = exc, True
            time.sleep(random.uniform(0.02, 0.1) * attempt)
            continue
        if rs.was_applied:
            return ChangeResult(HoldsState(state.version + 1, wanted), True, attempt)
        serial = True
        time.sleep(random.uniform(0.005, 0.03) * attempt)  # lost the race: someone else changed the row
    raise RingUnavailable(f"credit holds for one borrower could not be settled after {attempts} attempts"
                          + (f" ({last_error})" if last_error else ""))
