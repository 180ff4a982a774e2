"""Disputes of a loan's record in the network credit history, kept by the node that owns the loan.

The ring holds the history; a dispute is worked where the record was written (the lender's node), and its opening
and answer are appended to the borrower's partition as ``dispute.opened`` / ``dispute.resolved`` events so every
credit report shows the record as under dispute until the lender answers.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from django.conf import settings
from django.db import models


class DisputeReason(models.TextChoices):
    NOT_MY_LOAN = "not_my_loan", "This loan is not mine"
    WRONG_AMOUNT = "wrong_amount", "The amount or outstanding balance is wrong"
    WRONG_STATUS = "wrong_status", "The status is wrong (e.g. shown active, but paid off)"
    WRONG_DAYS_PAST_DUE = "wrong_days_past_due", "The days past due are wrong"
    OTHER = "other", "Something else"


class DisputeStatus(models.TextChoices):
    OPEN = "open", "Open"
    CORRECTED = "corrected", "Corrected by the lender"
    REJECTED = "rejected", "Record confirmed by the lender"


class CreditDispute(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    loan = models.ForeignKey("loans.Loan", on_delete=models.PROTECT, related_name="credit_disputes")
    mfi = models.ForeignKey("mfis.Mfi", on_delete=models.PROTECT, related_name="+")
    borrower_key = models.CharField(max_length=80)
    reason = models.CharField(max_length=30, choices=DisputeReason.choices)
    details = models.TextField(max_length=1000, blank=True)
    filed_at_district = models.CharField(max_length=40)  # where the borrower filed it
    status = models.CharField(max_length=12, choices=DisputeStatus.choices, default=DisputeStatus.OPEN)
    opened_at = models.DateTimeField()
    respond_by = models.DateField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+")
    resolution_note = models.TextField(max_length=1000, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["loan"], condition=models.Q(status="open"), name="credit_dispute_one_open"),
            models.CheckConstraint(
                condition=models.Q(status="open", resolved_at__isnull=True)
                | (~models.Q(status="open") & models.Q(resolved_at__isnull=False)),
                name="credit_dispute_resolved_has_time"),
        ]
        indexes = [models.Index(fields=["mfi", "status", "respond_by"])]

    @property
    def overdue(self) -> bool:
        """Open past its deadline (calendar days, UTC, as ``respond_by`` was set)."""
        return self.status == DisputeStatus.OPEN and self.respond_by < datetime.now(UTC).date()
