"""Celery task that drains the outbox into the ring (thin: the work is in replication.outbox)."""

import time

from celery import shared_task
from django.conf import settings

from replication.outbox import ship_batch
from replication.ring_writer import write_event


@shared_task(acks_late=True, ignore_result=True)
def ship_outbox(limit: int = 500) -> dict:
    """Ship batches while they come back full (a backlog after an outage) for up to ``LETSEMA_SHIP_BUDGET_S``
    seconds, then leave the rest to the next run of the beat."""
    deadline = time.monotonic() + settings.LETSEMA_SHIP_BUDGET_S
    total = {"shipped": 0, "failed": 0, "blocked": 0, "batches": 0}
    while True:
        r = ship_batch(write_event, limit=limit, concurrency=settings.LETSEMA_SHIP_CONCURRENCY)
        total["shipped"] += r.shipped
        total["failed"] += r.failed
        total["blocked"] += r.blocked
        total["batches"] += 1
        if r.shipped < limit or time.monotonic() >= deadline:  # caught up, or something is held back
            return total
