"""Payroll deduction (data only; writes go through :mod:`node.payroll.services`).

An MFI's **employers** (e.g. ``gov-ls``, the Government of Lesotho payroll) deduct loan repayments from salaries.
A **payroll enrolment** is the explicit link "this borrower is employee N of that employer" made by the MFI's
staff; the borrower's free-text ``employer`` field is never used for matching. Each month the MFI **exports** the
amounts due of its enrolled borrowers' active loans and **imports** the employer's result file; every posted row is a
normal repayment (channel ``payroll``), and a (loan, month) can be posted once (a partial unique index).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

MONEY = {"max_digits": 20, "decimal_places": 2}


class Employer(models.Model):
    mfi = models.ForeignKey("mfis.Mfi", on_delete=models.PROTECT, related_name="+")
    code = models.SlugField(max_length=40)
    name = models.CharField(max_length=200)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["mfi_id", "code"]
        constraints = [models.UniqueConstraint(fields=["mfi", "code"], name="payroll_employer_code_per_mfi")]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class PayrollEnrolment(models.Model):
    """Borrower ``borrower`` is employee ``employee_number`` of ``employer``. Ended enrolments stay (history, and
    a late result file of a month they were live in still matches them)."""

    mfi = models.ForeignKey("mfis.Mfi", on_delete=models.PROTECT, related_name="+")
    employer = models.ForeignKey(Employer, on_delete=models.PROTECT, related_name="enrolments")
    borrower = models.ForeignKey("borrowers.Borrower", on_delete=models.PROTECT, related_name="payroll_enrolments")
    employee_number = models.CharField(max_length=40)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="+")

    class Meta:
        ordering = ["employer_id", "employee_number", "id"]
        constraints = [
            # one employer deducts a borrower's loans at one MFI (else two employers could both deduct them)
            models.UniqueConstraint(fields=["mfi", "borrower"], condition=Q(ended_at__isnull=True),
                                    name="payroll_one_live_enrolment_per_borrower_mfi"),
            models.UniqueConstraint(fields=["employer", "employee_number"], condition=Q(ended_at__isnull=True),
                                    name="payroll_one_live_employee_number"),
        ]
        indexes = [models.Index(fields=["employer", "borrower"], name="payroll_enrolment_emp_borrower")]


class FileFormat(models.TextChoices):
    CSV = "csv"
    XLSX = "xlsx"


class PayrollExport(models.Model):
    """A deduction file handed to an employer: who, when, what it held (rows, total, sha256 of the bytes)."""

    mfi = models.ForeignKey("mfis.Mfi", on_delete=models.PROTECT, related_name="+")
    employer = models.ForeignKey(Employer, on_delete=models.PROTECT, related_name="exports")
    month = models.DateField(help_text="first day of the payroll month")
    due_by = models.DateField(help_text="installments due on or before this day are included (the month's last day)")
    file_format = models.CharField(max_length=4, choices=FileFormat.choices)
    file_name = models.CharField(max_length=120)
    rows = models.PositiveIntegerField()
    total = models.DecimalField(**MONEY)
    sha256 = models.CharField(max_length=64)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]


class PayrollExportLine(models.Model):
    """One row of a deduction file as it was handed over: what was asked of the employer for one loan (the month's
    reconciliation compares it with what the result files deducted)."""

    export = models.ForeignKey(PayrollExport, on_delete=models.PROTECT, related_name="lines")
    loan = models.ForeignKey("loans.Loan", on_delete=models.PROTECT, related_name="+")
    employee_number = models.CharField(max_length=40)
    loan_reference = models.CharField(max_length=100)
    amount_due = models.DecimalField(**MONEY)

    class Meta:
        ordering = ["export_id", "id"]
        constraints = [models.UniqueConstraint(fields=["export", "loan"], name="payroll_export_line_once_per_loan")]


class ImportStatus(models.TextChoices):
    POSTING = "posting"  # rows validated and stored; valid rows being posted batch by batch (resumable)
    COMPLETED = "completed"


class PayrollImport(models.Model):
    """One employer result file for one month. The file is imported once: (employer, month, sha256) is unique."""

    mfi = models.ForeignKey("mfis.Mfi", on_delete=models.PROTECT, related_name="+")
    employer = models.ForeignKey(Employer, on_delete=models.PROTECT, related_name="imports")
    month = models.DateField(help_text="first day of the payroll month")
    payment_date = models.DateField(help_text="the date the posted repayments carry")
    file_name = models.CharField(max_length=200, blank=True)
    file_format = models.CharField(max_length=4, choices=FileFormat.choices)
    sha256 = models.CharField(max_length=64)
    status = models.CharField(max_length=10, choices=ImportStatus.choices, default=ImportStatus.POSTING)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # the summary, written when the import completes
    rows = models.PositiveIntegerField(default=0)
    posted = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    total_posted = models.DecimalField(**MONEY, default=0)
    rejected_by_code = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["employer", "month", "sha256"],
                                               name="payroll_file_once_per_employer_month")]


class RowOutcome(models.TextChoices):
    PENDING = "pending"  # valid, not posted yet (only while the import is posting)
    POSTED = "posted"
    REVERSED = "reversed"  # was posted; its repayment was reversed since, so the (loan, month) is free again
    SKIPPED = "skipped"  # valid, nothing to post (not_deducted, amount 0)
    REJECTED = "rejected"


class PayrollImportRow(models.Model):
    """One data row of a result file, as read (raw text kept), and what became of it."""

    payroll_import = models.ForeignKey(PayrollImport, on_delete=models.PROTECT, related_name="lines")
    row_number = models.PositiveIntegerField(help_text="row in the file; the header is row 1")
    employee_number = models.CharField(max_length=100, blank=True)
    loan_reference = models.CharField(max_length=100, blank=True)
    amount_text = models.CharField(max_length=60, blank=True)
    amount = models.DecimalField(**MONEY, null=True, blank=True)
    status = models.CharField(max_length=30, blank=True)
    reason = models.CharField(max_length=200, blank=True)
    loan = models.ForeignKey("loans.Loan", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    month = models.DateField(help_text="the import's month, repeated for the one-deduction-per-month constraint")
    outcome = models.CharField(max_length=10, choices=RowOutcome.choices)
    error_code = models.CharField(max_length=40, blank=True)
    message = models.CharField(max_length=300, blank=True)
    repayment = models.OneToOneField("repayments.Repayment", null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="+")
    receipt_number = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["payroll_import_id", "row_number"]
        constraints = [
            models.UniqueConstraint(fields=["payroll_import", "row_number"], name="payroll_row_once_per_import"),
            models.UniqueConstraint(fields=["loan", "month"], condition=Q(outcome="posted"),
                                    name="payroll_one_deduction_per_loan_month"),
            models.CheckConstraint(condition=~Q(outcome="posted") | Q(repayment__isnull=False, amount__gt=0),
                                   name="payroll_posted_row_has_repayment"),
        ]
        indexes = [models.Index(fields=["payroll_import", "outcome", "row_number"], name="payroll_row_outcome")]
