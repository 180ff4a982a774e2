"""The credit report: a fold over one borrower's partition of the ring's ``credit_events`` table.

The partition holds every loan event shipped by every district (applied, approved, disbursed, repaid,
days-past-due changed, closed, written off, rescheduled, ...) and every enquiry (which MFI looked, when, why).
Folding it in event order gives the current-exposure view per loan; nothing is ever read-modified-written in
the ring. This module is pure: it turns rows into a report and knows nothing about the ring session.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

ZERO = Decimal("0.00")

# event type -> the loan status it leaves the loan in (None: the status does not change)
STATUS_AFTER = {
    "loan.applied": "applied",
    "loan.approved": "approved",
    "loan.approval_voided": "applied",
    "loan.rejected": "rejected",
    "loan.withdrawn": "withdrawn",
    "loan.disbursed": "active",
    "loan.repaid": None,
    "loan.dpd_changed": None,
    "loan.closed": "closed",
    "loan.reopened": "active",  # a reversed final repayment
    "loan.written_off": "written_off",
    "loan.recovered": None,  # money collected after the write-off: still written off
    "loan.rescheduled": "rescheduled",
}
ENQUIRY = "enquiry"
# a borrower's dispute of a loan's record, written by the node that owns the loan (docs/credit-disputes.md)
DISPUTE_OPENED, DISPUTE_RESOLVED = "dispute.opened", "dispute.resolved"
PENDING = frozenset({"applied", "approved"})
DISBURSED = frozenset({"active", "closed", "written_off", "rescheduled"})
ACTIVE = "active"


@dataclass(frozen=True)
class RingRow:
    """One row of a ``credit_events`` partition (what the ring returns)."""

    event_time: datetime
    event_id: str
    event_type: str
    origin_district: str
    payload: dict


@dataclass(frozen=True)
class LoanLine:
    loan_key: str  # "<district>/<loan reference>": unique network-wide
    district: str
    mfi: str
    loan_ref: str
    status: str
    currency: str
    principal: Decimal
    outstanding: Decimal  # principal outstanding (0 unless active)
    monthly_installment: Decimal  # the regular installment, normalised to a month (0 unless pending/active)
    current_dpd: int
    worst_dpd: int
    written_off_amount: Decimal
    disbursed_on: date | None
    first_seen: datetime
    last_event_at: datetime
    recovered_amount: Decimal = Decimal(0)  # collected after the write-off (``loan.recovered``)
    under_dispute: bool = False  # the borrower disputes this record and the lender has not answered yet


@dataclass(frozen=True)
class Dispute:
    """A borrower's dispute of one loan's record: opened at the owning node, answered by the lender there."""

    dispute_id: str
    loan_key: str
    reason: str
    status: str  # open | corrected | rejected
    opened_at: datetime
    respond_by: date | None
    resolved_at: datetime | None = None


@dataclass(frozen=True)
class Enquiry:
    at: datetime
    mfi: str
    district: str
    purpose: str


@dataclass(frozen=True)
class CreditReport:
    borrower_key: str
    as_of: datetime
    loans: tuple[LoanLine, ...]
    enquiries: tuple[Enquiry, ...]
    events_read: int = 0
    disputes: tuple[Dispute, ...] = ()
    excluded_loan_key: str | None = None  # the application being assessed, left out of the figures below

    @property
    def other_loans(self) -> tuple[LoanLine, ...]:
        """Every loan except the application being assessed."""
        return tuple(x for x in self.loans if x.loan_key != self.excluded_loan_key)

    @property
    def active_loans(self) -> int:
        return sum(1 for x in self.other_loans if x.status == ACTIVE)

    @property
    def pending_applications(self) -> int:
        return sum(1 for x in self.other_loans if x.status in PENDING)

    @property
    def total_exposure(self) -> Decimal:
        return sum((x.outstanding for x in self.other_loans if x.status == ACTIVE), ZERO)

    @property
    def monthly_debt_service(self) -> Decimal:
        return sum((x.monthly_installment for x in self.other_loans if x.status == ACTIVE), ZERO)

    @property
    def write_offs(self) -> int:
        return sum(1 for x in self.other_loans if x.status == "written_off")

    @property
    def worst_dpd(self) -> int:
        return max((x.worst_dpd for x in self.other_loans), default=0)

    @property
    def current_dpd(self) -> int:
        return max((x.current_dpd for x in self.other_loans if x.status == ACTIVE), default=0)

    @property
    def disputed_loans(self) -> int:
        return sum(1 for x in self.other_loans if x.under_dispute)

    @property
    def closed_loans(self) -> int:
        return sum(1 for x in self.other_loans if x.status == "closed")

    @property
    def first_seen(self) -> datetime | None:
        """When the credit history starts: the first loan that was disbursed (applications alone are not history)."""
        return min((x.first_seen for x in self.other_loans if x.status in DISBURSED), default=None)

    def enquiries_within(self, days: int) -> int:
        since = self.as_of - timedelta(days=days)
        return sum(1 for e in self.enquiries if e.at >= since)


def _dec(value, default: Decimal = ZERO) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else default


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def loan_key(district: str, loan_ref: str) -> str:
    return f"{district}/{loan_ref}"


def fold(borrower_key: str, rows: Iterable[RingRow], *, as_of: datetime,
         exclude_loan_key: str | None = None) -> CreditReport:
    """Build the report from a partition's rows (any order). Later events win; ties break on the event id."""
    ordered = sorted(rows, key=lambda r: (_utc(r.event_time), str(r.event_id)))
    loans: dict[str, dict] = {}
    enquiries: list[Enquiry] = []
    disputes: dict[str, Dispute] = {}
    for row in ordered:
        p = row.payload
        at = _utc(row.event_time)
        if row.event_type == ENQUIRY:
            enquiries.append(Enquiry(at=at, mfi=p.get("mfi", ""), district=p.get("district") or row.origin_district,
                                     purpose=p.get("purpose", "")))
            continue
        if row.event_type == DISPUTE_OPENED:
            disputes[p["dispute_id"]] = Dispute(
                dispute_id=p["dispute_id"], loan_key=loan_key(p.get("district") or row.origin_district, p["loan_ref"]),
                reason=p.get("reason", ""), status="open", opened_at=at,
                respond_by=date.fromisoformat(p["respond_by"]) if p.get("respond_by") else None)
            continue
        if row.event_type == DISPUTE_RESOLVED:
            opened = disputes.get(p["dispute_id"])
            if opened is not None:
                disputes[p["dispute_id"]] = replace(opened, status=p.get("outcome", "resolved"), resolved_at=at)
            continue
        if row.event_type not in STATUS_AFTER:
            continue  # an event type this node does not know yet: newer schema, ignore rather than guess
        district = p.get("district") or row.origin_district
        key = loan_key(district, p["loan_ref"])
        line = loans.setdefault(key, {
            "loan_key": key, "district": district, "mfi": p.get("mfi", ""), "loan_ref": p["loan_ref"],
            "status": "applied", "currency": p.get("currency", "LSL"), "principal": ZERO, "outstanding": ZERO,
            "monthly_installment": ZERO, "current_dpd": 0, "worst_dpd": 0, "written_off_amount": ZERO,
            "disbursed_on": None, "first_seen": at, "last_event_at": at,
        })
        line["last_event_at"] = at
        if p.get("principal") is not None:
            line["principal"] = _dec(p["principal"])
        if p.get("monthly_installment") is not None:
            line["monthly_installment"] = _dec(p["monthly_installment"])
        if p.get("disbursement_date"):
            line["disbursed_on"] = date.fromisoformat(p["disbursement_date"])
        status = STATUS_AFTER[row.event_type]
        if status is not None:
            line["status"] = status
        if p.get("outstanding_principal") is not None:
            line["outstanding"] = _dec(p["outstanding_principal"])
        if p.get("days_past_due") is not None:
            line["current_dpd"] = int(p["days_past_due"])
            line["worst_dpd"] = max(line["worst_dpd"], int(p["days_past_due"]))
        if row.event_type == "loan.written_off":
            line["written_off_amount"] = line["outstanding"]
        if row.event_type == "loan.recovered" and p.get("recovered") is not None:
            line["recovered_amount"] = _dec(p["recovered"])
        if line["status"] not in (ACTIVE, *PENDING):  # ended: nothing owed, nothing due
            line["outstanding"], line["current_dpd"], line["monthly_installment"] = ZERO, 0, ZERO
    disputed = {d.loan_key for d in disputes.values() if d.status == "open"}
    lines = tuple(sorted((LoanLine(**v, under_dispute=v["loan_key"] in disputed) for v in loans.values()),
                         key=lambda x: x.first_seen, reverse=True))
    return CreditReport(borrower_key=borrower_key, as_of=_utc(as_of), loans=lines,
                        enquiries=tuple(sorted(enquiries, key=lambda e: e.at, reverse=True)),
                        events_read=len(ordered), excluded_loan_key=exclude_loan_key,
                        disputes=tuple(sorted(disputes.values(), key=lambda d: d.opened_at, reverse=True)))


def parse_payload(text: str) -> dict:
    return json.loads(text) if text else {}
