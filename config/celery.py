"""The Celery app of a district node (broker: the district's Redis database)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("letsema")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
