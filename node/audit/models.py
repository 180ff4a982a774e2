"""The audit event: one append-only, hash-chained row per audited action.

Rows are written only by :func:`node.audit.services.audit_record` and never changed afterwards (a database
trigger refuses UPDATE, DELETE and TRUNCATE — see migration 0002). :func:`event_hash` is the one definition
of the chain hash, shared by the writer (services) and the verifier (selectors).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

#: ``prev_hash`` of the first event of a chain.
GENESIS_HASH = "0" * 64


class AuditEvent(models.Model):
    # Gapless: allocated by the service as last seq + 1 under an advisory lock (see node.audit.services), so a
    # missing number always means a removed row. Not a sequence/BigAutoField: those leave gaps on rollback.
    seq = models.BigIntegerField(primary_key=True)
    occurred_at = models.DateTimeField()
    actor = models.ForeignKey("users.User", null=True, blank=True, on_delete=models.PROTECT,
                              related_name="audit_events")
    # Copied at write time: a user's name and role can change later.
    actor_username = models.CharField(max_length=150, blank=True)
    actor_role = models.CharField(max_length=32, blank=True)
    # The MFI the action concerns (tenancy filtering); null for network-level actions.
    mfi = models.ForeignKey("mfis.Mfi", null=True, blank=True, on_delete=models.PROTECT, related_name="audit_events")
    action = models.CharField(max_length=64)  # e.g. "borrower.register", "access.denied"
    target_type = models.CharField(max_length=64)
    target_id = models.CharField(max_length=150, blank=True)  # a username, for failed log-ins
    ip = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    before = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    after = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["seq"]
        indexes = [
            models.Index(fields=["target_type", "target_id"], name="audit_target_idx"),
            models.Index(fields=["mfi", "occurred_at"], name="audit_mfi_occurred_idx"),
            # a staff member's recent events of one kind (the credit enquiry limit)
            models.Index(fields=["actor", "action", "occurred_at"], name="audit_actor_action_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.target_type}:{self.target_id} by {self.actor_username or '-'}"

    def content(self) -> dict[str, Any]:
        """The hashed content of this event (everything but the two hashes)."""
        return event_content(
            seq=self.seq, occurred_at=self.occurred_at, actor_id=self.actor_id, actor_username=self.actor_username,
            actor_role=self.actor_role, mfi_id=self.mfi_id, action=self.action, target_type=self.target_type,
            target_id=self.target_id, ip=self.ip, request_id=self.request_id, before=self.before, after=self.after,
        )


def event_content(
    *, seq: int, occurred_at: datetime, actor_id: int | None, actor_username: str, actor_role: str,
    mfi_id: int | None, action: str, target_type: str, target_id: str, ip: str | None, request_id: str,
    before: Any, after: Any,
) -> dict[str, Any]:
    return {
        "seq": seq,
        "occurred_at": occurred_at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor_id": actor_id,
        "actor_username": actor_username,
        "actor_role": actor_role,
        "mfi_id": mfi_id,
        "action": action,
        "target_type": target_type,
        "target_id": target_id,
        "ip": None if ip is None else str(ip),
        "request_id": request_id,
        "before": before,
        "after": after,
    }


def canonical_json(content: dict[str, Any]) -> str:
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def event_hash(prev_hash: str, content: dict[str, Any]) -> str:
    """``sha256(prev_hash + canonical_json(content))`` as 64 hex digits."""
    return hashlib.sha256((prev_hash + canonical_json(content)).encode("utf-8")).hexdigest()
