"""The transactional outbox: events written in the same PostgreSQL transaction as the change they describe."""

from __future__ import annotations

import uuid

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models


class OutboxEvent(models.Model):
    seq = models.BigAutoField(primary_key=True)  # shipping order
    event_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)  # the ring's idempotency key
    partition_key = models.CharField(max_length=80, db_index=True)  # e.g. a borrower key: order is kept per key
    event_type = models.CharField(max_length=60)
    occurred_at = models.DateTimeField()
    payload = models.JSONField(encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(auto_now_add=True)
    shipped_at = models.DateTimeField(null=True, blank=True, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)

    class Meta:
        indexes = [models.Index(fields=["shipped_at", "seq"], name="outbox_unshipped")]
