"""The Celery app of a district node (broker: the district's Redis database)."""

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("letsema")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def _database_connections_as_for_a_request(sender=None, **_kwargs) -> None:
    """Treat a task like a web request: keep the worker's PostgreSQL connection across tasks (``CONN_MAX_AGE``),
    drop it when it is too old or broken (the health check, e.g. after a primary failover). Celery's own Django
    fixup closes every connection before and after each task instead, so each task paid a new PostgreSQL
    connection (a backend process forked, authentication): a quarter of the worker's time while delivering one
    notification per repayment. ``CELERY_DB_REUSE_MAX`` (settings) turns that closing down. A task run eagerly
    (in the caller's process, maybe inside its transaction) leaves the caller's connection alone."""
    from django.db import close_old_connections

    if getattr(getattr(sender, "request", None), "is_eager", False):
        return
    close_old_connections()
