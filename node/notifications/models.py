"""Borrower notifications: preferences, the notification outbox and its delivery log (docs/notifications.md).

A ``Notification`` is written by a domain service inside its own transaction (``services.notify``), so it exists
if and only if the change it describes committed; ``event_key`` is unique, so one event is notified once. Delivery
happens afterwards, one row at a time under ``SELECT ... FOR UPDATE SKIP LOCKED``; every attempt leaves a
``NotificationAttempt`` (the log: channel, masked recipient, language, template, gateway message id, error).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class NotifyChannel(models.TextChoices):
    SMS = "sms", "SMS"
    EMAIL = "email", "E-mail"
    BOTH = "both", "SMS and e-mail"
    NONE = "none", "No notifications"


class Language(models.TextChoices):
    EN = "en", "English"
    ST = "st", "Sesotho"


class NotificationKind(models.TextChoices):
    INSTALLMENT_DUE = "installment_due", "Installment due soon"
    INSTALLMENT_OVERDUE = "installment_overdue", "Installment overdue"
    REPAYMENT_RECEIVED = "repayment_received", "Repayment received"
    LOAN_DISBURSED = "loan_disbursed", "Loan disbursed"
    CHARGE_ADDED = "charge_added", "Fee or penalty added"
    REPAYMENT_REVERSED = "repayment_reversed", "Repayment reversed"
    DISPUTE_CORRECTED = "dispute_corrected", "Credit dispute answered: record corrected"
    DISPUTE_CONFIRMED = "dispute_confirmed", "Credit dispute answered: record confirmed"


class NotificationStatus(models.TextChoices):
    PENDING = "pending", "Pending (waiting for its next attempt)"
    SENT = "sent", "Sent on every channel"
    FAILED = "failed", "Failed (attempts exhausted or refused)"
    SKIPPED = "skipped", "Skipped (the borrower chose no notifications)"
    CANCELLED = "cancelled", "Cancelled (no longer true: installment paid or loan no longer active)"


class NotificationPreference(models.Model):
    """How a borrower wants to be told (absent row: SMS in English). The borrower model has no e-mail address;
    it lives here."""

    borrower = models.OneToOneField("borrowers.Borrower", primary_key=True, on_delete=models.CASCADE,
                                    related_name="notification_preference")
    channel = models.CharField(max_length=8, choices=NotifyChannel.choices, default=NotifyChannel.SMS)
    language = models.CharField(max_length=2, choices=Language.choices, default=Language.EN)
    email = models.EmailField(max_length=254, blank=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    updated_at = models.DateTimeField(auto_now=True)


class Notification(models.Model):
    event_key = models.CharField(max_length=120, unique=True)  # e.g. repayment:<id>:received
    kind = models.CharField(max_length=30, choices=NotificationKind.choices)
    # References without database constraints: a foreign-key check takes FOR KEY SHARE on the referenced row, which
    # would make the reminder job's INSERT ... SELECT wait behind (and could deadlock with) the FOR UPDATE locks of
    # repayments and close of business. These rows are never deleted (PROTECT everywhere), so nothing dangles.
    borrower = models.ForeignKey("borrowers.Borrower", on_delete=models.PROTECT, related_name="notifications",
                                 db_constraint=False)
    mfi = models.ForeignKey("mfis.Mfi", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                            db_constraint=False)
    loan = models.ForeignKey("loans.Loan", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                             db_constraint=False)
    installment = models.ForeignKey("loans.LoanInstallment", null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+", db_constraint=False)
    context = models.JSONField(default=dict)  # the template's fields (strings); never the national ID
    status = models.CharField(max_length=12, choices=NotificationStatus.choices, default=NotificationStatus.PENDING)
    channels = models.CharField(max_length=20, blank=True)  # "sms", "email" or "sms,email": fixed at first attempt
    language = models.CharField(max_length=2, blank=True)  # fixed at first attempt
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["next_attempt_at", "id"], condition=models.Q(status="pending"),
                         name="notification_due_idx"),
            models.Index(fields=["borrower", "-created_at"], name="notification_borrower_idx"),
        ]

    def channel_list(self) -> list[str]:
        return [c for c in self.channels.split(",") if c]


class NotificationAttempt(models.Model):
    """One attempt on one channel: the delivery log. The recipient is stored masked."""

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="log")
    attempt = models.PositiveSmallIntegerField()
    channel = models.CharField(max_length=5)  # sms | email
    to_masked = models.CharField(max_length=80)
    language = models.CharField(max_length=2)
    template = models.CharField(max_length=60)  # <kind>/<language>/<channel>
    attempted_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    gateway_message_id = models.CharField(max_length=200, blank=True)
    error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["attempted_at", "id"]


class ReminderRun(models.Model):
    """The daily reminder job, per business date (lets a late job catch up the days it missed)."""

    business_date = models.DateField(unique=True)
    days_before = models.PositiveSmallIntegerField()
    upcoming_created = models.PositiveIntegerField(default=0)
    overdue_created = models.PositiveIntegerField(default=0)
    runs = models.PositiveIntegerField(default=0)
    last_run_at = models.DateTimeField(default=timezone.now)
    last_run_by = models.CharField(max_length=60, blank=True)
