from node.core.errors import Conflict


class ReverseLaterFirst(Conflict):
    """Repayments are reversed newest first: a later repayment of the loan is still in effect."""

    code = "reverse_later_first"


class AlreadyReversed(Conflict):
    code = "already_reversed"


class LoanNotDisbursed(Conflict):
    """The loan has no schedule yet (never disbursed): there is no balance to show."""

    code = "loan_not_disbursed"


class RefundExceedsOverpayment(Conflict):
    """A refund larger than the overpayment the loan still holds."""

    code = "refund_exceeds_overpayment"


class OverpaymentRefunded(Conflict):
    """Reversing this repayment would take back an overpayment that has already been refunded to the borrower."""

    code = "overpayment_refunded"


class PayoffAmountMismatch(Conflict):
    """The amount given for a payoff is not the payoff amount as of its date (a stale or wrong quote)."""

    code = "payoff_amount_mismatch"


class ReprocessNotPossible(Conflict):
    """Reversing an older repayment replays the later ones; a later payoff cannot be replayed (its amount was the
    payoff quote of its day): reverse the payoff first."""

    code = "reprocess_not_possible"


class RecoveryExceedsWrittenOff(Conflict):
    """A recovery larger than what the written-off loan still had unpaid, less what was recovered already."""

    code = "recovery_exceeds_written_off"


class TransferExceedsOverpayment(Conflict):
    """A transfer larger than the overpayment the source loan still holds."""

    code = "transfer_exceeds_overpayment"


class NothingToWaive(Conflict):
    """A waiver asked of installments that owe nothing of that component."""

    code = "nothing_to_waive"


class WaiverExceedsUnpaid(Conflict):
    """A waiver larger than what the installments still owe of that component."""

    code = "waiver_exceeds_unpaid"


class OverpaymentHeld(Conflict):
    """Undoing a waiver on a loan that holds an overpayment would make it owe money while holding the borrower's:
    the overpayment is refunded or transferred first."""

    code = "overpayment_held"
