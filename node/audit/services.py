"""Writing the audit trail: :func:`audit_record`, called by every service inside its own transaction.

Each event records who (actor, with username and role copied), what (action, target, before/after), when
(``occurred_at``, microseconds, taken by this service), from where (client IP and request id from the request
context, :mod:`node.core.logging`) and for which MFI. It commits or rolls back with the change it describes.

Sequence and hash allocation
----------------------------
``seq`` is a plain ``bigint`` primary key that this function allocates itself as *last seq + 1*, while
holding a transaction-level advisory lock (``pg_advisory_xact_lock(LOCK_KEY)``). The lock serialises all
appends of the node, so two transactions can never read the same last row and fork the chain; it is released
when the caller's transaction commits or rolls back. Allocating under the lock (rather than ``nextval`` of a
``BigAutoField`` sequence) keeps the numbering *gapless*: a rolled-back transaction gives its number back, so
a missing ``seq`` can only mean a deleted row, which ``audit_verify`` reports. Knowing ``seq`` before the
INSERT is also what lets the hash be computed without ever UPDATE-ing the row.

The lock is taken in its own statement, before the statement that reads the last row: under READ COMMITTED
(Django's default) each statement takes a fresh snapshot, so the read sees the row committed by the previous
lock holder. Under REPEATABLE READ/SERIALIZABLE the snapshot may predate the lock; the primary key then turns
a stale read into an error (unique violation or serialization failure) — never into a forked chain.

``hash = sha256(prev_hash + canonical_json(content))`` (:func:`node.audit.models.event_hash`), with the first
event's ``prev_hash`` 64 zeros. So that the verifier recomputes exactly the same bytes from what it reads
back, ``before``/``after`` and the IP are normalised *by PostgreSQL* (``::jsonb::text``, ``host(::inet)``)
before hashing and storing: jsonb reorders keys and may re-render numbers.

Cost and usage: the advisory lock is held from this call until the caller's transaction ends, so audited
writes of a node are serialised for that stretch. Call ``audit_record`` as the *last* write of a transaction
(after the row locks the service needs) and keep slow work (ring, peers, ``.delay()``) out of transactions, as
ARCHITECTURE.md already requires. PostgreSQL's deadlock detector covers advisory locks if that rule is broken.

Batches: :func:`audit_record_many` appends many events in three statements (the lock once, the head, one
INSERT), chaining their hashes in Python exactly as one-by-one appends would; the set-based writers (payroll
import, ``repayment_post``) use it, called last in their transaction like ``audit_record``.

Append-only: triggers on ``audit_auditevent`` (migration 0002) refuse UPDATE, DELETE and TRUNCATE from any
client. The node's database role *owns* the table, and GRANTs never restrain an owner, so the trigger (not the
``REVOKE ... FROM PUBLIC`` that goes with it) is what stops the application. An owner or superuser (a DBA) can
still disable triggers; that is not prevented but detected — the hash chain (``manage.py audit_verify``) reports
the first altered row or the gap left by a deleted one.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction
from django.db.models.fields.files import FieldFile
from django.utils import timezone

from node.audit.models import GENESIS_HASH, AuditEvent, event_content, event_hash
from node.core.bulk import insert_columns
from node.core.logging import current_client_ip, current_request_id

if TYPE_CHECKING:
    from node.mfis.models import Mfi
    from node.users.models import User

#: Key of the advisory lock serialising appends ("LETSAUDT" in ASCII; database-local, so one chain per DB).
LOCK_KEY = 0x4C45_5453_4155_4454


def audit_record(
    *,
    actor: User | None,
    action: str,
    target_type: str,
    target_id: str | int = "",
    mfi: Mfi | None = None,
    before: dict | None = None,
    after: dict | None = None,
) -> AuditEvent:
    """Append one event to the chain, in the caller's transaction (or its own one when called outside)."""
    if not action or not target_type:
        raise ValueError("audit_record needs an action and a target_type")
    for name, value in (("before", before), ("after", after)):
        if value is not None and not isinstance(value, dict):
            raise TypeError(f"audit_record {name} must be a dict or None, not {type(value).__name__}")

    actor_id = getattr(actor, "pk", None)
    with transaction.atomic():
        with connection.cursor() as cursor:
            # Statement 1: wait for the chain lock; let PostgreSQL normalise what will be hashed.
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s), %s::jsonb::text, %s::jsonb::text, host(%s::inet)",
                [LOCK_KEY, _json_or_none(before), _json_or_none(after), _client_ip()],
            )
            _, before_text, after_text, ip = cursor.fetchone()
        # Statement 2 (fresh snapshot, after the lock): the head of the chain.
        last = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first()
        seq, prev_hash = (last[0] + 1, last[1]) if last else (1, GENESIS_HASH)
        event = AuditEvent(
            seq=seq,
            occurred_at=timezone.now(),
            actor_id=actor_id,
            actor_username=(getattr(actor, "username", "") or "") if actor_id is not None else "",
            actor_role=(getattr(actor, "role", "") or "") if actor_id is not None else "",
            mfi_id=None if mfi is None else mfi.pk,
            action=action,
            target_type=target_type,
            target_id="" if target_id is None else str(target_id),
            ip=ip,
            request_id=(current_request_id() or "")[:64],
            before=None if before_text is None else json.loads(before_text),
            after=None if after_text is None else json.loads(after_text),
            prev_hash=prev_hash,
        )
        event.hash = event_hash(prev_hash, event.content())
        event.save(force_insert=True)
    return event


@dataclass(frozen=True)
class AuditSpec:
    """One event for :func:`audit_record_many` (the keyword arguments of :func:`audit_record` but the actor)."""

    action: str
    target_type: str
    target_id: str | int = ""
    mfi_id: int | None = None
    before: dict | None = None
    after: dict | None = None


def audit_record_many(*, actor: User | None, events: Sequence[AuditSpec]) -> list[tuple[int, str]]:
    """Append ``events`` (one actor, in order) to the chain in the caller's transaction, as :func:`audit_record`
    would one by one, in three statements whatever their number: the chain lock (taken once) with PostgreSQL
    normalising every ``before``/``after``, the head of the chain, one multi-row INSERT. Each event gets the next
    ``seq`` and its hash is chained on the previous one's in Python, exactly as :func:`audit_record` computes it
    (the verifier cannot tell the two apart); all share one ``occurred_at``. Answers ``(seq, hash)`` per event."""
    if not events:
        return []
    for spec in events:
        if not spec.action or not spec.target_type:
            raise ValueError("audit_record_many needs an action and a target_type for every event")
        for name, value in (("before", spec.before), ("after", spec.after)):
            if value is not None and not isinstance(value, dict):
                raise TypeError(f"audit_record_many {name} must be a dict or None, not {type(value).__name__}")

    actor_id = getattr(actor, "pk", None)
    username = (getattr(actor, "username", "") or "") if actor_id is not None else ""
    role = (getattr(actor, "role", "") or "") if actor_id is not None else ""
    raw = [_json_or_none(v) for spec in events for v in (spec.before, spec.after)]
    with transaction.atomic(savepoint=False):
        with connection.cursor() as cursor:
            # Statement 1: the chain lock, once for all; PostgreSQL normalises what will be hashed (in order).
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s), "
                "ARRAY(SELECT t.doc::jsonb::text FROM unnest(%s::text[]) WITH ORDINALITY AS t(doc, n) ORDER BY t.n), "
                "host(%s::inet)",
                [LOCK_KEY, raw, _client_ip()],
            )
            _, normalised, ip = cursor.fetchone()
        # Statement 2 (fresh snapshot, after the lock): the head of the chain.
        last = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first()
        seq, prev_hash = (last[0] + 1, last[1]) if last else (1, GENESIS_HASH)
        now, request_id = timezone.now(), (current_request_id() or "")[:64]
        cols: dict[str, list] = {name: [] for name in (
            "seq", "target_id", "mfi", "action", "target_type", "before", "after", "prev_hash", "hash")}
        out = []
        for i, spec in enumerate(events):
            before_text, after_text = normalised[2 * i], normalised[2 * i + 1]
            before = None if before_text is None else json.loads(before_text)
            after = None if after_text is None else json.loads(after_text)
            target_id = "" if spec.target_id is None else str(spec.target_id)
            content = event_content(
                seq=seq, occurred_at=now, actor_id=actor_id, actor_username=username, actor_role=role,
                mfi_id=spec.mfi_id, action=spec.action, target_type=spec.target_type, target_id=target_id, ip=ip,
                request_id=request_id, before=before, after=after)
            digest = event_hash(prev_hash, content)
            for name, value in (("seq", seq), ("target_id", target_id), ("mfi", spec.mfi_id), ("action", spec.action),
                                ("target_type", spec.target_type), ("before", before), ("after", after),
                                ("prev_hash", prev_hash), ("hash", digest)):
                cols[name].append(value)
            out.append((seq, digest))
            seq, prev_hash = seq + 1, digest
        n = len(events)
        # Statement 3: every event in one INSERT.
        insert_columns(AuditEvent, {**cols, "occurred_at": [now] * n, "actor": [actor_id] * n,
                                    "actor_username": [username] * n, "actor_role": [role] * n, "ip": [ip] * n,
                                    "request_id": [request_id] * n})
    return out


def snapshot(instance: models.Model, fields: Iterable[str]) -> dict[str, Any]:
    """A JSON-safe dict of ``instance``'s ``fields`` for ``before``/``after``.

    Decimals, dates, times, durations and UUIDs become strings (DjangoJSONEncoder); a foreign key is recorded
    by its primary key under the field's name; a file by its stored name. Never pass secrets or raw national
    IDs here — the audit trail cannot be edited later.
    """
    out: dict[str, Any] = {}
    for name in fields:
        field = instance._meta.get_field(name)
        if field.many_to_many or field.one_to_many:
            raise ValueError(f"snapshot cannot record the to-many relation {name!r}")
        value = getattr(instance, field.attname) if field.is_relation else getattr(instance, name)
        if isinstance(value, FieldFile):
            value = value.name or None
        out[name] = value
    return json.loads(json.dumps(out, cls=DjangoJSONEncoder, allow_nan=False))


def _json_or_none(value: dict | None) -> str | None:
    return None if value is None else json.dumps(value, cls=DjangoJSONEncoder, allow_nan=False)


def _client_ip() -> str | None:
    raw = current_client_ip()
    if not raw:
        return None
    try:
        return str(ipaddress.ip_address(raw.split("%", 1)[0].strip()))  # zone ids are not valid inet
    except ValueError:
        return None


def audit_access_denied(*, actor: User, target_type: str, target_id) -> AuditEvent:
    """Record that ``actor`` asked for an object of another tenant (committed even though the request then
    answers 404 exactly as for a missing object)."""
    with transaction.atomic():
        return audit_record(actor=actor, action="access.denied", target_type=target_type, target_id=str(target_id),
                            mfi=getattr(actor, "mfi", None))
