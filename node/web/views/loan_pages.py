"""What a loan page shows, for the borrower and for staff: the terms, the schedule (stored once disbursed, else what
the current terms would produce), the balance as of today and the repayment history — the same reads as the API's
schedule, balance and repayments endpoints."""

from __future__ import annotations

from django.utils import timezone

from node.core.errors import ApplicationError
from node.core.money import sum_exact
from node.loans import products as product_services
from node.loans.models import Loan
from node.loans.services import TRANSITIONS
from node.repayments import selectors as repayment_selectors


def loan_schedule_view(loan: Loan) -> tuple[dict | None, bool]:
    if loan.schedule is not None:
        return loan.schedule, True
    try:
        return product_services.build_schedule(
            loan.product, principal=loan.principal, number_of_repayments=loan.number_of_repayments,
            annual_interest_rate=loan.annual_interest_rate, disbursement_date=loan.expected_disbursement_date), False
    except ApplicationError:
        return None, False


def _total(parts: dict) -> object:
    return sum_exact(parts.values())


def balance_view(balance: repayment_selectors.LoanBalance) -> dict:
    """The balance as a borrower reads it: totals per installment rather than per component."""
    rows = [{"number": r.number, "due_date": r.due_date, "status": r.status, "due": _total(r.due),
             "paid": _total(r.paid), "outstanding": _total(r.outstanding)} for r in balance.installments]
    return {
        "as_of": balance.as_of, "rows": rows, "outstanding": _total(balance.outstanding),
        "overdue": _total(balance.overdue), "payoff": balance.payoff.amount,
        "overpayment_held": balance.overpayment_held,
        "next_due": next((r for r in rows if r["number"] >= 1 and r["outstanding"] > 0), None),
    }


def loan_context(loan: Loan) -> dict:
    schedule, stored = loan_schedule_view(loan)
    balance = None
    if loan.disbursement_date is not None:
        balance = balance_view(repayment_selectors.loan_balance(
            loan=loan, as_of=max(timezone.localdate(), loan.disbursement_date)))
    repayments = list(repayment_selectors.repayment_list(loan=loan)) if loan.disbursement_date else []
    return {
        "loan": loan, "schedule": schedule, "schedule_stored": stored, "balance": balance, "repayments": repayments,
        # which actions the loan's state allows (the service checks again, under the row lock)
        "can": {action: loan.status in states for action, states in TRANSITIONS.items()},
    }
