"""Posting and reversing repayments (cash-based accounting), and the per-product allocation strategy.

Locks, always in this order: the loan row(s) (``SELECT ... FOR UPDATE OF`` the loans only, in id order for a batch),
then their unpaid installments, then (posting only) the MFI's receipt counter, then (last) the node's audit-chain
lock. The loan's state is checked inside the lock, so concurrent repayments on one loan run one after the other,
each allocating against what the previous one left. Every service is one transaction: bad input raises before
anything is written, and any later failure rolls all of it back (installments, repayment, journal entry, outbox
events, notification, audit).

One posting path. ``repayment_post`` (one repayment, the API) and ``repayment_post_many`` (a batch of one MFI, the
payroll import) both allocate with :func:`_allocate_onto` (the pure :func:`node.repayments.allocation.allocate` over
the installments, in memory) and write with :func:`_record`, in a fixed number of statements whatever the batch
size: one UPDATE of the installments, receipt numbers and repayment ids in one statement, the journal entries
through ``journal_post_many``, one INSERT each for repayments, allocations, outbox events and notifications, and one
append of all the audit events. ``repayment_post`` runs 15 statements (35 before; docs/repayments.md).

Journal (one entry per repayment, ``source_key = "repayment:<id>"``): Dr Cash (1000) the amount; Cr Loan portfolio
(1100) principal, Cr Interest income (4000), Cr Fee income (4100), Cr Penalty income (4200), Cr Overpayment
liability (2100) whatever exceeds everything due on the schedule. Zero lines are left out. A reversal is
``journal_reverse`` of that entry (``source_key = "repayment:<id>:reversal"``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.db import IntegrityError, ProgrammingError, connection, transaction
from django.db.models import F, OuterRef, Q, Subquery
from django.utils import timezone

from node.audit.services import AuditSpec, audit_record, audit_record_many
from node.cob.services import closed_events, closing_fields
from node.core.bulk import insert_columns
from node.core.errors import ApplicationError, Forbidden, NotFound, ValidationFailed
from node.credit.stacking import stacking_hold_later
from node.ledger import chart
from node.ledger.services import (
    PostingEntry,
    PostingLine,
    journal_post,
    journal_post_many,
    journal_reverse,
)
from node.loans.credit_events import (
    credit_event_payload,
    emit_credit_event,
    loan_exposure,
)
from node.loans.errors import IllegalTransition
from node.loans.models import Loan, LoanInstallment, LoanProduct, LoanStatus
from node.mfis.models import Mfi
from node.notifications.services import notify_charge_added, notify_repayment_reversed, notify_repayments_received
from node.repayments import allocation as A
from node.repayments.errors import (
    AlreadyReversed,
    NothingToWaive,
    OverpaymentHeld,
    OverpaymentRefunded,
    PayoffAmountMismatch,
    RecoveryExceedsWrittenOff,
    RefundExceedsOverpayment,
    ReprocessNotPossible,
    ReverseLaterFirst,
    TransferExceedsOverpayment,
    WaiverExceedsUnpaid,
)
from node.repayments.models import (
    RECEIVED_CHANNELS,
    AllocationStrategy,
    ChargeWaiver,
    LoanCharge,
    OverpaymentRefund,
    OverpaymentTransfer,
    PayoffWaiver,
    ProductRepaymentConfig,
    Recovery,
    Repayment,
    RepaymentAllocation,
    RepaymentChannel,
)
from node.repayments.selectors import loan_balance, overpayment_held, payoff_floor
from node.repayments.signals import repayment_replayed
from node.users.models import Role, User
from replication.outbox import outbox_enqueue_many

OFFICERS = frozenset({Role.LOAN_OFFICER, Role.MFI_ADMIN})
ZERO = Decimal("0.00")
CENT = Decimal("0.01")
MAX_AMOUNT = Decimal(10) ** 15
REASON_MIN, REASON_MAX = 5, 200
COMPONENTS = A.COMPONENTS  # principal, interest, fees, penalties


# --- helpers -----------------------------------------------------------------------------------------------------

def _lock_loan(loan_id: int, action: str, allowed: tuple[str, ...]) -> Loan:
    """Lock the loan row only (``OF self``: not its MFI, product or borrower rows) and check its state."""
    loan = (Loan.objects.select_for_update(of=("self",)).select_related("mfi", "product", "borrower")
            .get(pk=loan_id))
    if loan.status not in allowed:
        raise IllegalTransition(
            f"A loan in state '{loan.status}' does not allow '{action}'.",
            details={"current_state": loan.status, "action": action, "allowed_from": list(allowed)},
        )
    return loan


def _locked_installments(loan: Loan) -> list[LoanInstallment]:
    return list(LoanInstallment.objects.select_for_update().filter(loan_id=loan.pk).order_by("number"))


def _unpaid(inst: LoanInstallment, component: str) -> Decimal:
    return max(getattr(inst, component) - getattr(inst, f"{component}_paid"), ZERO)


def _outstanding(installments: list[LoanInstallment]) -> dict[str, Decimal]:
    return {c: sum((_unpaid(i, c) for i in installments), ZERO) for c in COMPONENTS}


class _Inst:
    """An installment's amounts as the posting paths read them (``values_list``, not a model: a batch reads
    thousands); :func:`_unpaid` and :func:`_allocate_onto` take this or a ``LoanInstallment`` alike."""

    __slots__ = ("pk", "loan_id", "number", "due_date", *COMPONENTS, *(f"{c}_paid" for c in COMPONENTS))

    def __init__(self, values: Sequence) -> None:
        for name, value in zip(self.__slots__, values, strict=True):
            setattr(self, name, value)


def _lock_unpaid_installments(loan_ids: Iterable[int]) -> dict[int, list[_Inst]]:
    """The loans' installments that still have something unpaid, oldest first, locked (``FOR UPDATE``), in one
    query. Installments fully paid are left out: every component of theirs is 0 unpaid, so they take nothing in an
    allocation and add nothing to what is outstanding; the result is the same as over the whole schedule."""
    unpaid = Q()
    for c in COMPONENTS:
        unpaid |= Q(**{f"{c}__gt": F(f"{c}_paid")})
    by_loan: dict[int, list[_Inst]] = {}
    for values in (LoanInstallment.objects.select_for_update().filter(unpaid, loan_id__in=list(loan_ids))
                   .order_by("loan_id", "number").values_list(*_Inst.__slots__)):
        inst = _Inst(values)
        by_loan.setdefault(inst.loan_id, []).append(inst)
    return by_loan


def _allocate_onto(installments: list, amount: Decimal, strategy: str) -> tuple[A.Allocation, dict[str, Decimal]]:
    """THE allocation of a repayment (single or batch): spread ``amount`` over ``installments`` (oldest first) with
    ``strategy``, add it to their ``*_paid`` in memory, and answer the plan and what remains outstanding."""
    dues = [A.Due(key=i.pk, **{c: _unpaid(i, c) for c in COMPONENTS}) for i in installments]
    plan = A.allocate(amount, dues, strategy)
    by_pk = {i.pk: i for i in installments}
    for portion in plan.portions:
        inst = by_pk[portion.key]
        for c in COMPONENTS:
            setattr(inst, f"{c}_paid", getattr(inst, f"{c}_paid") + portion.get(c))
    return plan, _outstanding(installments)


def _save_paid(installments: list) -> None:
    """Write the ``*_paid`` columns of ``installments`` in one ``UPDATE ... FROM unnest(...)``."""
    if not installments:
        return
    table = LoanInstallment._meta.db_table
    sets = ", ".join(f"{c}_paid = v.{c}" for c in COMPONENTS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS i SET {sets} FROM unnest(%s::bigint[], "  # nosec B608 -- names from code constants
            + ", ".join("%s::numeric[]" for _ in COMPONENTS)
            + f") AS v(id, {', '.join(COMPONENTS)}) WHERE i.id = v.id",  # nosec B608 -- values are %s parameters
            [[i.pk for i in installments]] + [[getattr(i, f"{c}_paid") for i in installments] for c in COMPONENTS],
        )


def _strategy_subquery() -> Subquery:
    return Subquery(ProductRepaymentConfig.objects.filter(product_id=OuterRef("product_id"))
                    .values("allocation_strategy")[:1])


def allocation_strategy_for(product: LoanProduct | int) -> str:
    product_id = product.pk if isinstance(product, LoanProduct) else product
    chosen = (ProductRepaymentConfig.objects.filter(product_id=product_id)
              .values_list("allocation_strategy", flat=True).first())
    return chosen or A.DEFAULT_STRATEGY


def receipt_sequence(mfi_id: int) -> str:
    """The PostgreSQL sequence that numbers one MFI's receipts."""
    return f"repayments_receipt_mfi_{int(mfi_id)}"


def _receipts_and_ids(mfi: Mfi, n: int, *, ids: bool = True) -> tuple[list[str], list[int]]:
    """``n`` receipt numbers ``<MFI code>-R-<8 digits>`` and ``n`` repayment ids, in ONE statement. The numbers come
    from the MFI's own sequence (:func:`receipt_sequence`), so taking one holds no lock: postings of one MFI do not
    queue behind each other's transactions (a row counter bumped by ``UPDATE`` stayed locked until commit, which
    made every posting of an MFI wait for the one before it to commit). Numbers are unique and increasing; a
    rolled-back posting leaves a gap, as it did before. The ids are drawn from the repayments' own sequence, so a
    repayment's id (its journal entry's source key) is known before it is inserted. An MFI's first posting creates
    its sequence."""
    seq = receipt_sequence(mfi.pk)
    for _ in range(3):
        with connection.cursor() as cursor:
            # nextval is strict: a sequence that does not exist yet (to_regclass NULL) answers NULLs, not an error
            cursor.execute(
                "SELECT ARRAY(SELECT nextval(to_regclass(%s)) FROM generate_series(1, %s)), "
                "ARRAY(SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s))",
                [seq, n, Repayment._meta.db_table, n if ids else 0],
            )
            numbers, ids = cursor.fetchone()
        if None not in numbers:
            code = mfi.code.upper()
            return [f"{code}-R-{number:08d}" for number in sorted(numbers)], sorted(ids)
        _create_receipt_sequence(seq)
    raise RuntimeError(f"receipt sequence {seq} could not be created")


def _create_receipt_sequence(seq: str) -> None:
    """Create an MFI's receipt sequence in the caller's transaction (rolled back with it). Two first postings of
    one MFI at the same instant: the second waits for the first's commit, then finds the sequence taken
    (a unique violation inside its savepoint) and uses it."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f'CREATE SEQUENCE IF NOT EXISTS "{seq}" AS bigint MINVALUE 1')
    except (IntegrityError, ProgrammingError):
        pass


def _reopen(loan: Loan) -> None:
    """A closed loan is active again (a reversal took back the repayment that closed it); the replays after it
    close it again if they pay it off (``_record``)."""
    loan.status, loan.closed_at = LoanStatus.ACTIVE, None
    loan.save(update_fields=["status", "closed_at", "updated_at"])


def _check_staff(actor: User, mfi_id: int, roles: frozenset[str], what: str) -> None:
    if getattr(actor, "role", None) not in roles or actor.mfi_id != mfi_id:
        raise Forbidden(f"Only {what} of the loan's MFI may do this.")


def _amount_errors(amount) -> list[str]:
    """What is wrong with a money amount given to a service (nothing: [])."""
    if isinstance(amount, bool) or not isinstance(amount, Decimal) or not amount.is_finite():
        return ["a decimal amount (a string such as \"150.00\")"]
    if amount <= 0:
        return ["must be greater than 0"]
    if amount != amount.quantize(CENT):
        return ["at most 2 decimal places"]
    if amount >= MAX_AMOUNT:
        return ["too large"]
    return []


def _validate_post(amount, payment_date, channel, reference, channels=RECEIVED_CHANNELS) -> Decimal:
    errors: dict[str, list[str]] = {}
    if problems := _amount_errors(amount):
        errors["amount"] = problems
    if isinstance(payment_date, dt.datetime) or not isinstance(payment_date, dt.date):
        errors["payment_date"] = ["a date"]
    elif payment_date > timezone.localdate():
        errors["payment_date"] = ["must not be in the future"]
    if channel not in channels:
        errors["channel"] = [f"one of {', '.join(channels)}"]
    if not isinstance(reference, str) or len(reference) > 100:
        errors["reference"] = ["at most 100 characters"]
    if errors:
        raise ValidationFailed("The repayment has invalid fields.", details={"fields": errors})
    return amount.quantize(CENT)


def _journal_lines(rep: Repayment) -> list[PostingLine]:
    memo = f"repayment {rep.receipt_number} by {rep.channel}" + (f" ({rep.reference})" if rep.reference else "")
    # a transfer is paid out of the overpayment the MFI holds for the borrower, not with cash received
    funded_by = chart.OVERPAYMENT_LIABILITY if rep.channel == RepaymentChannel.TRANSFER else chart.CASH
    lines = [PostingLine(funded_by, debit=rep.amount, memo=memo[:255])]
    for code, value, what in ((chart.LOAN_PORTFOLIO, rep.principal, "principal repaid"),
                              (chart.INTEREST_INCOME, rep.interest, "interest received"),
                              (chart.FEE_INCOME, rep.fees, "fees received"),
                              (chart.PENALTY_INCOME, rep.penalties, "penalties received"),
                              (chart.OVERPAYMENT_LIABILITY, rep.overpayment, "overpayment held for the borrower")):
        if value > 0:
            lines.append(PostingLine(code, credit=value, memo=what))
    return lines


def _money_json(parts: dict[str, Decimal]) -> dict[str, str]:
    return {k: str(v) for k, v in parts.items()}


# --- posting -----------------------------------------------------------------------------------------------------

def _check_repayable(loan: Loan, payment_date: dt.date, status: str | None = None) -> None:
    """The state (inside the loan's lock; ``status`` if the caller knows better, e.g. closed earlier in its batch)
    and date rules of a repayment: ``illegal_transition`` (409) or ``validation_error`` (400)."""
    status = status or loan.status
    if status != LoanStatus.ACTIVE:
        raise IllegalTransition(
            f"A loan in state '{status}' does not allow 'repay'.",
            details={"current_state": status, "action": "repay", "allowed_from": [LoanStatus.ACTIVE]},
        )
    if loan.disbursement_date is None or payment_date < loan.disbursement_date:
        raise ValidationFailed("A repayment cannot be dated before the disbursement.",
                               details={"fields": {"payment_date": [
                                   f"on or after the disbursement date {loan.disbursement_date}"]}})


@dataclass
class _Planned:
    """One repayment allocated in memory, not written yet."""

    loan: Loan
    amount: Decimal
    reference: str
    strategy: str
    plan: A.Allocation
    after: dict[str, Decimal]
    installments: dict[int, object]  # installment id -> installment (its number for the audit, due date for the receipt)

    @property
    def closes(self) -> bool:
        return sum(self.after.values(), ZERO) == 0


@dataclass(frozen=True)
class PostedAllocation:
    """What a just-posted repayment paid on one installment (``Repayment.posted_allocations``, set by the posting
    paths, so that the receipt needs no read-back)."""

    number: int
    due_date: dt.date
    penalties: Decimal
    fees: Decimal
    interest: Decimal
    principal: Decimal


def _plan(loan: Loan, installments: list, amount: Decimal, reference: str) -> _Planned:
    strategy = getattr(loan, "repayment_strategy", None) or A.DEFAULT_STRATEGY
    plan, after = _allocate_onto(installments, amount, strategy)
    return _Planned(loan=loan, amount=amount, reference=reference, strategy=strategy, plan=plan, after=after,
                    installments={i.pk: i for i in installments})


def _record(*, actor: User, mfi: Mfi, planned: list[_Planned], payment_date: dt.date, channel: str,
            replay_of: Repayment | None = None, notify: bool = True) -> list[Repayment]:
    """Write ``planned`` repayments of one MFI (their installments' ``*_paid`` are written by the caller): receipt
    numbers and ids (one statement), journal entries (:func:`journal_post_many`), repayments, allocations, closed
    loans, credit and hold events (one outbox INSERT), notifications (one INSERT, delivered after commit) and audit
    events (journal's and ours, one chain append) — a fixed number of statements whatever ``len(planned)``.
    ``replay_of``: the one planned repayment posts that earlier one again (:func:`repayment_reverse`). ``notify``
    False: no "repayment received" message (a replay or a transfer: no money was received)."""
    receipts, ids = _receipts_and_ids(mfi, len(planned))
    now = timezone.now()
    reps = []
    for p, number, pk in zip(planned, receipts, ids, strict=True):
        reps.append(Repayment(
            pk=pk, mfi=mfi, loan=p.loan, receipt_number=number, amount=p.amount, payment_date=payment_date,
            channel=channel, reference=p.reference, allocation_strategy=p.strategy,
            **{c: p.plan.component(c) for c in COMPONENTS}, overpayment=p.plan.overpayment,
            **{f"outstanding_{c}_after": p.after[c] for c in COMPONENTS}, closed_loan=p.closes,
            posted_by=actor, posted_at=now, replay_of=replay_of,
        ))
    audit: list[AuditSpec] = []  # the journal's events first, then ours; one append at the end
    entries = journal_post_many(mfi=mfi, actor=actor, audit_into=audit, entries=[
        PostingEntry(entry_date=payment_date, lines=_journal_lines(rep),
                     description=f"Repayment {rep.receipt_number} on loan {rep.loan.reference}",
                     reference_type="repayment", reference_id=str(rep.pk), source_key=f"repayment:{rep.pk}")
        for rep in reps])
    for rep, entry in zip(reps, entries, strict=True):
        rep.journal_entry = entry
    insert_columns(Repayment, {f.attname: [getattr(rep, f.attname) for rep in reps]
                               for f in Repayment._meta.concrete_fields})
    portions = [(rep.pk, q) for rep, p in zip(reps, planned, strict=True) for q in p.plan.portions]
    insert_columns(RepaymentAllocation, {"repayment": [r for r, _ in portions],
                                         "installment": [q.key for _, q in portions],
                                         **{c: [q.get(c) for _, q in portions] for c in COMPONENTS}})
    for rep, p in zip(reps, planned, strict=True):  # what was written, for the receipt (no read-back)
        rep.posted_allocations = [
            PostedAllocation(number=p.installments[q.key].number, due_date=p.installments[q.key].due_date,
                             **{c: q.get(c) for c in COMPONENTS})
            for q in sorted(p.plan.portions, key=lambda q: p.installments[q.key].number)]

    events: list[tuple[str, str, dict]] = []
    for rep, p in zip(reps, planned, strict=True):
        loan, key = p.loan, p.loan.borrower.borrower_key
        if p.closes:  # it owes nothing: closed (one UPDATE for the batch, below)
            for field, value in closing_fields(now).items():
                setattr(loan, field, value)
            events.extend(closed_events(loan))
            audit.append(AuditSpec(action="loan.close", target_type="loan", target_id=loan.pk, mfi_id=mfi.pk,
                                   before={"status": LoanStatus.ACTIVE},
                                   after={"status": loan.status, "repayment": rep.pk,
                                          "receipt_number": rep.receipt_number}))
        else:
            events.append(("loan.repaid", key, credit_event_payload(loan, outstanding_principal=p.after["principal"])))
        audit.append(AuditSpec(
            action="repayment.post", target_type="repayment", target_id=rep.pk, mfi_id=mfi.pk,
            after={
                "loan": loan.pk, "receipt_number": rep.receipt_number, "amount": str(rep.amount),
                "payment_date": payment_date.isoformat(), "channel": channel, "reference": rep.reference,
                "allocation_strategy": p.strategy,
                "allocated": _money_json({c: p.plan.component(c) for c in COMPONENTS}),
                "overpayment": str(p.plan.overpayment), "outstanding_after": _money_json(p.after),
                "closed_loan": p.closes, "journal_entry": rep.journal_entry_id,
                "installments": [{"installment": p.installments[q.key].number, **_money_json({c: q.get(c) for c in COMPONENTS})}
                                 for q in p.plan.portions],
                **({"replay_of": replay_of.pk, "replay_of_receipt_number": replay_of.receipt_number}
                   if replay_of is not None else {}),
            },
        ))
    closing = [p.loan.pk for p in planned if p.closes]
    if closing:
        Loan.objects.filter(pk__in=closing).update(**closing_fields(now))
    outbox_enqueue_many(events)
    if notify:
        notify_repayments_received(reps)  # SMS/e-mail to the borrowers, sent after commit
    audit_record_many(actor=actor, events=audit)
    return reps


@transaction.atomic
def repayment_post(*, actor: User, loan: Loan, amount: Decimal, payment_date: dt.date, channel: str,
                   reference: str = "") -> Repayment:
    """Receive ``amount`` on an active loan: allocate it over the schedule (the product's strategy, oldest
    installment first), post the journal entry, close the loan when nothing remains due, audit, and tell the
    network. Raises ``validation_error`` (400), ``illegal_transition`` (409) or ``permission_denied`` (403)
    before writing anything. The same path as :func:`repayment_post_many` for one repayment."""
    amount = _validate_post(amount, payment_date, channel, reference)
    _check_staff(actor, loan.mfi_id, OFFICERS, "loan officers and MFI admins")
    loan = (Loan.objects.select_for_update(of=("self",)).select_related("mfi", "product", "borrower")
            .annotate(repayment_strategy=_strategy_subquery()).get(pk=loan.pk))
    _check_repayable(loan, payment_date)
    installments = _lock_unpaid_installments([loan.pk]).get(loan.pk, [])
    planned = _plan(loan, installments, amount, reference)
    _save_paid([i for i in installments if i.pk in {q.key for q in planned.plan.portions}])
    (rep,) = _record(actor=actor, mfi=loan.mfi, planned=[planned], payment_date=payment_date, channel=channel)
    return rep


@dataclass(frozen=True)
class RepaymentRequest:
    """One repayment of a batch (:func:`repayment_post_many`)."""

    loan_id: int
    amount: Decimal
    reference: str = ""


@transaction.atomic
def repayment_post_many(*, actor: User, mfi: Mfi, requests: Sequence[RepaymentRequest], payment_date: dt.date,
                        channel: str, notify: bool = True) -> list[Repayment | ApplicationError]:
    """Post many repayments of one MFI, dated ``payment_date`` through ``channel``, in one transaction and a fixed
    number of statements (the payroll import's path; ``repayment_post`` is the same path for one).

    Answers, per request and in order, its :class:`Repayment` or the ``ApplicationError`` that refused it (exactly
    what ``repayment_post`` would raise: ``validation_error``, ``illegal_transition``; ``not_found`` for a loan that
    is not the MFI's); a refused request writes nothing and does not stop the others. ``permission_denied`` is
    raised for the whole batch. The loans are locked in one ``SELECT ... FOR UPDATE OF`` the loan rows, in id order
    (the order every loan-locking path keeps), then their unpaid installments in one query; each request is
    allocated in memory by :func:`_allocate_onto` in the order given (two requests on one loan: the second sees what
    the first left), then everything is written in bulk (:func:`_record`, one ``UPDATE`` of the installments).
    ``notify`` False: no "repayment received" messages (an MFI that does not send them for payroll deductions)."""
    _check_staff(actor, mfi.pk, OFFICERS, "loan officers and MFI admins")
    results: list[Repayment | ApplicationError | None] = [None] * len(requests)
    amounts: dict[int, Decimal] = {}
    for k, req in enumerate(requests):
        try:
            amounts[k] = _validate_post(req.amount, payment_date, channel, req.reference)
        except ApplicationError as exc:
            results[k] = exc
    loan_ids = sorted({requests[k].loan_id for k in amounts})
    loans = {loan.pk: loan for loan in Loan.objects.select_for_update(of=("self",))
             .select_related("product", "borrower").annotate(repayment_strategy=_strategy_subquery())
             .filter(pk__in=loan_ids, mfi_id=mfi.pk).order_by("pk")}
    for loan in loans.values():
        loan.mfi = mfi
    installments = _lock_unpaid_installments(list(loans)) if loans else {}

    planned: list[_Planned] = []
    planned_at: list[int] = []
    closed: set[int] = set()  # loans a request of this batch pays off: a later one on them is refused, as it would be
    for k, amount in amounts.items():
        req = requests[k]
        loan = loans.get(req.loan_id)
        try:
            if loan is None:
                raise NotFound("No such loan.")
            _check_repayable(loan, payment_date, LoanStatus.CLOSED if loan.pk in closed else None)
        except ApplicationError as exc:
            results[k] = exc
            continue
        p = _plan(loan, installments.get(loan.pk, []), amount, req.reference)
        if p.closes:
            closed.add(loan.pk)
        planned.append(p)
        planned_at.append(k)
    if planned:
        touched = {q.key for p in planned for q in p.plan.portions}
        _save_paid([i for rows in installments.values() for i in rows if i.pk in touched])
        reps = _record(actor=actor, mfi=mfi, planned=planned, payment_date=payment_date, channel=channel,
                       notify=notify)
        for k, rep in zip(planned_at, reps, strict=True):
            results[k] = rep
    return results  # type: ignore[return-value]


# --- reversal ----------------------------------------------------------------------------------------------------

@transaction.atomic
def repayment_reverse(*, actor: User, repayment: Repayment, reason: str, reprocess_later: bool = False) -> Repayment:
    """Undo a repayment: reverse its journal entry and take its stored allocation back off the installments.

    While later repayments of the same loan are in effect this answers ``reverse_later_first`` (409, naming them)
    unless ``reprocess_later``: then, as Fineract reprocesses, the later repayments are taken back too and posted
    again in their order — same amount, date, channel and reference, allocated anew over the schedule without this
    one (new receipts with ``replay_of``; the originals reversed, their journal entries reversed, "replayed as …" as
    the reason) — all in this one transaction. A later payoff cannot be replayed (``reprocess_not_possible``); an
    overpayment already refunded that the replay no longer covers refuses it all (``overpayment_refunded``). A loan
    the repayments had closed becomes active again when what is left no longer pays it off (its network hold is
    restored)."""
    _check_staff(actor, repayment.mfi_id, frozenset({Role.MFI_ADMIN}), "MFI admins")
    reason = _reversal_reason(reason)
    loan = _lock_loan(repayment.loan_id, "reverse_repayment", (LoanStatus.ACTIVE, LoanStatus.CLOSED))
    rep = Repayment.objects.select_for_update(of=("self",)).select_related("journal_entry").get(pk=repayment.pk)
    if rep.reversed_at is not None:
        raise AlreadyReversed(f"Repayment {rep.receipt_number} has already been reversed.",
                              details={"repayment": rep.pk, "reversed_at": rep.reversed_at.isoformat()})
    later = _later_in_effect(loan, pk__gt=rep.pk)
    if later and not reprocess_later:
        raise ReverseLaterFirst(
            "Later repayments of the loan are in effect: reverse them first (newest first), or reverse this one "
            "with reprocess_later to post them again after it.",
            details={"repayment": rep.pk, "latest_repayment": later[-1].pk,
                     "latest_receipt_number": later[-1].receipt_number,
                     "later_repayments": [{"id": r.pk, "receipt_number": r.receipt_number} for r in later]})
    _check_replayable(later, repayment=rep.pk)
    if not later and rep.overpayment > 0 and overpayment_held(loan) - rep.overpayment < 0:
        raise OverpaymentRefunded(
            "Part of this repayment's overpayment has been refunded to the borrower or moved to another loan; it "
            "cannot be reversed.",
            details={"repayment": rep.pk, "overpayment": str(rep.overpayment),
                     "held": str(overpayment_held(loan))})

    installments = _locked_installments(loan)
    before = _outstanding(installments)
    was_closed = loan.status == LoanStatus.CLOSED
    replays = _replay_later(loan, installments, later, actor=actor,
                            beneath=lambda by_pk: _take_back(rep, by_pk))
    after = _outstanding(installments)

    _mark_reversed(rep, actor, reason)
    _retire_replayed(loan, later, replays, actor, f"after the reversal of {rep.receipt_number}",
                     "nothing was reversed.", repayment=rep.pk)

    reopened = was_closed and loan.status == LoanStatus.ACTIVE
    if reopened:
        audit_record(actor=actor, action="loan.reopen", target_type="loan", target_id=loan.pk, mfi=loan.mfi,
                     before={"status": LoanStatus.CLOSED}, after={"status": loan.status, "reversed_repayment": rep.pk})
    if reopened or not replays:  # otherwise the last replay told the network where the loan stands
        emit_credit_event(loan, "loan.reopened" if reopened else "loan.repaid",
                          outstanding_principal=after["principal"])
    if reopened:
        stacking_hold_later(to=loan_exposure(loan))
    replayed = [{"repayment": old.pk, "receipt_number": old.receipt_number, "replayed_as": new.pk,
                 "new_receipt_number": new.receipt_number} for old, new in zip(later, replays, strict=True)]
    audit_record_many(actor=actor, events=[
        AuditSpec(action="repayment.reverse", target_type="repayment", target_id=r.pk, mfi_id=loan.mfi_id,
                  before={"reversed": False, **({"outstanding": _money_json(before)} if r is rep else {})},
                  after={"reversed": True, "reason": r.reversal_reason, "receipt_number": r.receipt_number,
                         "amount": str(r.amount), "reversal_entry": r.reversal_entry_id,
                         **({"outstanding": _money_json(after), "loan_reopened": reopened, "replayed": replayed}
                            if r is rep else {"replayed_as": replayed[i - 1]["replayed_as"]})})
        for i, r in enumerate([rep, *later])])
    notify_repayment_reversed(rep, loan=loan, outstanding=sum(after.values(), ZERO))  # after commit
    rep.replays = replays
    return rep


def _later_in_effect(loan: Loan, **after) -> list[Repayment]:
    """The loan's repayments in effect after a point (``pk__gt=`` a repayment, ``posted_at__gt=`` a moment), oldest
    first, locked."""
    return list(Repayment.objects.select_for_update(of=("self",)).select_related("journal_entry")
                .filter(loan_id=loan.pk, reversed_at__isnull=True, **after).order_by("pk"))


def _check_replayable(later: list[Repayment], **details) -> None:
    """``reprocess_not_possible`` when one of ``later`` is a payoff: its amount was the payoff quote of its day
    (unearned interest waived) and cannot be allocated again."""
    payoffs = set(PayoffWaiver.objects.filter(repayment__in=later).values_list("repayment_id", flat=True))
    if payoffs:
        first = next(r for r in later if r.pk in payoffs)
        raise ReprocessNotPossible(
            f"Repayment {first.receipt_number} paid the loan off at the payoff amount of its day and cannot be "
            "replayed: reverse it first.", details={**details, "payoff_repayment": first.pk,
                                                    "payoff_receipt_number": first.receipt_number})


def _replay_later(loan: Loan, installments: list[LoanInstallment], later: list[Repayment], *, actor: User,
                  beneath: Callable[[dict[int, LoanInstallment]], None]) -> list[Repayment]:
    """Fineract's reprocessing: take the ``later`` repayments (oldest first) back off the schedule, newest first,
    apply ``beneath`` — the change under them (a repayment taken back, a waiver undone) — and post them again in
    their order over the schedule as it now is: same amount, date, channel and reference, new receipts with
    ``replay_of``, no message to the borrower. A closed loan is re-opened first; the last replay closes it again if
    it pays it off. Writes the changed installments and the replays; the caller marks the originals reversed."""
    fields = [f"{c}_paid" for c in COMPONENTS] + ["interest", "fees", "penalties"]
    as_stored = {i.pk: [getattr(i, f) for f in fields] for i in installments}
    by_pk = {i.pk: i for i in installments}
    for taken in reversed(later):  # newest first: each returns the schedule to what it was before it
        _take_back(taken, by_pk)
    beneath(by_pk)
    if loan.status == LoanStatus.CLOSED:  # what is left is allocated on an open loan
        _reopen(loan)
    planned = [_plan_replay(loan, installments, old) for old in later]
    for inst in installments:
        if [getattr(inst, f) for f in fields] != as_stored[inst.pk]:
            inst.save(update_fields=fields)
    replays = [_record(actor=actor, mfi=loan.mfi, planned=[p], payment_date=old.payment_date, channel=old.channel,
                       replay_of=old, notify=False)[0]
               for p, old in zip(planned, later, strict=True)]
    for old, new in zip(later, replays, strict=True):  # a replayed transfer is still the same transfer
        OverpaymentTransfer.objects.filter(repayment=old).update(repayment=new)
        repayment_replayed.send(sender=Repayment, old=old, new=new)
    return replays


def _retire_replayed(loan: Loan, later: list[Repayment], replays: list[Repayment], actor: User, why: str,
                     refused: str, **details) -> None:
    """Mark the replayed originals reversed ("Replayed as <receipt> <why>"); ``overpayment_refunded`` — rolling the
    whole change back — when the replays no longer hold what was already refunded or moved from the overpayment."""
    for old, new in zip(later, replays, strict=True):
        _mark_reversed(old, actor, f"Replayed as {new.receipt_number} {why}")
    if later and overpayment_held(loan) < 0:
        raise OverpaymentRefunded(
            "The replayed repayments no longer hold the overpayment already refunded to the borrower; " + refused,
            details={**details, "held_after": str(overpayment_held(loan))})


def _take_back(rep: Repayment, by_pk: dict[int, LoanInstallment]) -> None:
    """Take ``rep``'s stored allocation back off the installments (in memory) and owe again what it waived."""
    for alloc in rep.allocations.all():
        inst = by_pk[alloc.installment_id]
        for c in COMPONENTS:
            restored = getattr(inst, f"{c}_paid") - getattr(alloc, c)
            if restored < 0:  # cannot happen while reversals go newest first; refuse rather than corrupt
                raise RuntimeError(f"installment {inst.pk}: reversing repayment {rep.pk} would make {c}_paid negative")
            setattr(inst, f"{c}_paid", restored)
    for waiver in rep.waivers.all():  # a payoff: what it waived is owed again
        inst = by_pk[waiver.installment_id]
        for c in ("interest", "fees", "penalties"):
            setattr(inst, c, getattr(inst, c) + getattr(waiver, c))


def _plan_replay(loan: Loan, installments: list[LoanInstallment], old: Repayment) -> _Planned:
    """``old`` allocated again over the schedule as it now stands, with the strategy it was posted under."""
    plan, after = _allocate_onto(installments, old.amount, old.allocation_strategy)
    return _Planned(loan=loan, amount=old.amount, reference=old.reference, strategy=old.allocation_strategy,
                    plan=plan, after=after, installments={i.pk: i for i in installments})


def _reversal_reason(reason) -> str:
    reason = (reason or "").strip() if isinstance(reason, str) else ""
    if not REASON_MIN <= len(reason) <= REASON_MAX:
        raise ValidationFailed("Give the reason for the reversal (5 to 200 characters).",
                               details={"fields": {"reason": [f"{REASON_MIN} to {REASON_MAX} characters"]}})
    return reason


def _mark_reversed(row: Repayment | Recovery | OverpaymentRefund, actor: User, reason: str, *,
                   kind: str = "repayment") -> None:
    """Reverse ``row``'s journal entry (source key ``<kind>:<id>:reversal``) and mark it reversed."""
    row.reversal_entry = journal_reverse(entry=row.journal_entry, actor=actor, reason=reason,
                                         source_key=f"{kind}:{row.pk}:reversal")
    row.reversed_at, row.reversed_by, row.reversal_reason = timezone.now(), actor, reason
    row.save(update_fields=["reversal_entry", "reversed_at", "reversed_by", "reversal_reason"])


# --- payoff (foreclosure) ----------------------------------------------------------------------------------------

@transaction.atomic
def loan_payoff(*, actor: User, loan: Loan, amount: Decimal, payoff_date: dt.date, channel: str,
                reference: str = "") -> tuple[Repayment, list[PayoffWaiver]]:
    """Pay the loan off on ``payoff_date`` (Fineract's foreclosure): the borrower pays the payoff amount as of that
    date (``selectors.loan_balance``: principal outstanding, what has fallen due, and the current period's interest
    pro-rated to the day), the interest not yet earned and the fees and penalties not yet due are **waived** (taken
    off the installments, recorded per installment as :class:`PayoffWaiver`), and that amount is posted as an
    ordinary repayment, which then pays everything left and closes the loan (journal, credit events, notification,
    audit as for any repayment, plus a ``loan.payoff`` audit event with the waivers). Cash-based books: no interest
    was booked before it was received, so waiving it needs no journal entry. Reversing the repayment restores the
    waived amounts.

    ``amount`` must be the payoff amount as of ``payoff_date`` (``payoff_amount_mismatch``, 409, with the amount
    otherwise: a stale quote is refused rather than half-used). The date may not precede a repayment of the loan
    still in effect (``validation_error``); other refusals as ``repayment_post``."""
    try:
        amount = _validate_post(amount, payoff_date, channel, reference)
    except ValidationFailed as exc:  # same rules as a repayment's; the date is the payoff's
        fields = exc.details.get("fields", {})
        if "payment_date" in fields:
            fields["payoff_date"] = fields.pop("payment_date")
        raise
    _check_staff(actor, loan.mfi_id, OFFICERS, "loan officers and MFI admins")
    loan = (Loan.objects.select_for_update(of=("self",)).select_related("mfi", "product", "borrower")
            .annotate(repayment_strategy=_strategy_subquery()).get(pk=loan.pk))
    _check_repayable(loan, payoff_date)
    floor = payoff_floor(loan)
    if floor.last_repayment is not None and floor.last_repayment > payoff_date:
        raise ValidationFailed("A payoff cannot be dated before a repayment of the loan that is in effect.",
                               details={"fields": {"payoff_date": [f"on or after {floor.last_repayment}"]}})
    if floor.last_change is not None and floor.last_change > payoff_date:
        # the schedule as it stands is not what was owed then: no quote settles both
        raise ValidationFailed("A payoff cannot be dated before a waiver, an undone waiver or a charge added to the "
                               "loan since: record it on or after that day, or post it as a repayment.",
                               details={"fields": {"payoff_date": [f"on or after {floor.last_change}"]}})
    installments = _locked_installments(loan)
    quote = loan_balance(loan=loan, as_of=payoff_date).payoff
    if amount != quote.amount:
        raise PayoffAmountMismatch(
            f"The payoff amount on {payoff_date} is {quote.amount}, not {amount}.",
            details={"payoff_amount": str(quote.amount), "amount": str(amount), "payoff_date": payoff_date.isoformat()})

    current = quote.current_period.installment if quote.current_period is not None else None
    waivers: list[PayoffWaiver] = []
    for inst in installments:
        if inst.number < 1 or inst.due_date <= payoff_date:
            continue  # fallen due: owed in full
        keep_interest = inst.interest_paid + (quote.current_period_interest if inst.number == current else ZERO)
        waived = {"interest": max(inst.interest - max(keep_interest, inst.interest_paid), ZERO),
                  "fees": max(inst.fees - inst.fees_paid, ZERO),
                  "penalties": max(inst.penalties - inst.penalties_paid, ZERO)}
        if any(v > 0 for v in waived.values()):
            for c, v in waived.items():
                setattr(inst, c, getattr(inst, c) - v)
            inst.save(update_fields=["interest", "fees", "penalties"])
            waivers.append(PayoffWaiver(installment=inst, **waived))

    planned = _plan(loan, installments, amount, reference)
    if not planned.closes or planned.plan.overpayment != 0:  # the quote and the waivers must pay it off exactly
        raise RuntimeError(f"loan {loan.pk}: payoff {amount} on {payoff_date} does not settle the schedule exactly")
    touched = {q.key for q in planned.plan.portions}
    _save_paid([i for i in installments if i.pk in touched])
    (rep,) = _record(actor=actor, mfi=loan.mfi, planned=[planned], payment_date=payoff_date, channel=channel)
    for w in waivers:
        w.repayment = rep
    PayoffWaiver.objects.bulk_create(waivers)
    audit_record(actor=actor, action="loan.payoff", target_type="loan", target_id=loan.pk, mfi=loan.mfi,
                 after={"repayment": rep.pk, "receipt_number": rep.receipt_number, "payoff_date": payoff_date.isoformat(),
                        "amount": str(amount),
                        "waived": [{"installment": w.installment.number, **_money_json(
                            {c: getattr(w, c) for c in ("interest", "fees", "penalties")})} for w in waivers]})
    return rep, waivers


# --- adding a fee or penalty ---------------------------------------------------------------------------------------

@transaction.atomic
def loan_charge_add(*, actor: User, loan: Loan, kind: str, name: str, amount: Decimal,
                    due_date: dt.date | None = None) -> LoanCharge:
    """Add a fee or penalty to an active loan (loan officers and MFI admins): it falls on the first installment due
    on or after ``due_date`` (default today; the last installment if the schedule ends before) and is paid like any
    charge there, by the product's allocation order. No journal entry (cash-based: income when paid); audited
    (``loan.charge_add``); the borrower is told (``charge_added`` notification); forgiven with a waiver. Refused before writing anything: ``validation_error``,
    ``permission_denied``, ``illegal_transition`` (not active)."""
    _check_staff(actor, loan.mfi_id, frozenset({Role.LOAN_OFFICER, Role.MFI_ADMIN}), "loan officers and MFI admins")
    fields: dict[str, list[str]] = {}
    if kind not in LoanCharge.KINDS:
        fields["kind"] = [f"one of {', '.join(LoanCharge.KINDS)}"]
    name = name.strip() if isinstance(name, str) else ""
    if not 1 <= len(name) <= 100:
        fields["name"] = ["1 to 100 characters"]
    if problems := _amount_errors(amount):
        fields["amount"] = problems
    else:
        amount = amount.quantize(CENT)
    due_date = due_date or timezone.localdate()
    if isinstance(due_date, dt.datetime) or not isinstance(due_date, dt.date):
        fields["due_date"] = ["a date"]
    elif loan.disbursement_date and due_date < loan.disbursement_date:
        fields["due_date"] = [f"on or after the disbursement ({loan.disbursement_date.isoformat()})"]
    if fields:
        raise ValidationFailed("The charge is incomplete or invalid.", details={"fields": fields})
    loan = _lock_loan(loan.pk, "add_charge", (LoanStatus.ACTIVE,))
    installments = [i for i in _locked_installments(loan) if i.number >= 1]
    target = next((i for i in installments if i.due_date >= due_date), installments[-1])
    before = getattr(target, kind)
    setattr(target, kind, before + amount)
    target.save(update_fields=[kind])
    charge = LoanCharge.objects.create(mfi=loan.mfi, loan=loan, installment=target, kind=kind, name=name,
                                       amount=amount, due_date=due_date, charged_on=timezone.localdate(),
                                       added_by=actor, added_at=timezone.now())
    audit_record(actor=actor, action="loan.charge_add", target_type="loan", target_id=loan.pk, mfi=loan.mfi,
                 before={kind: str(before), "installment": target.number},
                 after={"charge": charge.pk, "kind": kind, "name": name, "amount": str(amount),
                        "due_date": due_date.isoformat(), "installment": target.number, kind: str(before + amount)})
    notify_charge_added(charge)  # SMS/e-mail to the borrower, sent after commit
    return charge


# --- waiving interest, fees or penalties -------------------------------------------------------------------------

@transaction.atomic
def loan_charges_waive(*, actor: User, loan: Loan, component: str, reason: str, amount: Decimal | None = None,
                       installment_number: int | None = None) -> list[ChargeWaiver]:
    """Forgive ``component`` (interest, fees or penalties) still unpaid on an active loan (MFI admins): ``amount``
    (default: all of it) taken off the installments oldest first, or off installment ``installment_number`` only.
    No journal entry (cash-based: never booked as income); one ``ChargeWaiver`` per installment touched; audited
    (``loan.charges_waive``). A waiver that leaves nothing owed closes the loan, as a repayment would. Refused before
    writing anything: ``validation_error``, ``permission_denied``, ``illegal_transition`` (not active),
    ``nothing_to_waive`` (409), ``waiver_exceeds_unpaid`` (409, with what is unpaid)."""
    _check_staff(actor, loan.mfi_id, frozenset({Role.MFI_ADMIN}), "MFI admins")
    fields: dict[str, list[str]] = {}
    if component not in ChargeWaiver.COMPONENTS:
        fields["component"] = [f"one of {', '.join(ChargeWaiver.COMPONENTS)}"]
    reason = (reason or "").strip() if isinstance(reason, str) else ""
    if not REASON_MIN <= len(reason) <= REASON_MAX:
        fields["reason"] = [f"{REASON_MIN} to {REASON_MAX} characters"]
    if amount is not None:
        if problems := _amount_errors(amount):
            fields["amount"] = problems
        else:
            amount = amount.quantize(CENT)
    if fields:
        raise ValidationFailed("The waiver is incomplete or invalid.", details={"fields": fields})
    loan = _lock_loan(loan.pk, "waive_charges", (LoanStatus.ACTIVE,))
    installments = _locked_installments(loan)
    candidates = [i for i in installments if i.number >= 1 and _unpaid(i, component) > 0
                  and (installment_number is None or i.number == installment_number)]
    if installment_number is not None and not any(i.number == installment_number for i in installments
                                                  if i.number >= 1):
        raise ValidationFailed("The loan has no such installment.",
                               details={"fields": {"installment": [f"1 to {max(i.number for i in installments)}"]}})
    unpaid = sum((_unpaid(i, component) for i in candidates), ZERO)
    if unpaid == 0:
        raise NothingToWaive(f"Nothing of the {component} is unpaid there.",
                             details={"component": component, "installment": installment_number})
    if amount is None:
        amount = unpaid
    if amount > unpaid:
        raise WaiverExceedsUnpaid(f"Only {unpaid} of the {component} is unpaid there; {amount} cannot be waived.",
                                  details={"component": component, "unpaid": str(unpaid), "amount": str(amount)})
    today, now, left = timezone.localdate(), timezone.now(), amount
    waivers = []
    for inst in candidates:
        part = min(left, _unpaid(inst, component))
        if part <= 0:
            break
        setattr(inst, component, getattr(inst, component) - part)
        inst.save(update_fields=[component])
        waivers.append(ChargeWaiver(mfi=loan.mfi, loan=loan, installment=inst, component=component, amount=part,
                                    waived_on=today, reason=reason, waived_by=actor, waived_at=now))
        left -= part
    ChargeWaiver.objects.bulk_create(waivers)
    closes = all(_unpaid(i, c) == 0 for i in installments for c in COMPONENTS)
    audit_record(actor=actor, action="loan.charges_waive", target_type="loan", target_id=loan.pk, mfi=loan.mfi,
                 before={"unpaid": str(unpaid)},
                 after={"component": component, "amount": str(amount), "reason": reason, "closed_loan": closes,
                        "installments": [{"installment": w.installment.number, "amount": str(w.amount)}
                                         for w in waivers]})
    if closes:  # nothing left to pay: closed like a final repayment, its arrears cleared and the network told
        fields = closing_fields(now)
        Loan.objects.filter(pk=loan.pk).update(**fields)
        for field, value in fields.items():
            setattr(loan, field, value)
        outbox_enqueue_many(closed_events(loan))
        audit_record(actor=actor, action="loan.close", target_type="loan", target_id=loan.pk, mfi=loan.mfi,
                     before={"status": LoanStatus.ACTIVE}, after={"status": LoanStatus.CLOSED, "waiver": True})
    return waivers


@transaction.atomic
def charge_waiver_undo(*, actor: User, waiver: ChargeWaiver, reason: str) -> ChargeWaiver:
    """Undo a waiver made in error (MFI admins; Fineract's "undo waive"): the installment owes the amount again
    (the waiver stays, marked undone, and the balance as of a day it was in effect still leaves it out). Repayments
    posted since the waiver are reprocessed as Fineract does — taken back and posted again in their order over the
    schedule that owes the amount again (new receipts with ``replay_of``, the originals reversed, "replayed as …"),
    so what they paid follows the allocation order as if the waiver had never been made; an overpayment they held
    pays what is owed again first. A loan that ends up owing something re-opens (``loan.reopened`` to the network,
    its stacking hold taken again); close of business counts its days past due from its next run. Audited
    (``loan.charges_waive_undo``). Refused before writing anything: ``validation_error`` (reason),
    ``permission_denied``, ``illegal_transition`` (a loan written off or rescheduled since), ``already_reversed``
    (409), ``reprocess_not_possible`` (409: a payoff posted since — reverse it first), ``overpayment_refunded``
    (409: the replayed repayments no longer hold an overpayment already refunded or moved), ``overpayment_held``
    (409: the loan holds an overpayment that no repayment since the waiver made — refund or transfer it first)."""
    _check_staff(actor, waiver.mfi_id, frozenset({Role.MFI_ADMIN}), "MFI admins")
    reason = _reversal_reason(reason)
    loan = _lock_loan(waiver.loan_id, "undo_waiver", (LoanStatus.ACTIVE, LoanStatus.CLOSED))
    row = ChargeWaiver.objects.select_for_update(of=("self",)).select_related("installment").get(pk=waiver.pk)
    if row.undone_at is not None:
        raise AlreadyReversed("This waiver has already been undone.",
                              details={"waiver": row.pk, "undone_at": row.undone_at.isoformat()})
    later = _later_in_effect(loan, posted_at__gt=row.waived_at)
    _check_replayable(later, waiver=row.pk)
    held = overpayment_held(loan)
    if held > 0 and not later:
        raise OverpaymentHeld(f"The loan holds an overpayment of {held}: refund or transfer it before the waiver is "
                              "undone.", details={"waiver": row.pk, "held": str(held)})
    installments = _locked_installments(loan)
    was_closed = loan.status == LoanStatus.CLOSED
    waived_inst = next(i for i in installments if i.pk == row.installment_id)
    before, inst_number = getattr(waived_inst, row.component), waived_inst.number

    def owe_again(by_pk: dict[int, LoanInstallment]) -> None:
        inst = by_pk[row.installment_id]
        setattr(inst, row.component, getattr(inst, row.component) + row.amount)

    replays = _replay_later(loan, installments, later, actor=actor, beneath=owe_again)
    _retire_replayed(loan, later, replays, actor, f"after undoing waiver {row.pk}", "the waiver was not undone.",
                     waiver=row.pk)
    now = timezone.now()
    row.undone_on, row.undone_at, row.undone_by, row.undo_reason = timezone.localdate(), now, actor, reason
    row.save(update_fields=["undone_on", "undone_at", "undone_by", "undo_reason"])
    reopened = was_closed and loan.status == LoanStatus.ACTIVE
    replayed = [{"repayment": old.pk, "receipt_number": old.receipt_number, "replayed_as": new.pk,
                 "new_receipt_number": new.receipt_number} for old, new in zip(later, replays, strict=True)]
    audit_record(actor=actor, action="loan.charges_waive_undo", target_type="charge_waiver", target_id=row.pk,
                 mfi=loan.mfi, before={"undone": False, row.component: str(before)},
                 after={"undone": True, "reason": reason, "loan": loan.pk, "installment": inst_number,
                        "component": row.component, "amount": str(row.amount), row.component: str(before + row.amount),
                        "loan_reopened": reopened, **({"replayed": replayed} if replayed else {})})
    if replayed:
        audit_record_many(actor=actor, events=[
            AuditSpec(action="repayment.reverse", target_type="repayment", target_id=old.pk, mfi_id=loan.mfi_id,
                      before={"reversed": False},
                      after={"reversed": True, "reason": old.reversal_reason, "receipt_number": old.receipt_number,
                             "amount": str(old.amount), "reversal_entry": old.reversal_entry_id,
                             "replayed_as": new.pk})
            for old, new in zip(later, replays, strict=True)])
    if reopened:
        audit_record(actor=actor, action="loan.reopen", target_type="loan", target_id=loan.pk, mfi=loan.mfi,
                     before={"status": LoanStatus.CLOSED}, after={"status": loan.status, "undone_waiver": row.pk})
        outstanding = sum((i.principal - i.principal_paid for i in installments), ZERO)
        emit_credit_event(loan, "loan.reopened", outstanding_principal=outstanding)
        stacking_hold_later(to=loan_exposure(loan))
    row.loan_reopened = reopened
    row.replayed = replays
    return row


# --- overpayment refund ------------------------------------------------------------------------------------------

REFUND_CHANNELS = (RepaymentChannel.CASH, RepaymentChannel.BANK, RepaymentChannel.MOBILE_MONEY)


@transaction.atomic
def overpayment_refund(*, actor: User, loan: Loan, amount: Decimal, refund_date: dt.date, channel: str,
                       reference: str = "") -> OverpaymentRefund:
    """Pay back (part of) the overpayment a loan holds for its borrower (MFI admins): journal Dr Overpayment
    liability (2100) / Cr Cash (1000), ``source_key = "overpayment_refund:<id>"``, audited
    (``repayment.overpayment_refund``). The loan is locked (as by repayments and reversals), so the amount held is
    read and reduced under the lock. Refused before writing anything: ``validation_error`` (amount, date, channel —
    cash, bank or mobile money), ``permission_denied``, ``illegal_transition`` (a loan neither active nor closed),
    ``refund_exceeds_overpayment`` (409, with what is held)."""
    _check_staff(actor, loan.mfi_id, frozenset({Role.MFI_ADMIN}), "MFI admins")
    try:
        amount = _validate_post(amount, refund_date, channel, reference)
    except ValidationFailed as exc:  # same rules as a repayment's; the date is the refund's
        fields = exc.details.get("fields", {})
        if "payment_date" in fields:
            fields["refund_date"] = fields.pop("payment_date")
        raise
    if channel not in REFUND_CHANNELS:
        raise ValidationFailed("A refund is paid in cash, by bank or by mobile money.",
                               details={"fields": {"channel": [f"one of {', '.join(REFUND_CHANNELS)}"]}})
    loan = _lock_loan(loan.pk, "refund_overpayment", (LoanStatus.ACTIVE, LoanStatus.CLOSED))
    held = overpayment_held(loan)
    if amount > held:
        raise RefundExceedsOverpayment(f"The loan holds {held} of overpayment; {amount} cannot be refunded.",
                                       details={"held": str(held), "amount": str(amount)})
    refund = OverpaymentRefund.objects.create(
        mfi=loan.mfi, loan=loan, amount=amount, refund_date=refund_date, channel=channel, reference=reference,
        refunded_by=actor, refunded_at=timezone.now())
    memo = f"overpayment refund on loan {loan.reference} by {channel}" + (f" ({reference})" if reference else "")
    refund.journal_entry = journal_post(
        mfi=loan.mfi, entry_date=refund_date, description=f"Overpayment refund on loan {loan.reference}",
        lines=[PostingLine(chart.OVERPAYMENT_LIABILITY, debit=amount, memo=memo[:255]),
               PostingLine(chart.CASH, credit=amount, memo="refund paid out")],
        reference_type="overpayment_refund", reference_id=str(refund.pk), actor=actor,
        source_key=f"overpayment_refund:{refund.pk}")
    refund.save(update_fields=["journal_entry"])
    audit_record(actor=actor, action="repayment.overpayment_refund", target_type="overpayment_refund",
                 target_id=refund.pk, mfi=loan.mfi, before={"held": str(held)},
                 after={"loan": loan.pk, "amount": str(amount), "refund_date": refund_date.isoformat(),
                        "channel": channel, "reference": reference, "held": str(held - amount),
                        "journal_entry": refund.journal_entry_id})
    return refund


@transaction.atomic
def overpayment_refund_reverse(*, actor: User, refund: OverpaymentRefund, reason: str) -> OverpaymentRefund:
    """Undo a refund (MFI admins) — the money never reached the borrower, or came back: its journal entry reversed
    (Dr Cash / Cr Overpayment liability 2100), the refund marked reversed, and the loan holds the amount again (it
    can be refunded again, transferred, or left). Audited (``repayment.overpayment_refund_reverse``). Refused:
    ``validation_error`` (reason), ``permission_denied``, ``already_reversed`` (409)."""
    _check_staff(actor, refund.mfi_id, frozenset({Role.MFI_ADMIN}), "MFI admins")
    reason = _reversal_reason(reason)
    loan = _lock_loan(refund.loan_id, "reverse_refund",
                      (LoanStatus.ACTIVE, LoanStatus.CLOSED, LoanStatus.WRITTEN_OFF, LoanStatus.RESCHEDULED))
    row = OverpaymentRefund.objects.select_for_update(of=("self",)).select_related("journal_entry").get(pk=refund.pk)
    if row.reversed_at is not None:
        raise AlreadyReversed("This refund has already been reversed.",
                              details={"refund": row.pk, "reversed_at": row.reversed_at.isoformat()})
    held = overpayment_held(loan)
    _mark_reversed(row, actor, reason, kind="overpayment_refund")
    audit_record(actor=actor, action="repayment.overpayment_refund_reverse", target_type="overpayment_refund",
                 target_id=row.pk, mfi=loan.mfi, before={"reversed": False, "held": str(held)},
                 after={"reversed": True, "reason": reason, "amount": str(row.amount), "held": str(held + row.amount),
                        "reversal_entry": row.reversal_entry_id})
    return row


@transaction.atomic
def overpayment_transfer(*, actor: User, loan: Loan, to_loan_id: int, amount: Decimal, transfer_date: dt.date
                         ) -> OverpaymentTransfer:
    """Apply (part of) the overpayment ``loan`` holds to another active loan of the same borrower at the same MFI
    (MFI admins): a repayment of the target (channel ``transfer``, allocated like any repayment, no "repayment
    received" message) whose journal entry is Dr Overpayment liability (2100) / Cr what it pays; the source holds
    that much less while the repayment is in effect (reversing it gives it back). Both loans are locked in id order.
    Refused before writing anything: ``validation_error`` (amount, date; a target of another borrower or currency),
    ``not_found`` (a target that is not the MFI's), ``illegal_transition`` (a target not active, a source neither
    active nor closed), ``transfer_exceeds_overpayment`` (409, with what is held)."""
    _check_staff(actor, loan.mfi_id, frozenset({Role.MFI_ADMIN}), "MFI admins")
    try:
        amount = _validate_post(amount, transfer_date, RepaymentChannel.TRANSFER, "",
                                channels=(RepaymentChannel.TRANSFER,))
    except ValidationFailed as exc:
        fields = exc.details.get("fields", {})
        if "payment_date" in fields:
            fields["transfer_date"] = fields.pop("payment_date")
        raise
    if not isinstance(to_loan_id, int) or isinstance(to_loan_id, bool) or to_loan_id == loan.pk:
        raise ValidationFailed("Name another loan of the borrower to apply the overpayment to.",
                               details={"fields": {"to_loan": ["another loan's id"]}})
    if not Loan.objects.filter(pk=to_loan_id, mfi_id=loan.mfi_id).exists():
        raise NotFound("No such loan.")
    locked = {}
    for pk, action, allowed in sorted([(loan.pk, "transfer_overpayment", (LoanStatus.ACTIVE, LoanStatus.CLOSED)),
                                       (to_loan_id, "repay", (LoanStatus.ACTIVE,))]):
        locked[pk] = _lock_loan(pk, action, allowed)
    source, target = locked[loan.pk], locked[to_loan_id]
    if target.borrower_id != source.borrower_id or target.product.currency != source.product.currency:
        raise ValidationFailed("An overpayment can only go to another loan of the same borrower, in the same currency.",
                               details={"fields": {"to_loan": ["a loan of the same borrower and currency"]}})
    _check_repayable(target, transfer_date)
    held = overpayment_held(source)
    if amount > held:
        raise TransferExceedsOverpayment(f"The loan holds {held} of overpayment; {amount} cannot be transferred.",
                                         details={"held": str(held), "amount": str(amount)})
    target.repayment_strategy = allocation_strategy_for(target.product_id)
    installments = _lock_unpaid_installments([target.pk]).get(target.pk, [])
    planned = _plan(target, installments, amount, f"overpayment of {source.reference}")
    _save_paid([i for i in installments if i.pk in {q.key for q in planned.plan.portions}])
    (rep,) = _record(actor=actor, mfi=target.mfi, planned=[planned], payment_date=transfer_date,
                     channel=RepaymentChannel.TRANSFER, notify=False)
    transfer = OverpaymentTransfer.objects.create(mfi=source.mfi, from_loan=source, to_loan=target, amount=amount,
                                                  repayment=rep, transferred_by=actor, transferred_at=timezone.now())
    audit_record(actor=actor, action="repayment.overpayment_transfer", target_type="overpayment_transfer",
                 target_id=transfer.pk, mfi=source.mfi, before={"held": str(held)},
                 after={"from_loan": source.pk, "to_loan": target.pk, "amount": str(amount),
                        "transfer_date": transfer_date.isoformat(), "repayment": rep.pk,
                        "receipt_number": rep.receipt_number, "held": str(held - amount)})
    transfer.repayment = rep  # with its posted allocations, for the receipt
    return transfer


# --- product configuration ---------------------------------------------------------------------------------------

@transaction.atomic
def product_repayment_config_set(*, actor: User, product: LoanProduct, allocation_strategy: str | None
                                 ) -> ProductRepaymentConfig:
    """Choose the product's allocation strategy (None: back to the default). Applies to repayments posted from
    now on; each repayment records the strategy it used."""
    _check_staff(actor, product.mfi_id, frozenset({Role.MFI_ADMIN}), "MFI admins")
    if allocation_strategy is not None and allocation_strategy not in AllocationStrategy.values:
        raise ValidationFailed("Unknown allocation strategy.",
                               details={"fields": {"allocation_strategy": list(AllocationStrategy.values)}})
    config, _ = ProductRepaymentConfig.objects.select_for_update().get_or_create(product=product)
    before = config.allocation_strategy
    config.allocation_strategy, config.updated_by = allocation_strategy, actor
    config.save()
    audit_record(actor=actor, action="product.repayment_config", target_type="loan_product", target_id=product.pk,
                 mfi=product.mfi, before={"allocation_strategy": before},
                 after={"allocation_strategy": allocation_strategy,
                        "effective_strategy": allocation_strategy or A.DEFAULT_STRATEGY})
    return config


# --- recoveries (loans written off) ------------------------------------------------------------------------------

def recovery_remaining(loan: Loan) -> tuple[Decimal, Decimal]:
    """``(written off, still recoverable)``: what the schedule had unpaid when the loan was written off (principal,
    interest, fees, penalties — the installments are not touched after a write-off) and that less the recoveries
    in effect."""
    unpaid = sum(_outstanding(list(LoanInstallment.objects.filter(loan_id=loan.pk))).values(), ZERO)
    recovered = sum(Recovery.objects.filter(loan_id=loan.pk, reversed_at__isnull=True)
                    .values_list("amount", flat=True), ZERO)
    return unpaid, unpaid - recovered


def _recovery_event(loan: Loan) -> None:
    """``loan.recovered``: the loan stays written off; the report shows how much of it came back."""
    unpaid, remaining = recovery_remaining(loan)
    emit_credit_event(loan, "loan.recovered", outstanding_principal=ZERO,
                      extra={"written_off_unpaid": str(unpaid), "recovered": str(unpaid - remaining)})


@transaction.atomic
def loan_recovery_post(*, actor: User, loan: Loan, amount: Decimal, payment_date: dt.date, channel: str,
                       reference: str = "") -> Recovery:
    """Receive money on a written-off loan: a receipt from the MFI's sequence, the journal entry Dr Cash / Cr
    Recoveries (4300), a ``loan.recovered`` credit event, an audit row. The schedule is not changed. Refused:
    a loan that is not written off (``illegal_transition``), a date before the write-off (``validation_error``),
    more than is still recoverable (``recovery_exceeds_written_off``)."""
    amount = _validate_post(amount, payment_date, channel, reference)
    _check_staff(actor, loan.mfi_id, OFFICERS, "loan officers and MFI admins")
    loan = _lock_loan(loan.pk, "recover", (LoanStatus.WRITTEN_OFF,))
    written_off_on = timezone.localdate(loan.written_off_at)
    if payment_date < written_off_on:
        raise ValidationFailed("A recovery cannot be dated before the write-off; money received before it is a "
                               "repayment.", details={"fields": {"payment_date": [f"on or after {written_off_on}"]}})
    unpaid, remaining = recovery_remaining(loan)
    if amount > remaining:
        raise RecoveryExceedsWrittenOff(
            f"Only {remaining} of this written-off loan is still to be recovered.",
            details={"written_off_unpaid": str(unpaid), "remaining": str(remaining)})
    (number,), _ = _receipts_and_ids(loan.mfi, 1, ids=False)
    rec = Recovery.objects.create(mfi=loan.mfi, loan=loan, receipt_number=number, amount=amount,
                                  payment_date=payment_date, channel=channel, reference=reference, posted_by=actor,
                                  posted_at=timezone.now())
    memo = f"recovery {number} by {channel}" + (f" ({reference})" if reference else "")
    rec.journal_entry = journal_post(
        mfi=loan.mfi, entry_date=payment_date, description=f"Recovery {number} on written-off loan {loan.reference}",
        lines=[PostingLine(chart.CASH, debit=amount, memo=memo[:255]),
               PostingLine(chart.RECOVERY_INCOME, credit=amount, memo="recovered after write-off")],
        reference_type="recovery", reference_id=str(rec.pk), actor=actor, source_key=f"recovery:{rec.pk}")
    rec.save(update_fields=["journal_entry"])
    _recovery_event(loan)
    audit_record(actor=actor, action="loan.recovery", target_type="recovery", target_id=rec.pk, mfi=loan.mfi,
                 after={"loan": loan.pk, "receipt_number": number, "amount": str(amount),
                        "payment_date": payment_date.isoformat(), "channel": channel, "reference": reference,
                        "journal_entry": rec.journal_entry_id, "remaining_after": str(remaining - amount)})
    return rec


@transaction.atomic
def loan_recovery_reverse(*, actor: User, recovery: Recovery, reason: str) -> Recovery:
    """Undo a recovery (MFI admins): its journal entry reversed, the recovery marked reversed, the network told."""
    _check_staff(actor, recovery.mfi_id, frozenset({Role.MFI_ADMIN}), "MFI admins")
    reason = _reversal_reason(reason)
    loan = _lock_loan(recovery.loan_id, "reverse_recovery", (LoanStatus.WRITTEN_OFF,))
    rec = Recovery.objects.select_for_update(of=("self",)).select_related("journal_entry").get(pk=recovery.pk)
    if rec.reversed_at is not None:
        raise AlreadyReversed(f"Recovery {rec.receipt_number} has already been reversed.",
                              details={"recovery": rec.pk, "reversed_at": rec.reversed_at.isoformat()})
    _mark_reversed(rec, actor, reason, kind="recovery")
    _recovery_event(loan)
    audit_record(actor=actor, action="loan.recovery_reverse", target_type="recovery", target_id=rec.pk,
                 mfi=loan.mfi, before={"reversed": False},
                 after={"reversed": True, "reason": reason, "receipt_number": rec.receipt_number,
                        "amount": str(rec.amount), "reversal_entry": rec.reversal_entry_id})
    return rec
