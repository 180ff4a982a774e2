"""Credit events a loan emits for the shared credit history (through the outbox, never to the ring directly).

Payloads are an explicit, versioned schema — never a model dump — and carry the pseudonymous borrower key as the
partition, never the national ID. Called inside the loan service's transaction.
"""

from __future__ import annotations

from django.conf import settings

from node.loans.models import Loan
from replication.outbox import outbox_enqueue

SCHEMA_VERSION = 1


def emit_credit_event(loan: Loan, event_type: str, *, outstanding_principal=None) -> None:
    payload = {
        "schema": SCHEMA_VERSION,
        "mfi": loan.mfi.code,
        "district": settings.DISTRICT.code,
        "loan_ref": loan.reference,
        "status": loan.status,
        "principal": str(loan.principal),
        "number_of_repayments": loan.number_of_repayments,
        "annual_interest_rate": str(loan.annual_interest_rate.normalize()),
        "disbursement_date": loan.disbursement_date.isoformat() if loan.disbursement_date else None,
        "outstanding_principal": str(outstanding_principal) if outstanding_principal is not None else None,
        "currency": loan.product.currency,
    }
    outbox_enqueue(event_type=event_type, partition_key=loan.borrower.borrower_key, payload=payload)
