"""The stacking guard: the network lending policy, enforced by compare-and-set on the borrower's holds row.

Approval reserves the new loan's exposure (``reserved``, with an expiry); disbursement turns it into ``active``
(re-checking the policy only if the reservation is gone or expired); rejection, withdrawal, a voided approval,
write-off and closure drop it through the outbox (``holds.set``), and rescheduling moves it to the new loan. The
policy is counted over the holds row alone, so the check and the reservation are one lightweight transaction: two
MFIs in two districts approving at the same instant cannot both push the borrower past it. When the ring cannot
reach a quorum, reserving fails closed (``CreditNetworkUnavailable``) and nothing is approved or disbursed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from cassandra.query import SimpleStatement
from django.conf import settings

from node.credit.errors import CreditNetworkUnavailable, StackingLimitReached
from replication.holds import Holds, holds_change
from replication.outbox import outbox_enqueue
from replication.ring import RingUnavailable, get_session
from replication.ring_writer import HOLDS_SET

RESERVED, ACTIVE = "reserved", "active"
POLICY_NAME = "network"


@dataclass(frozen=True)
class Policy:
    max_active_loans: int | None  # reserved + active loans per borrower, network-wide
    max_dti: Decimal | None  # monthly repayments on all held loans / declared monthly income
    reservation_days: int  # how long an approval holds its exposure before disbursement
    source: str  # "network" (set in the ring) or "default" (settings)

    def to_json(self) -> dict:
        return {"max_active_loans": self.max_active_loans,
                "max_dti": str(self.max_dti) if self.max_dti is not None else None,
                "reservation_days": self.reservation_days, "source": self.source}


@dataclass(frozen=True)
class Exposure:
    """What one loan holds against the borrower."""

    borrower_key: str
    loan_key: str
    mfi: str
    district: str
    principal: Decimal
    monthly_installment: Decimal
    monthly_income: Decimal


def _default_policy() -> Policy:
    d = settings.LETSEMA_STACKING_POLICY
    return Policy(d.get("max_active_loans"), Decimal(d["max_dti"]) if d.get("max_dti") else None,
                  int(d.get("reservation_days", 30)), "default")


def policy_get() -> Policy:
    return policy_request()()


def policy_request() -> Callable[[], Policy]:
    """Send the policy read now and answer a function that waits for it (and, called again, answers the same): the
    caller can do another ring round trip (the borrower's holds read) while this one is in flight. Raises
    ``RingUnavailable`` (now or when called)."""
    session, cl = get_session()
    try:
        future = session.execute_async(SimpleStatement(
            "SELECT max_active_loans, max_dti, reservation_days FROM network_policy WHERE name = %s",
            consistency_level=cl), (POLICY_NAME,))
    except Exception as exc:
        raise RingUnavailable(f"{type(exc).__name__}: {str(exc)[:200]}") from exc

    @functools.cache
    def result() -> Policy:
        try:
            row = future.result().one()
        except Exception as exc:
            raise RingUnavailable(f"{type(exc).__name__}: {str(exc)[:200]}") from exc
        if row is None:
            return _default_policy()
        return Policy(row.max_active_loans, row.max_dti, row.reservation_days or 30, "network")

    return result


def policy_write(*, max_active_loans: int | None, max_dti: Decimal | None, reservation_days: int, by: str) -> Policy:
    """Store the network policy (every node reads it on each approval). Callers audit the change."""
    if max_active_loans is not None and max_active_loans < 1:
        raise ValueError("max_active_loans must be at least 1 (or unset)")
    if max_dti is not None and not (Decimal(0) < max_dti <= Decimal(5)):
        raise ValueError("max_dti must be in (0, 5] (or unset)")
    if not 1 <= reservation_days <= 365:
        raise ValueError("reservation_days must be between 1 and 365")
    session, cl = get_session()
    session.execute(SimpleStatement(
        "INSERT INTO network_policy (name, max_active_loans, max_dti, reservation_days, updated_at, updated_by) "
        "VALUES (%s, %s, %s, %s, %s, %s)", consistency_level=cl),
        (POLICY_NAME, max_active_loans, max_dti, reservation_days, datetime.now(UTC), by))
    return Policy(max_active_loans, max_dti, reservation_days, "network")


def monthly_dti(total_monthly: Decimal, income: Decimal) -> Decimal | None:
    if income <= 0:
        return None
    return (total_monthly / income).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


def _is_live(hold: dict, now: datetime) -> bool:
    if hold.get("state") != RESERVED or not hold.get("expires_at"):
        return True
    return datetime.fromisoformat(hold["expires_at"]) > now


def _hold(x: Exposure, state: str, now: datetime, policy: Policy) -> dict:
    expires = (now + timedelta(days=policy.reservation_days)).isoformat() if state == RESERVED else None
    return {"state": state, "mfi": x.mfi, "district": x.district, "principal": str(x.principal),
            "monthly_installment": str(x.monthly_installment), "expires_at": expires, "since": now.isoformat()}


def _check(policy: Policy, others: Holds, x: Exposure) -> None:
    holders = [{"mfi": h["mfi"], "district": h["district"], "state": h["state"]} for h in others.values()]
    if policy.max_active_loans is not None and len(others) + 1 > policy.max_active_loans:
        raise StackingLimitReached(
            f"The borrower already holds {len(others)} loan(s) or approvals across the network; the network "
            f"policy allows at most {policy.max_active_loans}.",
            details={"rule": "max_active_loans", "limit": policy.max_active_loans, "current": len(others),
                     "holders": holders})
    if policy.max_dti is not None:
        total = sum((Decimal(h["monthly_installment"]) for h in others.values()), Decimal(0)) + x.monthly_installment
        dti = monthly_dti(total, x.monthly_income)
        if dti is None or dti > policy.max_dti:
            raise StackingLimitReached(
                "Repayments on all the borrower's loans would exceed the network's debt-to-income limit."
                if dti is not None else "The borrower has no declared income; the debt-to-income limit cannot be met.",
                details={"rule": "max_dti", "limit": str(policy.max_dti), "dti": str(dti) if dti is not None else None,
                         "monthly_repayments": str(total), "monthly_income": str(x.monthly_income),
                         "holders": holders})


def _settle(x: Exposure, state: str) -> None:
    try:
        # the policy read and the borrower's holds read (in holds_change) travel at the same time
        policy_of_network = policy_request()

        def change(holds: Holds) -> Holds:
            policy = policy_of_network()
            now = datetime.now(UTC)
            live = {k: v for k, v in holds.items() if _is_live(v, now)}
            mine = live.pop(x.loan_key, None)
            if mine is not None and (mine["state"] == state or mine["state"] == ACTIVE):
                return {**live, x.loan_key: mine}  # already held (a retry, or an unknown outcome that applied)
            if mine is None:
                _check(policy, live, x)  # a new hold, or a reservation that expired: the policy decides again
            return {**live, x.loan_key: _hold(x, state, now, policy)}

        holds_change(x.borrower_key, change)
    except RingUnavailable as exc:
        raise CreditNetworkUnavailable(
            "The credit network cannot confirm the borrower's exposure right now (no ring quorum); nothing was "
            "approved or disbursed. Try again shortly.", details={"reason": str(exc)[:200]}) from None


def stacking_reserve(x: Exposure) -> None:
    """At approval: check the policy and reserve the loan's exposure in one compare-and-set."""
    _settle(x, RESERVED)


def stacking_activate(x: Exposure) -> None:
    """At disbursement: the reservation becomes the loan (policy re-checked if the reservation is gone)."""
    _settle(x, ACTIVE)


def hold_release_event(*, borrower_key: str, loan_key: str) -> tuple[str, str, dict]:
    """The outbox event (type, partition key, payload) that drops a loan's hold; idempotent."""
    return HOLDS_SET, borrower_key, {"drop": [loan_key], "put": {}}


def stacking_release_later(*, borrower_key: str, loan_key: str) -> None:
    """Drop the loan's hold once this transaction commits (through the outbox)."""
    event_type, key, payload = hold_release_event(borrower_key=borrower_key, loan_key=loan_key)
    outbox_enqueue(event_type=event_type, partition_key=key, payload=payload)


def stacking_hold_later(*, to: Exposure, drop: tuple[str, ...] = ()) -> None:
    """Hold ``to`` as an active loan once this transaction commits, dropping ``drop`` (rescheduling moves the old
    loan's hold to the new loan; reversing a final repayment re-opens a closed loan). No policy check: it is debt
    the borrower already has."""
    hold = _hold(to, ACTIVE, datetime.now(UTC), _default_policy())
    outbox_enqueue(event_type=HOLDS_SET, partition_key=to.borrower_key,
                   payload={"drop": list(drop), "put": {to.loan_key: hold}})
