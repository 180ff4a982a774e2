"""Celery task that drains the outbox into the ring (thin: the work is in replication.outbox)."""

from celery import shared_task

from replication.outbox import ship_batch
from replication.ring_writer import write_event


@shared_task(acks_late=True, ignore_result=True)
def ship_outbox(limit: int = 500) -> dict:
    result = ship_batch(write_event, limit=limit)
    return {"shipped": result.shipped, "failed": result.failed, "blocked": result.blocked}
