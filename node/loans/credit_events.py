"""What a loan tells the network: credit events (through the outbox) and the exposure the stacking guard holds.

Payloads are an explicit, versioned schema — never a model dump — and carry the pseudonymous borrower key as the
partition, never the national ID. Called inside the loan service's transaction.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings

from node.core.money import plain
from node.credit.report import loan_key
from node.credit.stacking import Exposure
from node.loans.models import Loan
from node.loans.products import build_schedule
from replication.outbox import outbox_enqueue

SCHEMA_VERSION = 2  # 2: monthly_installment, days_past_due
DAYS_PER_MONTH = Decimal(365) / Decimal(12)


def monthly_installment(schedule: dict) -> Decimal:
    """The schedule's repayments normalised to a month: total due on installments >= 1 over the days they span,
    times 365/12. Frequency-agnostic (weekly, fortnightly, monthly), and a bullet loan counts at its true rate."""
    rows = [r for r in schedule["installments"] if r["number"] >= 1]
    days = sum(int(r["days"]) for r in rows)
    if not rows or days <= 0:
        return Decimal("0.00")
    total = sum((Decimal(r["total"]) for r in rows), Decimal(0))
    return (total / days * DAYS_PER_MONTH).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def loan_schedule(loan: Loan) -> dict:
    """The stored schedule of a disbursed loan, else the one its current terms produce (computed once per loan
    object and terms: an approval needs it for the exposure and for the credit event)."""
    if loan.schedule is not None:
        return loan.schedule
    terms = (loan.product_id, loan.principal, loan.number_of_repayments, loan.annual_interest_rate,
             loan.expected_disbursement_date)
    cached = getattr(loan, "_schedule_for_terms", None)
    if cached is not None and cached[0] == terms:
        return cached[1]
    schedule = build_schedule(loan.product, principal=loan.principal, number_of_repayments=loan.number_of_repayments,
                              annual_interest_rate=loan.annual_interest_rate,
                              disbursement_date=loan.expected_disbursement_date)
    loan._schedule_for_terms = (terms, schedule)
    return schedule


def network_loan_key(loan: Loan) -> str:
    return loan_key(settings.DISTRICT.code, loan.reference)


def loan_exposure(loan: Loan, *, principal: Decimal | None = None) -> Exposure:
    return Exposure(
        borrower_key=loan.borrower.borrower_key, loan_key=network_loan_key(loan), mfi=loan.mfi.code,
        district=settings.DISTRICT.code, principal=loan.principal if principal is None else principal,
        monthly_installment=monthly_installment(loan_schedule(loan)), monthly_income=loan.borrower.monthly_income,
    )


def emit_credit_event(loan: Loan, event_type: str, *, outstanding_principal=None, days_past_due: int | None = None,
                      extra: dict | None = None) -> None:
    """``extra``: fields of this event type beyond the common ones (e.g. ``loan.recovered``'s amounts)."""
    outbox_enqueue(event_type=event_type, partition_key=loan.borrower.borrower_key,
                   payload={**credit_event_payload(loan, outstanding_principal=outstanding_principal,
                                                   days_past_due=days_past_due), **(extra or {})})


def credit_event_payload(loan: Loan, *, outstanding_principal=None, days_past_due: int | None = None) -> dict:
    return {
        "schema": SCHEMA_VERSION,
        "mfi": loan.mfi.code,
        "district": settings.DISTRICT.code,
        "loan_ref": loan.reference,
        "status": loan.status,
        "principal": str(loan.principal),
        "number_of_repayments": loan.number_of_repayments,
        "annual_interest_rate": plain(loan.annual_interest_rate),
        "monthly_installment": str(monthly_installment(loan_schedule(loan))),
        "disbursement_date": loan.disbursement_date.isoformat() if loan.disbursement_date else None,
        "outstanding_principal": str(outstanding_principal) if outstanding_principal is not None else None,
        "days_past_due": days_past_due,
        "currency": loan.product.currency,
    }
