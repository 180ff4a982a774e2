"""Reads: repayments of a loan (with their allocations), one repayment, and a loan's balance and payoff as of a date.

Access follows the loans app: a borrower sees their own loans, staff their MFI's; anything else answers exactly like
a missing object (and the attempt is audited).

Payoff ("foreclosure") amount as of a date D (cash-based, declining balance; docs/repayments.md):

    principal outstanding (all installments)
  + unpaid interest, fees and penalties of installments due on or before D
  + interest of the current period (the first installment due after D), pro-rated by the days elapsed since the
    previous due date (or the disbursement date): scheduled interest x elapsed days / days in the period, rounded
    half-up to the currency's places, less what has already been paid of that installment's interest (not below 0)

Interest of later periods is not owed on a payoff.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Max, Prefetch, Q, QuerySet, Sum
from django.utils import timezone

from node.audit.services import audit_access_denied
from node.core.errors import Forbidden, NotFound, ValidationFailed
from node.core.money import div_round, exact_mul
from node.loans.models import Loan, LoanProduct
from node.loans.selectors import loan_list_for
from node.repayments import allocation as A
from node.repayments.errors import LoanNotDisbursed
from node.repayments.models import (
    ChargeWaiver,
    LoanCharge,
    OverpaymentRefund,
    OverpaymentTransfer,
    PayoffWaiver,
    Recovery,
    Repayment,
    RepaymentAllocation,
)
from node.users.models import User

ZERO = Decimal("0.00")
WAIVED = ("interest", "fees", "penalties")  # what a payoff waives (PayoffWaiver)
COMPONENTS = A.COMPONENTS

PAID, PARTIALLY_PAID, OVERDUE, DUE, UPCOMING = "paid", "partially_paid", "overdue", "due", "upcoming"


def _repayments() -> QuerySet[Repayment]:
    return (Repayment.objects.select_related("loan", "mfi", "posted_by", "reversed_by")
            .prefetch_related(Prefetch("allocations",
                                       queryset=RepaymentAllocation.objects.select_related("installment"))))


def repayment_list(*, loan: Loan) -> QuerySet[Repayment]:
    """Every repayment of ``loan``, reversed ones included, in posting order."""
    return _repayments().filter(loan_id=loan.pk).order_by("id")


def repayment_get(repayment_id: int) -> Repayment:
    return _repayments().get(pk=repayment_id)


def access_repayment_by_id(actor: User, repayment_id, *, roles: frozenset[str] | None = None) -> Repayment:
    """The repayment if ``actor`` may see its loan, else NotFound exactly as for a missing id (audited)."""
    return _access_through_loan(actor, _repayments(), repayment_id, what="repayment", roles=roles)


def _access_through_loan(actor: User, qs: QuerySet, raw_id, *, what: str, roles: frozenset[str] | None):
    """An object of ``qs`` (a model with a ``loan``) if ``actor`` may see its loan; NotFound exactly as for a
    missing id otherwise (the attempt on an existing one audited as ``access.denied``); Forbidden for a role not in
    ``roles``."""
    try:
        pk = int(raw_id)
    except (TypeError, ValueError):
        raise NotFound(f"No such {what}.") from None
    found = qs.filter(pk=pk, loan_id__in=loan_list_for(actor=actor).values("pk")).first()
    if found is None:
        if qs.model.objects.filter(pk=pk).exists():
            audit_access_denied(actor=actor, target_type=what, target_id=pk)
        raise NotFound(f"No such {what}.")
    if roles is not None and actor.role not in roles:
        raise Forbidden("Your role may not do this.")
    return found


def overpayment_transfer_list(*, loan: Loan) -> QuerySet[OverpaymentTransfer]:
    """The transfers out of ``loan``'s overpayment, in order (reversed ones included: see ``reversed``)."""
    return (OverpaymentTransfer.objects.filter(from_loan_id=loan.pk)
            .select_related("repayment", "transferred_by", "to_loan")
            .order_by("id"))


def recovery_list(*, loan: Loan) -> QuerySet[Recovery]:
    """The recoveries of a written-off loan, reversed ones included, in posting order."""
    return Recovery.objects.filter(loan_id=loan.pk).select_related("posted_by", "reversed_by").order_by("id")


def access_recovery_by_id(actor: User, recovery_id, *, roles: frozenset[str] | None = None) -> Recovery:
    """The recovery if ``actor`` may see its loan, else NotFound exactly as for a missing id (audited)."""
    return _access_through_loan(actor, Recovery.objects.select_related("posted_by", "reversed_by"), recovery_id,
                                what="recovery", roles=roles)


def access_refund_by_id(actor: User, refund_id, *, roles: frozenset[str] | None = None) -> OverpaymentRefund:
    """The overpayment refund if ``actor`` may see its loan, else NotFound exactly as for a missing id (audited)."""
    return _access_through_loan(actor, OverpaymentRefund.objects.select_related("refunded_by", "reversed_by"),
                                refund_id, what="overpayment refund", roles=roles)


def loan_charge_list(*, loan: Loan) -> QuerySet[LoanCharge]:
    return LoanCharge.objects.filter(loan_id=loan.pk).select_related("installment", "added_by").order_by("id")


def charge_waiver_list(*, loan: Loan) -> QuerySet[ChargeWaiver]:
    return (ChargeWaiver.objects.filter(loan_id=loan.pk).select_related("installment", "waived_by", "undone_by")
            .order_by("id"))


def access_waiver_by_id(actor: User, waiver_id, *, roles: frozenset[str] | None = None) -> ChargeWaiver:
    """The charge waiver if ``actor`` may see its loan, else NotFound exactly as for a missing id (audited)."""
    return _access_through_loan(actor, ChargeWaiver.objects.select_related("installment", "waived_by", "undone_by"),
                                waiver_id, what="charge waiver", roles=roles)


def access_product_by_id(actor: User, product_id) -> LoanProduct:
    """A product of the actor's own MFI (staff); NotFound otherwise."""
    try:
        pk = int(product_id)
    except (TypeError, ValueError):
        raise NotFound("No such product.") from None
    product = LoanProduct.objects.select_related("mfi").filter(pk=pk, mfi_id=getattr(actor, "mfi_id", None)).first()
    if product is None or actor.mfi_id is None:
        raise NotFound("No such product.")
    return product


def loan_closed_at(loan: Loan) -> dt.datetime | None:
    """When the loan was closed (by its final repayment or by close of business); None while it is not."""
    return loan.closed_at if loan.status == "closed" else None


def overpayment_held(loan: Loan, *, as_of: dt.date | None = None) -> Decimal:
    """Overpayments held for the borrower (liability 2100) by repayments in effect, less what was refunded (refunds in
    effect) and what was transferred to another loan (transfers in effect), dated up to ``as_of``."""
    qs = Repayment.objects.filter(loan_id=loan.pk, reversed_at__isnull=True)
    refunds = OverpaymentRefund.objects.filter(loan_id=loan.pk, reversed_at__isnull=True)
    transfers = OverpaymentTransfer.objects.filter(from_loan_id=loan.pk, repayment__reversed_at__isnull=True)
    if as_of is not None:
        qs, refunds = qs.filter(payment_date__lte=as_of), refunds.filter(refund_date__lte=as_of)
        transfers = transfers.filter(repayment__payment_date__lte=as_of)
    held = qs.aggregate(s=Sum("overpayment"))["s"] or ZERO
    return (held - (refunds.aggregate(s=Sum("amount"))["s"] or ZERO)
            - (transfers.aggregate(s=Sum("amount"))["s"] or ZERO))


def overpayment_refund_list(*, loan: Loan) -> QuerySet[OverpaymentRefund]:
    return OverpaymentRefund.objects.filter(loan_id=loan.pk).select_related("refunded_by", "reversed_by").order_by("id")


# --- balance -----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class InstallmentBalance:
    number: int
    due_date: dt.date
    status: str
    due: dict[str, Decimal]
    paid: dict[str, Decimal]
    outstanding: dict[str, Decimal]


@dataclass(frozen=True)
class CurrentPeriod:
    installment: int
    period_start: dt.date
    due_date: dt.date
    days_in_period: int
    days_elapsed: int
    scheduled_interest: Decimal
    accrued_interest: Decimal  # scheduled x elapsed / days, half-up
    interest_paid: Decimal
    interest_owed: Decimal  # accrued less paid, not below 0


@dataclass(frozen=True)
class Payoff:
    principal: Decimal
    interest_due: Decimal  # unpaid interest of installments due on or before as_of
    current_period_interest: Decimal
    fees: Decimal
    penalties: Decimal
    current_period: CurrentPeriod | None

    @property
    def amount(self) -> Decimal:
        return self.principal + self.interest_due + self.current_period_interest + self.fees + self.penalties


@dataclass(frozen=True)
class LoanBalance:
    loan: Loan
    as_of: dt.date
    installments: list[InstallmentBalance]
    outstanding: dict[str, Decimal]  # whole schedule
    overdue: dict[str, Decimal]  # installments due before as_of
    payoff: Payoff
    overpayment_held: Decimal
    closed_at: dt.datetime | None
    status: str = ""  # the loan's status as of ``as_of`` (see :func:`loan_balance`)


def _status(due_date: dt.date, as_of: dt.date, paid_total: Decimal, outstanding_total: Decimal) -> str:
    if outstanding_total == 0:
        return PAID
    if due_date < as_of:
        return OVERDUE
    if due_date == as_of:
        return DUE
    return PARTIALLY_PAID if paid_total > 0 else UPCOMING


def _sum(rows: list[InstallmentBalance]) -> dict[str, Decimal]:
    return {c: sum((r.outstanding[c] for r in rows), ZERO) for c in COMPONENTS}


def loan_balance(*, loan: Loan, as_of: dt.date) -> LoanBalance:
    """The loan's schedule as of ``as_of``: what each installment had due and paid (repayments dated after
    ``as_of`` are left out, and what a payoff dated after it waived is due again; reversed ones never count), its
    status, totals and the payoff amount."""
    if loan.disbursement_date is None:
        raise LoanNotDisbursed("The loan has not been disbursed; it has no schedule to repay.",
                               details={"current_state": loan.status})
    if as_of < loan.disbursement_date:
        raise ValidationFailed("The date is before the disbursement.",
                               details={"fields": {"as_of": [f"on or after {loan.disbursement_date}"]}})
    installments = list(loan.installments.order_by("number"))
    later = {
        row["installment_id"]: row for row in
        RepaymentAllocation.objects.filter(repayment__loan_id=loan.pk, repayment__reversed_at__isnull=True,
                                           repayment__payment_date__gt=as_of)
        .values("installment_id").annotate(**{c: Sum(c) for c in COMPONENTS})
    }
    # a payoff dated after as_of waived part of the installments' interest and charges since: owed again as of then
    waived_later = {
        row["installment_id"]: row for row in
        PayoffWaiver.objects.filter(repayment__loan_id=loan.pk, repayment__reversed_at__isnull=True,
                                    repayment__payment_date__gt=as_of)
        .values("installment_id").annotate(**{c: Sum(c) for c in WAIVED})
    }
    for inst_id, component, amount in (ChargeWaiver.objects.filter(loan_id=loan.pk, waived_on__gt=as_of,
                                                                   undone_at__isnull=True)
                                       .values_list("installment_id", "component").annotate(s=Sum("amount"))):
        row = waived_later.setdefault(inst_id, {})  # so did a waiver made after as_of
        row[component] = (row.get(component) or ZERO) + amount
    for inst_id, component, amount in (ChargeWaiver.objects.filter(loan_id=loan.pk, waived_on__lte=as_of,
                                                                   undone_on__gt=as_of)
                                       .values_list("installment_id", "component").annotate(s=Sum("amount"))):
        row = waived_later.setdefault(inst_id, {})  # a waiver undone since was in effect as of then
        row[component] = (row.get(component) or ZERO) - amount
    for inst_id, kind, amount in (LoanCharge.objects.filter(loan_id=loan.pk, charged_on__gt=as_of)
                                  .values_list("installment_id", "kind").annotate(s=Sum("amount"))):
        row = waived_later.setdefault(inst_id, {})  # a charge added after as_of was not owed then
        row[kind] = (row.get(kind) or ZERO) - amount
    rows: list[InstallmentBalance] = []
    for inst in installments:
        due = {c: getattr(inst, c) + (waived_later.get(inst.pk, {}).get(c) or ZERO) for c in COMPONENTS}
        paid = {c: getattr(inst, f"{c}_paid") - (later.get(inst.pk, {}).get(c) or ZERO) for c in COMPONENTS}
        outstanding = {c: max(due[c] - paid[c], ZERO) for c in COMPONENTS}
        rows.append(InstallmentBalance(
            number=inst.number, due_date=inst.due_date, due=due, paid=paid, outstanding=outstanding,
            status=_status(inst.due_date, as_of, sum(paid.values(), ZERO), sum(outstanding.values(), ZERO)),
        ))

    decimals = loan.product.currency_decimals
    fallen_due = [r for r in rows if r.due_date <= as_of]
    current = None
    for index, r in enumerate(rows):
        if r.number >= 1 and r.due_date > as_of:
            previous = rows[index - 1] if index > 0 else None
            start = previous.due_date if previous is not None and previous.number >= 1 else loan.disbursement_date
            days = (r.due_date - start).days
            elapsed = min(max((as_of - start).days, 0), days)
            interest = r.due["interest"]
            accrued = interest if days <= 0 else div_round(exact_mul(interest, elapsed), days, decimals, ROUND_HALF_UP)
            current = CurrentPeriod(
                installment=r.number, period_start=start, due_date=r.due_date, days_in_period=days,
                days_elapsed=elapsed, scheduled_interest=interest, accrued_interest=accrued,
                interest_paid=r.paid["interest"], interest_owed=max(accrued - r.paid["interest"], ZERO),
            )
            break
    payoff = Payoff(
        principal=sum((r.outstanding["principal"] for r in rows), ZERO),
        interest_due=sum((r.outstanding["interest"] for r in fallen_due), ZERO),
        current_period_interest=current.interest_owed if current is not None else ZERO,
        fees=sum((r.outstanding["fees"] for r in fallen_due), ZERO),
        penalties=sum((r.outstanding["penalties"] for r in fallen_due), ZERO),
        current_period=current,
    )
    outstanding = _sum(rows)
    # the status as of then: a loan closed since that still owed something on as_of was active then; a loan
    # written off after as_of was active then; so was a loan rescheduled into a new one starting after as_of
    status, closed_at = loan.status, loan_closed_at(loan)
    if status == "closed" and sum(outstanding.values(), ZERO) > 0:
        status, closed_at = "active", None
    elif status == "written_off" and loan.written_off_at and timezone.localdate(loan.written_off_at) > as_of:
        status = "active"
    elif status == "rescheduled":
        successor_start = (Loan.objects.filter(rescheduled_from_id=loan.pk)
                           .values_list("disbursement_date", flat=True).first())
        if successor_start is not None and successor_start > as_of:
            status = "active"
    return LoanBalance(
        loan=loan, as_of=as_of, installments=rows, outstanding=outstanding,
        overdue=_sum([r for r in rows if r.due_date < as_of]), payoff=payoff,
        overpayment_held=overpayment_held(loan, as_of=as_of), closed_at=closed_at, status=status,
    )


@dataclass(frozen=True)
class PayoffFloor:
    """What stops a payoff being dated earlier: the latest repayment in effect (``last_repayment``) and the latest
    change to what the schedule owes — a waiver in effect, an undone waiver, an added charge (``last_change``). A
    payoff dated before either would settle a schedule that was not what was owed on its date."""

    last_repayment: dt.date | None
    last_change: dt.date | None

    @property
    def earliest(self) -> dt.date | None:
        """The first day a payoff may be dated (``None``: any day from the disbursement)."""
        return max(filter(None, (self.last_repayment, self.last_change)), default=None)


def payoff_floor(loan: Loan) -> PayoffFloor:
    """The dates a payoff of ``loan`` may not precede (:class:`PayoffFloor`); ``loan_payoff`` refuses an earlier one
    and the balance says so."""
    last_repayment = (Repayment.objects.filter(loan_id=loan.pk, reversed_at__isnull=True)
                      .aggregate(m=Max("payment_date"))["m"])
    waivers = ChargeWaiver.objects.filter(loan_id=loan.pk).aggregate(
        waived=Max("waived_on", filter=Q(undone_at__isnull=True)), undone=Max("undone_on"))
    last_change = max(filter(None, (
        waivers["waived"], waivers["undone"],
        LoanCharge.objects.filter(loan_id=loan.pk).aggregate(m=Max("charged_on"))["m"])), default=None)
    return PayoffFloor(last_repayment=last_repayment, last_change=last_change)


# --- the loan's transaction history ------------------------------------------------------------------------------

@dataclass(frozen=True)
class LoanTransaction:
    """One movement on a loan account, for the statement and ``GET …/transactions`` (Fineract's loan transactions).

    ``kind``: ``disbursement``, ``repayment`` (``transfer_in`` when paid out of another loan's overpayment),
    ``refund`` (overpayment paid back to the borrower), ``transfer_out`` (overpayment moved to another loan),
    ``charge`` (a fee or penalty added by staff: ``detail`` fees|penalties, ``reference`` its name), ``waiver``
    (``detail`` the component forgiven, ``reference`` why), ``recovery`` (collected after a write-off). ``parts``
    splits a repayment by component; ``outstanding_after`` is what the loan still owed right after a disbursement or
    a repayment in effect."""

    date: dt.date
    kind: str
    amount: Decimal
    reference: str = ""
    detail: str = ""  # the component waived, the kind of a charge, the other loan of a transfer, a refund's channel
    reversed: bool = False
    parts: dict | None = None
    outstanding_after: Decimal | None = None
    installment: int | None = None  # the installment a charge or a waiver is on
    id: int | None = None  # the row's id in its own list (repayments, refunds, …)
    at: dt.datetime | None = None  # when it was recorded: orders a day's movements


_TX_ORDER = {"disbursement": 0}


def loan_transactions(*, loan: Loan, repayments: list[Repayment] | None = None) -> list[LoanTransaction]:
    """Every movement on ``loan`` in date order (the disbursement first on its day, then in the order they were
    recorded), reversed ones included and marked. ``repayments``: ``repayment_list`` already read by the caller."""
    out: list[LoanTransaction] = []
    if loan.disbursement_date is None:
        return out
    if loan.schedule:
        total = loan.schedule.get("totals", {}).get("total")
        out.append(LoanTransaction(date=loan.disbursement_date, kind="disbursement", amount=loan.principal,
                                   reference=loan.disbursement_reference or "",
                                   outstanding_after=Decimal(total) if total is not None else None,
                                   at=loan.disbursed_at))
    for r in repayment_list(loan=loan) if repayments is None else repayments:
        out.append(LoanTransaction(
            date=r.payment_date, kind="transfer_in" if r.channel == "transfer" else "repayment", amount=r.amount,
            reference=r.receipt_number, reversed=r.reversed_at is not None, id=r.pk, at=r.posted_at,
            parts={"principal": r.principal, "interest": r.interest, "fees": r.fees, "penalties": r.penalties,
                   "overpayment": r.overpayment},
            outstanding_after=None if r.reversed_at else (r.outstanding_principal_after + r.outstanding_interest_after
                                                          + r.outstanding_fees_after + r.outstanding_penalties_after)))
    for f in overpayment_refund_list(loan=loan):
        out.append(LoanTransaction(date=f.refund_date, kind="refund", amount=f.amount, reference=f.reference,
                                   detail=f.channel, reversed=f.reversed_at is not None, id=f.pk, at=f.refunded_at))
    for t in overpayment_transfer_list(loan=loan):
        out.append(LoanTransaction(date=t.repayment.payment_date, kind="transfer_out", amount=t.amount,
                                   reference=t.repayment.receipt_number, detail=t.to_loan.reference,
                                   reversed=t.repayment.reversed_at is not None, id=t.pk, at=t.transferred_at))
    for c in loan_charge_list(loan=loan):
        out.append(LoanTransaction(date=c.charged_on, kind="charge", amount=c.amount, reference=c.name,
                                   detail=c.kind, installment=c.installment.number, id=c.pk, at=c.added_at))
    for w in charge_waiver_list(loan=loan):
        out.append(LoanTransaction(date=w.waived_on, kind="waiver", amount=w.amount, reference=w.reason,
                                   detail=w.component, installment=w.installment.number, id=w.pk,
                                   at=w.waived_at, reversed=w.undone_at is not None))
    for c in recovery_list(loan=loan):
        out.append(LoanTransaction(date=c.payment_date, kind="recovery", amount=c.amount, reference=c.receipt_number,
                                   reversed=c.reversed_at is not None, id=c.pk, at=c.posted_at))
    never = dt.datetime.min.replace(tzinfo=dt.UTC)
    return sorted(out, key=lambda t: (t.date, _TX_ORDER.get(t.kind, 1), t.at or never))


def mobile_money_payments(*, loan: Loan) -> QuerySet:
    """The loan's mobile-money payments, newest first, with their repayment's receipt."""
    from node.repayments.models import MobileMoneyPayment

    return MobileMoneyPayment.objects.filter(loan=loan).select_related("repayment").order_by("-requested_at", "-id")


def access_mobile_money_payment(actor, payment_id):
    """A mobile-money payment of a loan ``actor`` may see, or — paybill money no loan took — of the MFI whose staff
    ``actor`` is (``NotFound`` otherwise, as for a missing id)."""
    from django.db.models import Q

    from node.core.errors import NotFound
    from node.loans.selectors import loan_list_for
    from node.repayments.models import MobileMoneyPayment
    from node.users.permissions import STAFF_ROLES

    try:
        pk = int(payment_id)
    except (TypeError, ValueError):
        raise NotFound("No such payment.") from None
    visible = Q(loan__in=loan_list_for(actor=actor, related=False))
    if actor.mfi_id is not None and actor.role in STAFF_ROLES:
        visible |= Q(loan__isnull=True, mfi_id=actor.mfi_id)
    p = MobileMoneyPayment.objects.select_related("loan", "mfi").filter(visible, pk=pk).first()
    if p is None:
        raise NotFound("No such payment.")
    return p


def mobile_money_unapplied(*, mfi_id: int) -> QuerySet:
    """Mobile money the MFI received that no loan took (``unapplied``), oldest first: its admins' worklist (apply
    to a loan or pay back)."""
    from node.repayments.models import MobileMoneyPayment, MobileMoneyStatus

    return (MobileMoneyPayment.objects.filter(mfi_id=mfi_id, status=MobileMoneyStatus.UNAPPLIED)
            .select_related("loan").order_by("completed_at", "id"))


def normalise_account(value: str) -> str:
    """A loan reference as a payer or a clerk types it (an account reference): spaces gone, upper case."""
    return "".join(value.split()).upper()


def mfi_loan_by_reference(*, mfi_id: int, reference: str) -> Loan | None:
    """The MFI's loan with ``reference`` (spaces and case ignored), or None."""
    return Loan.objects.select_related("mfi").filter(mfi_id=mfi_id, reference=normalise_account(reference)).first()
