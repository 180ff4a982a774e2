"""Celery beat runs close of business every night (thin: the work is in node.cob.services)."""

from celery import shared_task

from node.cob.services import cob_close


@shared_task(acks_late=True, ignore_result=True)
def close_business_day() -> dict:
    r = cob_close(actor_name="celery-beat")
    return {"business_date": r.business_date.isoformat(), "completed": r.completed, "loans": r.loans,
            "already_closed": r.already_closed}
