"""The node's business date and its close-of-business runs."""

from __future__ import annotations

from django.db import models


class BusinessDate(models.Model):
    """One row (pk 1): the business day the node is working in. Close of business ends it and moves to the next."""

    current = models.DateField()
    updated_at = models.DateTimeField(auto_now=True)


class CobStatus(models.TextChoices):
    RUNNING = "running"
    COMPLETED = "completed"


class CobRun(models.Model):
    """One close of business. ``cursor`` (the last loan id processed, committed with each chunk) makes it resumable."""

    business_date = models.DateField(unique=True)
    status = models.CharField(max_length=12, choices=CobStatus.choices, default=CobStatus.RUNNING)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    started_by = models.CharField(max_length=150, blank=True)
    loans_total = models.PositiveIntegerField(default=0)
    loans_done = models.PositiveIntegerField(default=0)
    cursor = models.BigIntegerField(default=0)
    summary = models.JSONField(default=dict)

    class Meta:
        ordering = ["-business_date"]
