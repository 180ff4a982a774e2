"""The repayments API's answers, described for its OpenAPI document (the JSON itself is built in
``node.repayments.apis``; schemathesis checks every answer against these, ``tests/test_api_fuzz.py``)."""

from __future__ import annotations

from rest_framework import serializers

from node.core.fields import MoneyField
from node.repayments.models import AllocationStrategy, RepaymentChannel


class Amounts(serializers.Serializer):
    principal = MoneyField()
    interest = MoneyField()
    fees = MoneyField()
    penalties = MoneyField()
    total = MoneyField()


class ReceiptInstallment(Amounts):
    number = serializers.IntegerField()
    due_date = serializers.DateField()


class Reversal(serializers.Serializer):
    """The reversal fields of anything that can be reversed (a repayment, a recovery, a refund)."""

    reversed = serializers.BooleanField()
    reversed_at = serializers.DateTimeField(allow_null=True)
    reversed_by = serializers.CharField(allow_null=True)
    reversal_reason = serializers.CharField(allow_null=True)
    reversal_journal_entry = serializers.IntegerField(allow_null=True)


class Receipt(Reversal):
    id = serializers.IntegerField()
    receipt_number = serializers.CharField(help_text="the MFI's receipt number, e.g. PIONEER-R-00000042")
    loan = serializers.IntegerField()
    loan_reference = serializers.CharField()
    mfi = serializers.CharField()
    amount = MoneyField()
    payment_date = serializers.DateField()
    channel = serializers.ChoiceField(choices=RepaymentChannel.values)
    reference = serializers.CharField(allow_blank=True)
    allocation_strategy = serializers.ChoiceField(choices=AllocationStrategy.values)
    allocation = Amounts(help_text="what the payment paid, by component")
    installments = ReceiptInstallment(many=True, help_text="what it paid on each installment, oldest first")
    overpayment = MoneyField(help_text="held for the borrower (a liability), refundable")
    outstanding_after = Amounts()
    closed_loan = serializers.BooleanField()
    journal_entry = serializers.IntegerField()
    posted_by = serializers.CharField()
    posted_at = serializers.DateTimeField()
    replay_of = serializers.IntegerField(
        allow_null=True, help_text="the repayment this one posts again after an older one was reversed")


class ReversalReceipt(Receipt):
    replays = Receipt(many=True, help_text="the later repayments posted again (reprocess_later), in their order")


class Waiver(serializers.Serializer):
    number = serializers.IntegerField()
    interest = MoneyField()
    fees = MoneyField()
    penalties = MoneyField()


class PayoffReceipt(Receipt):
    waived = Waiver(many=True, help_text="unearned interest and fees not yet due, waived by the payoff")


class Refund(Reversal):
    id = serializers.IntegerField()
    loan = serializers.IntegerField()
    amount = MoneyField()
    refund_date = serializers.DateField()
    channel = serializers.ChoiceField(choices=RepaymentChannel.values)
    reference = serializers.CharField(allow_blank=True)
    journal_entry = serializers.IntegerField()
    refunded_by = serializers.CharField()
    refunded_at = serializers.DateTimeField()


class BalanceInstallment(serializers.Serializer):
    number = serializers.IntegerField()
    due_date = serializers.DateField()
    status = serializers.CharField(help_text="paid, partially_paid, overdue, due or upcoming, as of the date")
    due = Amounts()
    paid = Amounts()
    outstanding = Amounts()


class CurrentPeriod(serializers.Serializer):
    installment = serializers.IntegerField()
    period_start = serializers.DateField()
    due_date = serializers.DateField()
    days_in_period = serializers.IntegerField()
    days_elapsed = serializers.IntegerField()
    scheduled_interest = MoneyField()
    accrued_interest = MoneyField()
    interest_paid = MoneyField()
    interest_owed = MoneyField()


class Payoff(serializers.Serializer):
    principal = MoneyField()
    interest_due = MoneyField()
    current_period_interest = MoneyField()
    fees = MoneyField()
    penalties = MoneyField()
    available = serializers.BooleanField(
        help_text="whether POST …/payoff can be dated as_of: the loan is active and as_of is on or after earliest_date")
    earliest_date = serializers.DateField(
        help_text="the first day a payoff may be dated: the disbursement, or the latest repayment in effect, waiver, "
                  "undone waiver or added charge if later")
    current_period = CurrentPeriod(allow_null=True)


class Balance(serializers.Serializer):
    loan = serializers.IntegerField()
    reference = serializers.CharField()
    status = serializers.CharField()
    currency = serializers.CharField()
    as_of = serializers.DateField()
    disbursement_date = serializers.DateField()
    closed_at = serializers.DateTimeField(allow_null=True)
    installments = BalanceInstallment(many=True)
    outstanding = Amounts()
    overdue = Amounts()
    overpayment_held = MoneyField()
    payoff_amount = MoneyField(help_text="what pays the loan off on as_of (POST …/payoff takes exactly this)")
    payoff = Payoff()


class RepaymentConfig(serializers.Serializer):
    product = serializers.IntegerField()
    allocation_strategy = serializers.ChoiceField(choices=AllocationStrategy.values)
    strategies = serializers.ListField(child=serializers.ChoiceField(choices=AllocationStrategy.values))
    default = serializers.ChoiceField(choices=AllocationStrategy.values)


class Recovery(Reversal):
    id = serializers.IntegerField()
    receipt_number = serializers.CharField()
    loan = serializers.IntegerField()
    amount = MoneyField()
    payment_date = serializers.DateField()
    channel = serializers.ChoiceField(choices=RepaymentChannel.values)
    reference = serializers.CharField(allow_blank=True)
    journal_entry = serializers.IntegerField()
    posted_by = serializers.CharField()
    posted_at = serializers.DateTimeField()
    written_off_unpaid = MoneyField(help_text="what the schedule had unpaid when the loan was written off")
    remaining = MoneyField(help_text="still to be recovered (the recoveries in effect taken off)")


class Transfer(serializers.Serializer):
    id = serializers.IntegerField()
    from_loan = serializers.IntegerField()
    to_loan = serializers.IntegerField()
    amount = MoneyField()
    repayment = serializers.IntegerField(help_text="the repayment of to_loan that the transfer is")
    receipt_number = serializers.CharField()
    transfer_date = serializers.DateField()
    reversed = serializers.BooleanField(help_text="its repayment was reversed: the amount is held again")
    transferred_by = serializers.CharField()
    transferred_at = serializers.DateTimeField()


class TransferPosted(Transfer):
    receipt = Receipt()


class ChargeWaiver(serializers.Serializer):
    id = serializers.IntegerField()
    loan = serializers.IntegerField()
    installment = serializers.IntegerField(help_text="the installment's number")
    component = serializers.ChoiceField(choices=["interest", "fees", "penalties"])
    amount = MoneyField()
    waived_on = serializers.DateField()
    reason = serializers.CharField()
    waived_by = serializers.CharField()
    waived_at = serializers.DateTimeField()
    undone_on = serializers.DateField(allow_null=True, help_text="undone (made in error): owed again from this day")
    undone_at = serializers.DateTimeField(allow_null=True)
    undone_by = serializers.CharField(allow_null=True)
    undo_reason = serializers.CharField(allow_blank=True)


class ChargeWaiverUndone(ChargeWaiver):
    loan_reopened = serializers.BooleanField(help_text="the loan was closed and owes something again: it is active")
    replays = Receipt(many=True, help_text="the repayments posted since the waiver, posted again in their order over "
                                           "the schedule that owes the amount again (their originals reversed)")


class ChargeWaiverPosted(serializers.Serializer):
    waivers = ChargeWaiver(many=True, help_text="one per installment the waiver touched, oldest first")
    total = MoneyField()
    closed_loan = serializers.BooleanField(help_text="the waiver left nothing to pay: the loan is closed")


class LoanCharge(serializers.Serializer):
    id = serializers.IntegerField()
    loan = serializers.IntegerField()
    installment = serializers.IntegerField(help_text="the number of the installment it falls on")
    kind = serializers.ChoiceField(choices=["fees", "penalties"])
    name = serializers.CharField()
    amount = MoneyField()
    due_date = serializers.DateField()
    charged_on = serializers.DateField()
    added_by = serializers.CharField()
    added_at = serializers.DateTimeField()


class TransactionParts(serializers.Serializer):
    principal = MoneyField()
    interest = MoneyField()
    fees = MoneyField()
    penalties = MoneyField()
    overpayment = MoneyField()


class LoanTransaction(serializers.Serializer):
    date = serializers.DateField()
    type = serializers.ChoiceField(choices=["disbursement", "repayment", "transfer_in", "refund", "transfer_out",
                                            "charge", "waiver", "recovery"])
    id = serializers.IntegerField(allow_null=True, help_text="the row's id among its kind (repayments, refunds, …); "
                                                             "null for the disbursement")
    amount = MoneyField()
    reference = serializers.CharField(allow_blank=True, help_text="receipt number, payment reference, charge name "
                                                                  "or waiver reason")
    detail = serializers.CharField(allow_blank=True, help_text="the component waived, the kind of a charge, the "
                                                               "loan an overpayment moved to, a refund's channel")
    installment = serializers.IntegerField(allow_null=True, help_text="the installment a charge or a waiver is on")
    reversed = serializers.BooleanField()
    parts = TransactionParts(allow_null=True, help_text="a repayment's split by component")
    outstanding_after = MoneyField(allow_null=True, help_text="what the loan still owed right after it "
                                                              "(a disbursement or a repayment in effect)")


class MobileMoneyPayment(serializers.Serializer):
    id = serializers.IntegerField()
    request_id = serializers.UUIDField(help_text="what the provider was given and sends back (prompts)")
    kind = serializers.ChoiceField(choices=["prompt", "paybill"],
                                   help_text="prompt: Letsema prompted the phone; paybill: the payer sent it to the "
                                             "MFI's business number with an account reference")
    loan = serializers.IntegerField(allow_null=True, help_text="null: paybill money whose account matched no loan")
    loan_reference = serializers.CharField(allow_null=True)
    account_reference = serializers.CharField(allow_blank=True, help_text="paybill: the account the payer typed")
    phone = serializers.CharField()
    amount = MoneyField(help_text="asked for (paybill: received)")
    status = serializers.ChoiceField(choices=["requested", "paid", "unapplied", "failed", "refunded"],
                                     help_text="unapplied: the provider took the money but no loan could take it "
                                               "(closed since, unknown account): an MFI admin applies it to a loan "
                                               "or pays it back; refunded: paid back")
    applied_at = serializers.DateTimeField(allow_null=True, help_text="when an MFI admin applied unapplied money")
    requested_at = serializers.DateTimeField()
    transaction_id = serializers.CharField(allow_null=True, help_text="the provider's transaction id")
    amount_received = MoneyField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)
    reason = serializers.CharField(allow_blank=True)
    receipt_number = serializers.CharField(allow_null=True, help_text="the repayment's receipt, once paid")
    refunded_at = serializers.DateTimeField(allow_null=True)
    refund_reference = serializers.CharField(allow_blank=True)


class MobileMoneyPaybillNotice(serializers.Serializer):
    transaction_id = serializers.CharField(help_text="the provider's transaction id (1 to 64 characters)")
    business_number = serializers.CharField(help_text="the MFI's business (Pay Bill) number")
    account_reference = serializers.CharField(help_text="what the payer typed as the account: the loan reference")
    amount = MoneyField()
    phone = serializers.CharField(help_text="the payer's number")
    paid_at = serializers.DateTimeField(required=False, help_text="when it was paid (default: now); last 30 days")


class MobileMoneyPaybillCheck(serializers.Serializer):
    accept = serializers.BooleanField(help_text="whether the MFI takes the payment; false: the provider refuses it")
    transaction_id = serializers.CharField()
    business_number = serializers.CharField()
    account_reference = serializers.CharField(help_text="as the payer typed it")
    mfi = serializers.CharField(required=False, help_text="accepted: the MFI's code")
    loan_reference = serializers.CharField(required=False, help_text="accepted: the loan the notice will post on")
    reason = serializers.ChoiceField(choices=["unknown_business_number", "unknown_account", "loan_not_active"],
                                     required=False, help_text="refused: why (stable code)")
    message = serializers.CharField(required=False, help_text="refused: why, in words")


class MobileMoneyConfirmation(serializers.Serializer):
    request_id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=["success", "failed"])
    transaction_id = serializers.CharField(required=False, help_text="required for success")
    amount = MoneyField(required=False, help_text="the amount taken; required for success")
    reason = serializers.CharField(required=False, help_text="why it failed")
