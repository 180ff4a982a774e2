from node.core.errors import Conflict


class ReverseLaterFirst(Conflict):
    """Repayments are reversed newest first: a later repayment of the loan is still in effect."""

    code = "reverse_later_first"


class AlreadyReversed(Conflict):
    code = "already_reversed"


class LoanNotDisbursed(Conflict):
    """The loan has no schedule yet (never disbursed): there is no balance to show."""

    code = "loan_not_disbursed"
