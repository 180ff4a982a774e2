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


DOCUMENTS = ("statement", "schedule")


def statement_rows(loan: Loan, repayments: list) -> list[dict]:
    """The loan account statement, in date order: the payout, each repayment (reversed ones marked) with what was
    still owed right after it as the repayment recorded it, and every other movement on the account — overpayment
    paid back to the borrower or moved to another loan, interest or charges waived, recoveries after a write-off."""
    from django.utils.translation import gettext as _

    rows = []
    if loan.disbursement_date and loan.schedule:
        total = loan.schedule.get("totals", {}).get("total")
        rows.append({"date": loan.disbursement_date, "kind": "disbursement", "label": _("Paid out"),
                     "amount": loan.principal, "outstanding": total, "reference": loan.disbursement_reference})
    for r in repayments:
        rows.append({"date": r.payment_date, "kind": "repayment",
                     "label": _("Applied from another loan") if r.channel == "transfer" else _("Repayment"),
                     "amount": r.amount, "principal": r.principal,
                     "interest": r.interest, "charges": r.fees + r.penalties, "reference": r.receipt_number,
                     "reversed": r.reversed_at is not None,
                     "outstanding": None if r.reversed_at else sum_exact((
                         r.outstanding_principal_after, r.outstanding_interest_after, r.outstanding_fees_after,
                         r.outstanding_penalties_after))})
    if not loan.disbursement_date:
        return rows
    for f in repayment_selectors.overpayment_refund_list(loan=loan):
        rows.append({"date": f.refund_date, "kind": "refund", "label": _("Paid back to the borrower"),
                     "amount": f.amount, "reference": f.reference, "reversed": f.reversed_at is not None})
    for t in repayment_selectors.overpayment_transfer_list(loan=loan):
        rows.append({"date": t.repayment.payment_date, "kind": "transfer",
                     "label": _("Moved to loan %(reference)s") % {"reference": t.to_loan.reference},
                     "amount": t.amount, "reference": t.repayment.receipt_number,
                     "reversed": t.repayment.reversed_at is not None})
    labels = {"interest": _("Interest waived"), "fees": _("Fees waived"), "penalties": _("Penalties waived")}
    for w in repayment_selectors.charge_waiver_list(loan=loan):
        rows.append({"date": w.waived_on, "kind": "waiver", "label": labels[w.component], "amount": w.amount,
                     "reference": _("installment %(number)s") % {"number": w.installment.number}})
    for c in repayment_selectors.recovery_list(loan=loan):
        rows.append({"date": c.payment_date, "kind": "recovery", "label": _("Recovered after the write-off"),
                     "amount": c.amount, "reference": c.receipt_number, "reversed": c.reversed_at is not None})
    order = {"disbursement": 0}
    return sorted(rows, key=lambda r: (r["date"], order.get(r["kind"], 1)))  # stable: same day keeps its order


def loan_document(loan: Loan, kind: str):
    """The loan statement or repayment schedule as a PDF (A4, WeasyPrint), from the loan page's own reads."""
    from django.http import Http404, HttpResponse
    from django.template.loader import render_to_string

    from node.reports.exports import to_pdf

    if kind not in DOCUMENTS:
        raise Http404("no such document")
    ctx = loan_context(loan)
    ctx.update(kind=kind, today=timezone.localdate(), statement=statement_rows(loan, ctx["repayments"]))
    body = to_pdf(render_to_string("web/loan_pdf.html", ctx))
    resp = HttpResponse(body, content_type="application/pdf")
    resp["Content-Disposition"] = f'attachment; filename="{loan.reference}-{kind}.pdf"'
    return resp
