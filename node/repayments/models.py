"""Repayments of disbursed loans: the receipt, its allocation per installment, the per-product allocation strategy
(data only; writes go through :mod:`node.repayments.services`). Receipt numbers come from one PostgreSQL sequence per
MFI (``services.receipt_sequence``), not from a table."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from node.repayments import allocation as A

MONEY = {"max_digits": 20, "decimal_places": 2}


class AllocationStrategy(models.TextChoices):
    PENALTIES_FEES_INTEREST_PRINCIPAL = A.PENALTIES_FEES_INTEREST_PRINCIPAL
    PRINCIPAL_INTEREST_PENALTIES_FEES = A.PRINCIPAL_INTEREST_PENALTIES_FEES


class RepaymentChannel(models.TextChoices):
    CASH = "cash"
    BANK = "bank"
    MOBILE_MONEY = "mobile_money"
    PAYROLL = "payroll"
    TRANSFER = "transfer"  # an overpayment held on another loan of the borrower, moved here (no money received)


# the channels money can be received by (what a posting may name); ``transfer`` is made only by a transfer
RECEIVED_CHANNELS = (RepaymentChannel.CASH, RepaymentChannel.BANK, RepaymentChannel.MOBILE_MONEY,
                     RepaymentChannel.PAYROLL)


class ProductRepaymentConfig(models.Model):
    """A product's repayment settings. No row (or a null strategy): the default strategy."""

    product = models.OneToOneField("loans.LoanProduct", on_delete=models.CASCADE, related_name="repayment_config")
    allocation_strategy = models.CharField(max_length=40, choices=AllocationStrategy.choices, null=True, blank=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    updated_at = models.DateTimeField(auto_now=True)


class Reversible(models.Model):
    """Money received that can be taken back: who reversed it, when, why, and the journal entry that mirrors its
    own. A reversed row stays, marked reversed (each model's ``*_reversal_complete`` constraint keeps the four
    together)."""

    reversed_at = models.DateTimeField(null=True, blank=True)
    reversed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+")
    reversal_reason = models.CharField(max_length=200, blank=True)
    reversal_entry = models.OneToOneField("ledger.JournalEntry", null=True, blank=True, on_delete=models.PROTECT,
                                          related_name="+")

    class Meta:
        abstract = True

    @property
    def is_reversed(self) -> bool:
        return self.reversed_at is not None


class Repayment(Reversible):
    """One payment received on a loan. Its allocation is stored per installment (:class:`RepaymentAllocation`) so
    that a reversal restores the schedule exactly. Reversed repayments stay, marked reversed."""

    mfi = models.ForeignKey("mfis.Mfi", on_delete=models.PROTECT, related_name="+")
    loan = models.ForeignKey("loans.Loan", on_delete=models.PROTECT, related_name="repayments")
    receipt_number = models.CharField(max_length=64)
    amount = models.DecimalField(**MONEY)
    payment_date = models.DateField()
    channel = models.CharField(max_length=20, choices=RepaymentChannel.choices)
    reference = models.CharField(max_length=100, blank=True)
    allocation_strategy = models.CharField(max_length=40, choices=AllocationStrategy.choices)
    # totals of the allocation by component, and what exceeded everything due on the schedule
    principal = models.DecimalField(**MONEY, default=0)
    interest = models.DecimalField(**MONEY, default=0)
    fees = models.DecimalField(**MONEY, default=0)
    penalties = models.DecimalField(**MONEY, default=0)
    overpayment = models.DecimalField(**MONEY, default=0)
    # what the schedule still had unpaid right after this repayment
    outstanding_principal_after = models.DecimalField(**MONEY)
    outstanding_interest_after = models.DecimalField(**MONEY)
    outstanding_fees_after = models.DecimalField(**MONEY)
    outstanding_penalties_after = models.DecimalField(**MONEY)
    closed_loan = models.BooleanField(default=False, help_text="This repayment paid the schedule off (loan closed).")
    journal_entry = models.OneToOneField("ledger.JournalEntry", null=True, on_delete=models.PROTECT, related_name="+")
    posted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    posted_at = models.DateTimeField()
    replay_of = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="replayed_as",
        help_text="The repayment this one posts again: reversing an older repayment of the loan replays the later "
                  "ones (same amount, date, channel and reference; allocated anew) and reverses the originals.")

    class Meta:
        ordering = ["loan_id", "id"]
        indexes = [models.Index(fields=["loan", "id"], name="repayment_loan_order")]
        constraints = [
            models.UniqueConstraint(fields=["mfi", "receipt_number"], name="repayment_receipt_per_mfi"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="repayment_amount_positive"),
            models.CheckConstraint(
                condition=Q(principal__gte=0, interest__gte=0, fees__gte=0, penalties__gte=0, overpayment__gte=0),
                name="repayment_parts_non_negative"),
            models.CheckConstraint(
                condition=Q(amount=F("principal") + F("interest") + F("fees") + F("penalties") + F("overpayment")),
                name="repayment_parts_sum_to_amount"),
            models.CheckConstraint(
                condition=Q(reversed_at__isnull=True) | Q(reversed_by__isnull=False, reversal_entry__isnull=False),
                name="repayment_reversal_complete"),
        ]


class RepaymentAllocation(models.Model):
    """What one repayment paid on one installment, by component."""

    repayment = models.ForeignKey(Repayment, on_delete=models.PROTECT, related_name="allocations")
    installment = models.ForeignKey("loans.LoanInstallment", on_delete=models.PROTECT, related_name="+")
    principal = models.DecimalField(**MONEY, default=0)
    interest = models.DecimalField(**MONEY, default=0)
    fees = models.DecimalField(**MONEY, default=0)
    penalties = models.DecimalField(**MONEY, default=0)

    class Meta:
        ordering = ["repayment_id", "installment__number"]
        constraints = [
            models.UniqueConstraint(fields=["repayment", "installment"], name="one_allocation_per_installment"),
            models.CheckConstraint(condition=Q(principal__gte=0, interest__gte=0, fees__gte=0, penalties__gte=0),
                                   name="allocation_parts_non_negative"),
            models.CheckConstraint(condition=Q(principal__gt=0) | Q(interest__gt=0) | Q(fees__gt=0) | Q(penalties__gt=0),
                                   name="allocation_not_empty"),
        ]

    @property
    def total(self):
        return self.principal + self.interest + self.fees + self.penalties


class OverpaymentRefund(Reversible):
    """Money paid back to the borrower out of the overpayment held for a loan (liability 2100): journal
    Dr Overpayment liability (2100) / Cr Cash (1000). What a loan still holds is its repayments' overpayments (those
    in effect) less its refunds in effect; a refund never exceeds it. A reversed refund (the money never reached the
    borrower, or was returned) stays, marked reversed, and the loan holds the amount again."""

    mfi = models.ForeignKey("mfis.Mfi", on_delete=models.PROTECT, related_name="+")
    loan = models.ForeignKey("loans.Loan", on_delete=models.PROTECT, related_name="overpayment_refunds")
    amount = models.DecimalField(**MONEY)
    refund_date = models.DateField()
    channel = models.CharField(max_length=20, choices=RepaymentChannel.choices)
    reference = models.CharField(max_length=100, blank=True)
    journal_entry = models.OneToOneField("ledger.JournalEntry", null=True, on_delete=models.PROTECT, related_name="+")
    refunded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    refunded_at = models.DateTimeField()

    class Meta:
        ordering = ["loan_id", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="overpayment_refund_amount_positive"),
            models.CheckConstraint(
                condition=Q(reversed_at__isnull=True) | Q(reversed_by__isnull=False, reversal_entry__isnull=False),
                name="overpayment_refund_reversal_complete"),
        ]


class PayoffWaiver(models.Model):
    """What a payoff (foreclosure) waived on one installment not yet due: its unearned interest and its fees and
    penalties not yet due, taken off the installment's due amounts. Reversing the payoff's repayment adds them back."""

    repayment = models.ForeignKey(Repayment, on_delete=models.PROTECT, related_name="waivers")
    installment = models.ForeignKey("loans.LoanInstallment", on_delete=models.PROTECT, related_name="+")
    interest = models.DecimalField(**MONEY, default=0)
    fees = models.DecimalField(**MONEY, default=0)
    penalties = models.DecimalField(**MONEY, default=0)

    class Meta:
        ordering = ["repayment_id", "installment_id"]
        constraints = [
            models.UniqueConstraint(fields=["repayment", "installment"], name="one_waiver_per_installment"),
            models.CheckConstraint(condition=Q(interest__gte=0, fees__gte=0, penalties__gte=0),
                                   name="waiver_parts_non_negative"),
        ]


class LoanCharge(models.Model):
    """A fee or penalty added to an active loan by staff (Fineract's "specified due date" loan charge): it falls on
    the first installment due on or after ``due_date`` (the last one if the schedule ends before) and is paid like
    any charge there. Cash-based: no journal entry until it is paid; forgiven with a waiver."""

    KINDS = ("fees", "penalties")

    mfi = models.ForeignKey("mfis.Mfi", on_delete=models.PROTECT, related_name="+")
    loan = models.ForeignKey("loans.Loan", on_delete=models.PROTECT, related_name="charges")
    installment = models.ForeignKey("loans.LoanInstallment", on_delete=models.PROTECT, related_name="charges")
    kind = models.CharField(max_length=10, choices=[(k, k) for k in KINDS])
    name = models.CharField(max_length=100)
    amount = models.DecimalField(**MONEY)
    due_date = models.DateField()
    charged_on = models.DateField()  # the day it was added: the balance as of an earlier day does not show it
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    added_at = models.DateTimeField()

    class Meta:
        ordering = ["loan_id", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="loan_charge_amount_positive"),
            models.CheckConstraint(condition=Q(kind__in=("fees", "penalties")), name="loan_charge_kind"),
        ]


class ChargeWaiver(models.Model):
    """Interest, fees or penalties an MFI forgives on one installment (Fineract's "waive charge" / "waive interest"):
    the installment owes that much less from ``waived_on``. Cash-based books never recorded them as income, so a
    waiver posts no journal entry; it is audited, and the balance as of an earlier day still shows the amount due."""

    COMPONENTS = ("interest", "fees", "penalties")

    mfi = models.ForeignKey("mfis.Mfi", on_delete=models.PROTECT, related_name="+")
    loan = models.ForeignKey("loans.Loan", on_delete=models.PROTECT, related_name="charge_waivers")
    installment = models.ForeignKey("loans.LoanInstallment", on_delete=models.PROTECT, related_name="charge_waivers")
    component = models.CharField(max_length=10, choices=[(c, c) for c in COMPONENTS])
    amount = models.DecimalField(**MONEY)
    waived_on = models.DateField()
    reason = models.CharField(max_length=200)
    waived_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    waived_at = models.DateTimeField()
    # undone (a waiver made in error): the installment owes the amount again from ``undone_on``; the row stays
    undone_on = models.DateField(null=True, blank=True)
    undone_at = models.DateTimeField(null=True, blank=True)
    undone_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="+")
    undo_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["loan_id", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="charge_waiver_amount_positive"),
            models.CheckConstraint(condition=Q(component__in=("interest", "fees", "penalties")),
                                   name="charge_waiver_component"),
            models.CheckConstraint(
                condition=(Q(undone_at__isnull=True, undone_on__isnull=True, undone_by__isnull=True, undo_reason="")
                           | (Q(undone_at__isnull=False, undone_on__isnull=False, undone_by__isnull=False)
                              & ~Q(undo_reason=""))),
                name="charge_waiver_undo_complete"),
        ]

    @property
    def is_undone(self) -> bool:
        return self.undone_at is not None


class Recovery(Reversible):
    """Money collected on a loan after it was written off (Fineract's recovery repayment): journal Dr Cash (1000) /
    Cr Recoveries of loans written off (4300). The schedule is not touched (the write-off took the principal off the
    books); what may still be recovered is what the schedule had unpaid at the write-off, less the recoveries in
    effect. A reversed recovery stays, marked reversed."""

    mfi = models.ForeignKey("mfis.Mfi", on_delete=models.PROTECT, related_name="+")
    loan = models.ForeignKey("loans.Loan", on_delete=models.PROTECT, related_name="recoveries")
    receipt_number = models.CharField(max_length=64)  # from the MFI's receipt sequence, like repayments
    amount = models.DecimalField(**MONEY)
    payment_date = models.DateField()
    channel = models.CharField(max_length=20, choices=RepaymentChannel.choices)
    reference = models.CharField(max_length=100, blank=True)
    journal_entry = models.OneToOneField("ledger.JournalEntry", null=True, on_delete=models.PROTECT, related_name="+")
    posted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    posted_at = models.DateTimeField()

    class Meta:
        ordering = ["loan_id", "id"]
        constraints = [
            models.UniqueConstraint(fields=["mfi", "receipt_number"], name="recovery_receipt_per_mfi"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="recovery_amount_positive"),
            models.CheckConstraint(
                condition=Q(reversed_at__isnull=True) | Q(reversed_by__isnull=False, reversal_entry__isnull=False),
                name="recovery_reversal_complete"),
        ]


class OverpaymentTransfer(models.Model):
    """(Part of) the overpayment a loan holds, applied to another active loan of the same borrower at the same MFI:
    a repayment of the target loan (channel ``transfer``) whose journal entry debits the overpayment liability
    (2100) instead of cash. While that repayment is in effect the source loan holds the amount less; reversing the
    repayment gives it back."""

    mfi = models.ForeignKey("mfis.Mfi", on_delete=models.PROTECT, related_name="+")
    from_loan = models.ForeignKey("loans.Loan", on_delete=models.PROTECT, related_name="overpayment_transfers_out")
    to_loan = models.ForeignKey("loans.Loan", on_delete=models.PROTECT, related_name="+")
    amount = models.DecimalField(**MONEY)
    repayment = models.OneToOneField(Repayment, on_delete=models.PROTECT, related_name="transfer")
    transferred_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    transferred_at = models.DateTimeField()

    class Meta:
        ordering = ["from_loan_id", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="overpayment_transfer_amount_positive"),
            models.CheckConstraint(condition=~Q(from_loan=F("to_loan")), name="overpayment_transfer_other_loan"),
        ]


class MobileMoneyStatus(models.TextChoices):
    REQUESTED = "requested"  # the payment prompt went to the phone; the provider has not answered yet
    PAID = "paid"  # the provider confirmed the payment; the repayment is posted (``repayment``)
    UNAPPLIED = "unapplied"  # money received that no loan took (closed since, unknown account): apply it or refund it
    FAILED = "failed"  # the prompt could not be sent, or the payer declined or let it expire
    REFUNDED = "refunded"  # an unapplied payment the MFI has paid back to the payer


class MobileMoneyKind(models.TextChoices):
    PROMPT = "prompt"  # Letsema asked the provider to prompt the borrower's phone
    PAYBILL = "paybill"  # the payer started it on the phone: the MFI's business number, the loan reference as account


class MobileMoneyPayment(models.Model):
    """A payment by mobile money (docs/mobile-money.md). ``prompt``: the borrower asks, the provider prompts the
    phone, and the provider's signed confirmation posts the repayment; ``request_id`` is what the provider is given
    and sends back. ``paybill``: the provider reports money the payer sent to the MFI's business number with an
    account reference; posted on the loan with that reference, else ``unapplied`` (no loan, ``loan`` null) until
    an MFI admin applies it to a loan or pays it back. ``provider_transaction_id`` (unique) is the provider's
    receipt, the repayment's reference."""

    request_id = models.UUIDField(unique=True, editable=False)
    kind = models.CharField(max_length=8, choices=MobileMoneyKind.choices, default=MobileMoneyKind.PROMPT)
    mfi = models.ForeignKey("mfis.Mfi", on_delete=models.PROTECT, related_name="+")
    loan = models.ForeignKey("loans.Loan", null=True, blank=True, on_delete=models.PROTECT,
                             related_name="mobile_money_payments")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="+")
    phone = models.CharField(max_length=20)
    account_reference = models.CharField(max_length=64, blank=True, default="")  # paybill: what the payer typed
    amount = models.DecimalField(**MONEY)  # asked for (paybill: received)
    status = models.CharField(max_length=12, choices=MobileMoneyStatus.choices, default=MobileMoneyStatus.REQUESTED)
    requested_at = models.DateTimeField()  # prompt: asked; paybill: received by the node
    provider_transaction_id = models.CharField(max_length=64, null=True, blank=True, unique=True)
    amount_received = models.DecimalField(null=True, blank=True, **MONEY)
    completed_at = models.DateTimeField(null=True, blank=True)
    failure_reason = models.CharField(max_length=300, blank=True, default="")
    repayment = models.OneToOneField("repayments.Repayment", null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="mobile_money_payment")
    applied_at = models.DateTimeField(null=True, blank=True)  # unapplied money an MFI admin later applied to a loan
    applied_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    refunded_at = models.DateTimeField(null=True, blank=True)
    refunded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+")
    refund_reference = models.CharField(max_length=100, blank=True, default="")

    class Meta:
        ordering = ["-requested_at", "-id"]
        indexes = [models.Index(fields=["loan", "status"], name="momo_loan_status"),
                   models.Index(fields=["mfi", "status"], name="momo_mfi_status")]
        constraints = [
            models.CheckConstraint(name="momo_amount_positive", condition=Q(amount__gt=0)),
            # a prompt was asked for by someone, on a loan; paybill money may have no loan (unknown account)
            models.CheckConstraint(name="momo_prompt_has_loan", condition=~Q(kind="prompt") | (
                Q(loan__isnull=False) & Q(requested_by__isnull=False))),
            models.CheckConstraint(name="momo_paybill_received", condition=~Q(kind="paybill") | (
                Q(provider_transaction_id__isnull=False) & Q(amount_received__isnull=False)
                & ~Q(status__in=["requested", "failed"]))),
            # paid: the provider's receipt and the posted repayment, on a loan; unapplied: the receipt, no repayment
            models.CheckConstraint(name="momo_paid_has_repayment", condition=~Q(status="paid") | (
                Q(repayment__isnull=False) & Q(provider_transaction_id__isnull=False)
                & Q(amount_received__isnull=False) & Q(loan__isnull=False))),
            models.CheckConstraint(name="momo_unapplied_has_receipt", condition=~Q(status__in=["unapplied", "refunded"]) | (
                Q(repayment__isnull=True) & Q(provider_transaction_id__isnull=False)
                & Q(amount_received__isnull=False))),
            models.CheckConstraint(name="momo_refunded_has_refund", condition=~Q(status="refunded") | (
                Q(refunded_at__isnull=False) & Q(refunded_by__isnull=False))),
            models.CheckConstraint(name="momo_applied_by_both", condition=Q(applied_at__isnull=True, applied_by__isnull=True)
                                   | Q(applied_at__isnull=False, applied_by__isnull=False, status="paid")),
        ]
