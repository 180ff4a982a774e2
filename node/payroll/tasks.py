"""Celery task for payroll imports (thin: the work is in node.payroll.services). Payloads carry ids only."""

from celery import shared_task
from django.conf import settings

from node.payroll import services


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=5)
def payroll_import_continue(self, import_id: int) -> dict:
    """Queued when a large upload's validation commits: post its pending rows, a few seconds of batches per run
    (each batch its own transaction), then queue itself again while rows remain, so that the worker's other jobs
    run in between. Killed mid-way, the task is delivered again (late acknowledgement) and carries on from the
    rows still pending; a committed batch is never posted twice. A poster process that fails is retried the same
    way (up to 5 times, 5 s apart)."""
    try:
        imp, more = services.payroll_import_continue(import_id=import_id, seconds=settings.LETSEMA_PAYROLL_TASK_S)
    except services.PosterFailed as exc:  # a poster process died (e.g. out of memory): go on from the pending rows
        raise self.retry(exc=exc, countdown=5) from exc
    if more:
        payroll_import_continue.apply_async((import_id,))
    return {"import": imp.pk, "status": imp.status, "more": more}
