from django.db import models


class Mfi(models.Model):
    """A microfinance institution. Each MFI has exactly one home district node, which keeps its books."""

    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=200)
    registration_number = models.CharField(max_length=60, blank=True)
    home_district = models.CharField(max_length=32, db_index=True)
    # Regulatory cap on the annual nominal interest rate, in percent (e.g. 60.0000). Products and loans above it
    # are refused.
    interest_rate_cap = models.DecimalField(max_digits=7, decimal_places=4, null=True, blank=True)
    # Loan officers may approve up to this principal; above it an MFI admin must approve. Null: no limit.
    officer_approval_limit = models.DecimalField(max_digits=20, decimal_places=2, null=True, blank=True)
    # Disbursements above this principal need an MFI admin as checker, with a fresh re-authentication.
    dual_control_threshold = models.DecimalField(max_digits=20, decimal_places=2, default=5000)
    # The MFI's mobile-money business ("Pay Bill") number: payments the borrower starts from the phone's menu to it,
    # with the loan reference as the account, are posted on that loan (docs/mobile-money.md). Null: none.
    paybill_number = models.CharField(max_length=20, null=True, blank=True, unique=True)
    # whether a payroll deduction posted from the employer's file sends the borrower a "repayment received" message
    # (thousands at once; some MFIs leave it to the payslip)
    notify_payroll_repayments = models.BooleanField(default=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]
        verbose_name = "MFI"
        verbose_name_plural = "MFIs"

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"
