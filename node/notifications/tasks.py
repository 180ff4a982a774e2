"""Celery tasks for notifications (thin: the work is in node.notifications.services). Payloads carry ids only."""

from celery import shared_task

from node.notifications import services


@shared_task(acks_late=True, ignore_result=True)
def deliver_notification(notification_id: int) -> str | None:
    """Queued after the domain transaction commits: attempt that one notification now (no-op if already sent,
    not due, or being sent by another worker)."""
    return services.deliver_one(notification_id)


@shared_task(acks_late=True, ignore_result=True)
def deliver_pending(limit: int = 200, seconds: float = 10.0) -> dict:
    """Every minute (beat) and after bulk reminders: what is due, including retries and lost messages. A short
    batch, then it queues itself again while more is due, so a backlog (the morning's reminders) does not hold a
    worker away from the other tasks (the outbox shipper) for long."""
    counts, more = services.deliver_batch(limit=limit, seconds=seconds)
    if more:
        deliver_pending.apply_async(kwargs={"limit": limit, "seconds": seconds}, expires=300)
    return counts


@shared_task(acks_late=True, ignore_result=True)
def send_reminders() -> list:
    """Daily (beat): due-soon and overdue reminders for the node's business date (and missed days)."""
    return [{"business_date": r.business_date.isoformat(), "upcoming": r.upcoming_created,
             "overdue": r.overdue_created} for r in services.reminders_run_due(by="celery-beat")]
