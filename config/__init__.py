# The Celery app is loaded with Django so that shared_task uses the district's broker.
from config.celery import app as celery_app

__all__ = ("celery_app",)
