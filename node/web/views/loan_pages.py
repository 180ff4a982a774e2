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
    statement = statement_rows(loan, repayments)
    return {
        "loan": loan, "schedule": schedule, "schedule_stored": stored, "balance": balance, "repayments": repayments,
        "statement": statement,
        # what else moved on the account: overpayment paid back or moved, charges added, waivers, recoveries
        "movements": [r for r in statement if r["kind"] not in ("disbursement", "repayment", "transfer_in")],
        # which actions the loan's state allows (the service checks again, under the row lock)
        "can": {action: loan.status in states for action, states in TRANSITIONS.items()},
        "mobile_money": _mobile_money_rows(loan),
    }


def _mobile_money_rows(loan: Loan) -> dict:
    """The loan's mobile-money payments (the newest 10) and whether one still waits for the phone (the page then
    refreshes the panel)."""
    from datetime import timedelta

    from django.conf import settings

    rows = list(repayment_selectors.mobile_money_payments(loan=loan)[:10])
    fresh = timezone.now() - timedelta(seconds=settings.MOBILE_MONEY_PROMPT_SECONDS)
    return {"rows": rows, "waiting": any(p.status == "requested" and p.requested_at > fresh for p in rows)}


DOCUMENTS = ("statement", "schedule")


def statement_rows(loan: Loan, repayments: list | None = None) -> list[dict]:
    """The loan account statement: every movement on the account in date order (``loan_transactions``, the API's
    ``…/transactions``), labelled for the reader; reversed ones marked."""
    from django.utils.translation import gettext as _

    waived = {"interest": _("Interest waived"), "fees": _("Fees waived"), "penalties": _("Penalties waived")}
    added = {"fees": _("Fee added"), "penalties": _("Penalty added")}
    rows = []
    for t in repayment_selectors.loan_transactions(loan=loan, repayments=repayments):
        label = {
            "disbursement": _("Paid out"), "repayment": _("Repayment"), "transfer_in": _("Applied from another loan"),
            "refund": _("Paid back to the borrower"), "recovery": _("Recovered after the write-off"),
            "transfer_out": _("Moved to loan %(reference)s") % {"reference": t.detail},
            "waiver": waived.get(t.detail, t.detail), "charge": added.get(t.detail, t.detail),
        }[t.kind]
        reference = t.reference
        if t.installment is not None:  # a charge shows its name after the installment; a waiver not its reason
            on = _("installment %(number)s") % {"number": t.installment}
            reference = f"{on} · {t.reference}" if t.kind == "charge" else on
        row = {"date": t.date, "kind": t.kind, "label": label, "amount": t.amount, "reference": reference,
               "reversed": t.reversed, "outstanding": t.outstanding_after}
        if t.parts:
            row.update(principal=t.parts["principal"], interest=t.parts["interest"],
                       charges=t.parts["fees"] + t.parts["penalties"])
        rows.append(row)
    return rows


def loan_document(loan: Loan, kind: str):
    """The loan statement or repayment schedule as a PDF (A4, WeasyPrint), from the loan page's own reads."""
    from django.http import Http404, HttpResponse
    from django.template.loader import render_to_string

    from node.reports.exports import to_pdf

    if kind not in DOCUMENTS:
        raise Http404("no such document")
    ctx = loan_context(loan)
    ctx.update(kind=kind, today=timezone.localdate())
    body = to_pdf(render_to_string("web/loan_pdf.html", ctx))
    resp = HttpResponse(body, content_type="application/pdf")
    resp["Content-Disposition"] = f'attachment; filename="{loan.reference}-{kind}.pdf"'
    return resp
