"""Loan products, loans (application to closure, one row through its whole life), installments."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from node.loans.schedule import inputs as S


class LoanProduct(models.Model):
    mfi = models.ForeignKey("mfis.Mfi", on_delete=models.PROTECT, related_name="products")
    code = models.SlugField(max_length=40)
    name = models.CharField(max_length=200)
    currency = models.CharField(max_length=3, default="LSL")
    currency_decimals = models.PositiveSmallIntegerField(default=2)
    currency_in_multiples_of = models.PositiveIntegerField(default=0)
    installment_in_multiples_of = models.PositiveIntegerField(null=True, blank=True)
    annual_interest_rate = models.DecimalField(max_digits=10, decimal_places=6)
    interest_method = models.CharField(max_length=20, choices=[(c, c) for c in (S.FLAT, S.DECLINING_BALANCE)])
    amortization = models.CharField(max_length=20, choices=[(c, c) for c in (S.EQUAL_INSTALLMENTS, S.EQUAL_PRINCIPAL)])
    interest_calculation_period = models.CharField(max_length=30, default=S.SAME_AS_REPAYMENT_PERIOD)
    schedule_type = models.CharField(max_length=20, default=S.CUMULATIVE)
    repayment_every = models.PositiveSmallIntegerField(default=1)
    repayment_frequency = models.CharField(max_length=10)
    days_in_year = models.CharField(max_length=10, default="ACTUAL")
    days_in_month = models.CharField(max_length=10, default="ACTUAL")
    grace_on_principal_periods = models.PositiveSmallIntegerField(default=0)
    grace_on_interest_payment_periods = models.PositiveSmallIntegerField(default=0)
    grace_on_interest_charged_periods = models.PositiveSmallIntegerField(default=0)
    min_principal = models.DecimalField(max_digits=20, decimal_places=2)
    max_principal = models.DecimalField(max_digits=20, decimal_places=2)
    min_repayments = models.PositiveSmallIntegerField()
    max_repayments = models.PositiveSmallIntegerField()
    fees = models.JSONField(default=list, blank=True)  # schedule-engine fee specs
    # Overdue penalty (applied by close of business, repayments issue): {"calculation", "amount", "grace_days"}
    overdue_penalty = models.JSONField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["mfi", "code"], name="product_code_per_mfi")]
        ordering = ["mfi_id", "code"]

    def __str__(self) -> str:
        return f"{self.name} ({self.mfi_id})"


class LoanStatus(models.TextChoices):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    UNDER_REVIEW = "under_review"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    ACTIVE = "active"  # disbursed
    CLOSED = "closed"
    WRITTEN_OFF = "written_off"
    RESCHEDULED = "rescheduled"


class RejectionReason(models.TextChoices):
    INSUFFICIENT_INCOME = "insufficient_income"
    OVER_INDEBTED = "over_indebted"
    INCOMPLETE_DOCUMENTS = "incomplete_documents"
    IDENTITY_NOT_VERIFIED = "identity_not_verified"
    POOR_CREDIT_HISTORY = "poor_credit_history"
    POLICY = "policy"
    OTHER = "other"


class DisbursementChannel(models.TextChoices):
    CASH = "cash"
    BANK_TRANSFER = "bank_transfer"
    MOBILE_MONEY = "mobile_money"


class Loan(models.Model):
    mfi = models.ForeignKey("mfis.Mfi", on_delete=models.PROTECT, related_name="loans")
    product = models.ForeignKey(LoanProduct, on_delete=models.PROTECT, related_name="loans")
    borrower = models.ForeignKey("borrowers.Borrower", on_delete=models.PROTECT, related_name="loans")
    reference = models.CharField(max_length=40, unique=True)
    status = models.CharField(max_length=20, choices=LoanStatus.choices, default=LoanStatus.DRAFT, db_index=True)
    principal = models.DecimalField(max_digits=20, decimal_places=2)
    number_of_repayments = models.PositiveSmallIntegerField()
    annual_interest_rate = models.DecimalField(max_digits=10, decimal_places=6)
    expected_disbursement_date = models.DateField()
    purpose = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    approved_at = models.DateTimeField(null=True, blank=True)
    approved_terms = models.JSONField(null=True, blank=True)
    rejected_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    rejection_reason = models.CharField(max_length=30, choices=RejectionReason.choices, blank=True)
    rejection_note = models.CharField(max_length=500, blank=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    disbursement_initiated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    disbursement_initiated_at = models.DateTimeField(null=True, blank=True)
    disbursement_channel = models.CharField(max_length=20, choices=DisbursementChannel.choices, blank=True)
    disbursement_reference = models.CharField(max_length=100, blank=True)
    disbursed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    disbursed_at = models.DateTimeField(null=True, blank=True)
    disbursement_date = models.DateField(null=True, blank=True)
    schedule = models.JSONField(null=True, blank=True)  # the schedule as stored at disbursement (engine JSON)
    written_off_at = models.DateTimeField(null=True, blank=True)
    written_off_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    write_off_reason = models.CharField(max_length=300, blank=True)
    rescheduled_from = models.OneToOneField("self", null=True, blank=True, on_delete=models.PROTECT,
                                            related_name="rescheduled_into")
    rescheduled_at = models.DateTimeField(null=True, blank=True)
    rescheduled_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    reschedule_reason = models.CharField(max_length=300, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # kept by close of business (node.cob): arrears as of the last closed business day
    days_past_due = models.PositiveIntegerField(default=0)
    delinquency_bucket = models.CharField(max_length=20, default="current")
    overdue_since = models.DateField(null=True, blank=True)  # due date of the oldest unpaid overdue installment
    # the latest network credit assessment of this application (loan_credit_assess): grade A-E, points, when
    risk_grade = models.CharField(max_length=1, blank=True, db_index=True)
    risk_points = models.IntegerField(null=True, blank=True)
    risk_assessed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=models.Q(principal__gt=0), name="loan_principal_positive"),
            models.CheckConstraint(
                condition=~models.Q(status="active") | models.Q(disbursed_at__isnull=False, schedule__isnull=False),
                name="active_loan_is_disbursed",
            ),
        ]


class LoanInstallment(models.Model):
    loan = models.ForeignKey(Loan, on_delete=models.PROTECT, related_name="installments")
    number = models.PositiveSmallIntegerField()  # 0 = disbursement charges
    due_date = models.DateField()
    principal = models.DecimalField(max_digits=20, decimal_places=2)
    interest = models.DecimalField(max_digits=20, decimal_places=2)
    fees = models.DecimalField(max_digits=20, decimal_places=2)
    penalties = models.DecimalField(max_digits=20, decimal_places=2)
    principal_paid = models.DecimalField(max_digits=20, decimal_places=2, default=0)
    interest_paid = models.DecimalField(max_digits=20, decimal_places=2, default=0)
    fees_paid = models.DecimalField(max_digits=20, decimal_places=2, default=0)
    penalties_paid = models.DecimalField(max_digits=20, decimal_places=2, default=0)
    penalty_applied_on = models.DateField(null=True, blank=True)  # the business day COB charged its overdue penalty

    class Meta:
        ordering = ["loan_id", "number"]
        constraints = [models.UniqueConstraint(fields=["loan", "number"], name="one_installment_number_per_loan")]
        # reminders and reports select installments by due date across all loans
        indexes = [models.Index(fields=["due_date"], name="installment_due_date", condition=models.Q(number__gte=1))]


class StepUpGrant(models.Model):
    """A fresh re-authentication, valid a few minutes and usable once (disbursement confirmation)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
