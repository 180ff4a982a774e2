"""The standard chart of accounts every MFI gets (:func:`node.ledger.services.ledger_ensure_chart`).

The codes are STABLE: other apps post to them by these constants, and reports and exports refer to them.
Never renumber or reuse a code; add new ones. First digit: 1 assets, 2 liabilities, 3 equity, 4 income,
5 expenses.

Typical postings (debit / credit):

* funding the MFI:            Dr CASH                  / Cr FUND_CAPITAL
* disbursement:               Dr LOAN_PORTFOLIO        / Cr CASH
* fee paid at disbursement:   Dr CASH                  / Cr FEE_INCOME
* fee charged to the loan:    Dr FEE_RECEIVABLE        / Cr FEE_INCOME
* interest accrual:           Dr INTEREST_RECEIVABLE   / Cr INTEREST_INCOME
* penalty:                    Dr PENALTY_RECEIVABLE    / Cr PENALTY_INCOME
* repayment:                  Dr CASH / Cr the receivables and LOAN_PORTFOLIO it pays,
                              Cr OVERPAYMENT_LIABILITY for any excess
* provisioning (month ends):  Dr PROVISION_EXPENSE     / Cr LOAN_LOSS_PROVISION (a release: the reverse)
* write-off:                  Dr WRITE_OFF_EXPENSE     / Cr LOAN_PORTFOLIO (its provision released at the month end)
* recovery (written-off loan): Dr CASH                  / Cr RECOVERY_INCOME
* money no loan could take:   Dr CASH / Cr UNAPPLIED_RECEIPTS; its refund: Dr UNAPPLIED_RECEIPTS / Cr CASH
"""

from __future__ import annotations

from dataclasses import dataclass

from node.ledger.models import AccountType

CASH = "1000"  # cash and fund source
LOAN_PORTFOLIO = "1100"
LOAN_LOSS_PROVISION = "1190"  # contra-asset: carries a credit balance
INTEREST_RECEIVABLE = "1200"
FEE_RECEIVABLE = "1300"
PENALTY_RECEIVABLE = "1400"
OVERPAYMENT_LIABILITY = "2100"
UNAPPLIED_RECEIPTS = "2150"  # money received that no loan could take, owed back to the payer (suspense)
FUND_CAPITAL = "3000"
INTEREST_INCOME = "4000"
FEE_INCOME = "4100"
PENALTY_INCOME = "4200"
RECOVERY_INCOME = "4300"  # money collected on loans already written off
WRITE_OFF_EXPENSE = "5000"
PROVISION_EXPENSE = "5100"


@dataclass(frozen=True)
class AccountSpec:
    code: str
    name: str
    type: AccountType
    is_contra: bool = False


STANDARD_CHART: tuple[AccountSpec, ...] = (
    AccountSpec(CASH, "Cash and fund source", AccountType.ASSET),
    AccountSpec(LOAN_PORTFOLIO, "Loan portfolio (principal outstanding)", AccountType.ASSET),
    AccountSpec(LOAN_LOSS_PROVISION, "Loan loss provision", AccountType.ASSET, is_contra=True),
    AccountSpec(INTEREST_RECEIVABLE, "Interest receivable", AccountType.ASSET),
    AccountSpec(FEE_RECEIVABLE, "Fee receivable", AccountType.ASSET),
    AccountSpec(PENALTY_RECEIVABLE, "Penalty receivable", AccountType.ASSET),
    AccountSpec(OVERPAYMENT_LIABILITY, "Overpayments owed to borrowers", AccountType.LIABILITY),
    AccountSpec(UNAPPLIED_RECEIPTS, "Unapplied receipts (suspense)", AccountType.LIABILITY),
    AccountSpec(FUND_CAPITAL, "Fund capital", AccountType.EQUITY),
    AccountSpec(INTEREST_INCOME, "Interest income", AccountType.INCOME),
    AccountSpec(FEE_INCOME, "Fee income", AccountType.INCOME),
    AccountSpec(PENALTY_INCOME, "Penalty income", AccountType.INCOME),
    AccountSpec(RECOVERY_INCOME, "Recoveries of loans written off", AccountType.INCOME),
    AccountSpec(WRITE_OFF_EXPENSE, "Loan write-off expense", AccountType.EXPENSE),
    AccountSpec(PROVISION_EXPENSE, "Loan loss provision expense", AccountType.EXPENSE),
)

STANDARD_CODES = frozenset(spec.code for spec in STANDARD_CHART)
