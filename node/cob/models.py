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


class MonthEndPortfolio(models.Model):
    """The portfolio as close of business left it at a month end, for the monthly regulatory return: active loans
    grouped by MFI, product, approving officer and regulatory class (``LETSEMA_REGULATORY_CLASSES`` at the time); arrears count from the day after a due date, as days past due do.
    ``as_of`` is the business day whose close wrote it: the month end itself, or a later day when one close of
    business ran over the month end (the return then says so)."""

    month_end = models.DateField()
    as_of = models.DateField()
    mfi = models.ForeignKey("mfis.Mfi", on_delete=models.PROTECT, related_name="+")
    product = models.ForeignKey("loans.LoanProduct", on_delete=models.PROTECT, related_name="+")
    officer = models.ForeignKey("users.User", null=True, on_delete=models.PROTECT, related_name="+")
    klass = models.CharField(max_length=30)
    loans = models.PositiveIntegerField()
    outstanding_principal = models.DecimalField(max_digits=20, decimal_places=2)
    arrears = models.DecimalField(max_digits=20, decimal_places=2)  # unpaid amounts (all components) already due

    class Meta:
        indexes = [models.Index(fields=["month_end", "mfi"], name="month_end_portfolio")]


class PortfolioDay(models.Model):
    """The portfolio's risk as each close of business left it, for the PAR trend: active loans grouped by MFI,
    product and approving officer — how many, their outstanding principal and the part of it more than 1, 30, 60
    and 90 days past due. One set of rows per closed business day (``business_date``: the day that close ended; a
    close that caught up several days writes the last one only)."""

    business_date = models.DateField()
    mfi = models.ForeignKey("mfis.Mfi", on_delete=models.PROTECT, related_name="+")
    product = models.ForeignKey("loans.LoanProduct", on_delete=models.PROTECT, related_name="+")
    officer = models.ForeignKey("users.User", null=True, on_delete=models.PROTECT, related_name="+")
    loans = models.PositiveIntegerField()
    loans_at_risk_30 = models.PositiveIntegerField()
    outstanding_principal = models.DecimalField(max_digits=20, decimal_places=2)
    at_risk_1 = models.DecimalField(max_digits=20, decimal_places=2)
    at_risk_30 = models.DecimalField(max_digits=20, decimal_places=2)
    at_risk_60 = models.DecimalField(max_digits=20, decimal_places=2)
    at_risk_90 = models.DecimalField(max_digits=20, decimal_places=2)

    class Meta:
        indexes = [models.Index(fields=["business_date", "mfi"], name="portfolio_day")]
