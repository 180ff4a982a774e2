"""The double-entry general ledger of each MFI: accounts, journal entries and their lines (data only).

Rules, enforced by the database (migration 0002), not only by :mod:`node.ledger.services`:

* every line has exactly one positive side (``debit`` or ``credit``), never a negative amount;
* every entry has at least two lines, its debits equal its credits, and all its lines are on accounts of the
  entry's own MFI (deferred constraint triggers, checked at COMMIT);
* entries and lines are append-only: no UPDATE, DELETE or TRUNCATE; a correction is a reversing entry.

Lines are created only by :func:`node.ledger.services.journal_post` (or ``journal_post_many``, its set-based
sibling).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class AccountType(models.TextChoices):
    ASSET = "ASSET", "Asset"
    LIABILITY = "LIABILITY", "Liability"
    EQUITY = "EQUITY", "Equity"
    INCOME = "INCOME", "Income"
    EXPENSE = "EXPENSE", "Expense"


class NormalBalance(models.TextChoices):
    DEBIT = "DEBIT", "Debit"
    CREDIT = "CREDIT", "Credit"


#: The side on which an account of each type normally carries its balance.
NORMAL_BALANCE_OF_TYPE = {
    AccountType.ASSET: NormalBalance.DEBIT,
    AccountType.EXPENSE: NormalBalance.DEBIT,
    AccountType.LIABILITY: NormalBalance.CREDIT,
    AccountType.EQUITY: NormalBalance.CREDIT,
    AccountType.INCOME: NormalBalance.CREDIT,
}


def normal_balance_for(account_type: str, is_contra: bool = False) -> NormalBalance:
    """Normal balance from the type; a contra account (e.g. a loan-loss provision, a contra-asset) is flipped."""
    side = NORMAL_BALANCE_OF_TYPE[AccountType(account_type)]
    if is_contra:
        return NormalBalance.CREDIT if side == NormalBalance.DEBIT else NormalBalance.DEBIT
    return side


class Account(models.Model):
    """One account of one MFI's chart. ``code`` is stable (see :mod:`node.ledger.chart`); code, type and
    contra flag never change once created (database trigger), name and ``is_active`` may."""

    mfi = models.ForeignKey("mfis.Mfi", on_delete=models.PROTECT, related_name="ledger_accounts")
    code = models.CharField(max_length=10)
    name = models.CharField(max_length=120)
    type = models.CharField(max_length=10, choices=AccountType.choices)
    is_contra = models.BooleanField(
        default=False, help_text="A contra account carries its balance opposite to its type (e.g. provisions)."
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["mfi_id", "code"]
        constraints = [
            models.UniqueConstraint(fields=["mfi", "code"], name="ledger_account_code_per_mfi"),
            models.CheckConstraint(name="ledger_account_type_valid", condition=Q(type__in=AccountType.values)),
            models.CheckConstraint(name="ledger_account_code_digits", condition=Q(code__regex=r"^[0-9]{3,10}$")),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"

    @property
    def normal_balance(self) -> NormalBalance:
        return normal_balance_for(self.type, self.is_contra)


class JournalEntry(models.Model):
    """One balanced posting on a business date. Never edited: a correction is a new entry that ``reverses``
    this one (at most one reversal per entry, a OneToOne)."""

    mfi = models.ForeignKey("mfis.Mfi", on_delete=models.PROTECT, related_name="journal_entries")
    entry_date = models.DateField(help_text="Business date the entry belongs to (statements and trial balances).")
    posted_at = models.DateTimeField(default=timezone.now)
    description = models.CharField(max_length=255)
    reference_type = models.CharField(max_length=40, blank=True, default="")
    reference_id = models.CharField(max_length=64, blank=True, default="")
    source_key = models.CharField(
        max_length=200, unique=True, null=True, blank=True,
        help_text="Idempotency key: posting again with the same key returns this entry and posts nothing.",
    )
    reverses = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversed_by",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
    )
    currency = models.CharField(max_length=3)

    class Meta:
        ordering = ["mfi_id", "entry_date", "id"]
        verbose_name_plural = "journal entries"
        indexes = [
            models.Index(fields=["mfi", "entry_date"], name="ledger_entry_mfi_date"),
            models.Index(fields=["reference_type", "reference_id"], name="ledger_entry_reference"),
        ]
        constraints = [
            models.CheckConstraint(name="ledger_entry_source_key_not_blank",
                                   condition=Q(source_key__isnull=True) | ~Q(source_key="")),
            models.CheckConstraint(name="ledger_entry_currency_code", condition=Q(currency__regex=r"^[A-Z]{3}$")),
            models.CheckConstraint(name="ledger_entry_not_self_reversal", condition=~Q(reverses=models.F("pk"))),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.entry_date} {self.description}"


class JournalLine(models.Model):
    """One leg of an entry: exactly one of ``debit``/``credit`` is positive, the other zero."""

    entry = models.ForeignKey(JournalEntry, on_delete=models.PROTECT, related_name="lines")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="lines")
    debit = models.DecimalField(max_digits=20, decimal_places=2, default=0)
    credit = models.DecimalField(max_digits=20, decimal_places=2, default=0)
    memo = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        ordering = ["entry_id", "id"]
        constraints = [
            models.CheckConstraint(name="ledger_line_debit_non_negative", condition=Q(debit__gte=0)),
            models.CheckConstraint(name="ledger_line_credit_non_negative", condition=Q(credit__gte=0)),
            models.CheckConstraint(
                name="ledger_line_exactly_one_side",
                condition=(Q(debit__gt=0) & Q(credit=0)) | (Q(debit=0) & Q(credit__gt=0)),
            ),
        ]

    def __str__(self) -> str:
        side = f"Dr {self.debit}" if self.debit else f"Cr {self.credit}"
        return f"{self.account_id} {side}"
