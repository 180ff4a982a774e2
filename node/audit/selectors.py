"""Reading the audit trail: verifying the hash chain.

The chain detects any change a database superuser (or the table owner, after disabling the append-only
triggers) makes to existing rows: an edited row no longer matches its hash, a re-hashed row breaks the next
row's ``prev_hash``, a deleted row leaves a gap in the gapless ``seq``. What it cannot detect alone is the
removal of the *newest* rows or a complete re-hash of the chain from some point on; that needs the head hash
anchored outside this database (future work: publish it periodically).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from node.audit.models import GENESIS_HASH, AuditEvent, event_hash


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int  # events checked before the first broken link (all of them when ok)
    first_broken_seq: int | None = None
    reason: str = ""


def audit_verify_chain(
    *, progress: Callable[[int], None] | None = None, progress_every: int = 10_000
) -> VerifyResult:
    """Walk the chain in ``seq`` order (one consistent snapshot) and report the first broken link."""
    expected_seq = 1
    prev_hash = GENESIS_HASH
    checked = 0
    for event in AuditEvent.objects.order_by("seq").iterator(chunk_size=2000):
        if event.seq != expected_seq:
            if event.seq < expected_seq:  # impossible with a primary key; kept for a tampered schema
                return VerifyResult(False, checked, event.seq, f"seq {event.seq} out of order")
            missing = (
                f"seq {expected_seq} is missing" if event.seq == expected_seq + 1
                else f"seqs {expected_seq}..{event.seq - 1} are missing"
            )
            return VerifyResult(False, checked, expected_seq, f"{missing} (deleted rows); next present is {event.seq}")
        if event.prev_hash != prev_hash:
            what = "the genesis hash" if expected_seq == 1 else f"the hash of seq {expected_seq - 1}"
            return VerifyResult(False, checked, event.seq, f"prev_hash does not match {what}")
        recomputed = event_hash(event.prev_hash, event.content())
        if recomputed != event.hash:
            return VerifyResult(False, checked, event.seq, "content does not match its hash (row altered)")
        checked += 1
        expected_seq += 1
        prev_hash = event.hash
        if progress is not None and checked % progress_every == 0:
            progress(checked)
    return VerifyResult(True, checked)
