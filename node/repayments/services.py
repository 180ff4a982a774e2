"""Posting and reversing repayments (cash-based accounting), and the per-product allocation strategy.

Locks, always in this order: the loan row (``SELECT ... FOR UPDATE OF`` the loan only), then its installments,
then (posting only) the MFI's receipt counter. The loan's state is checked inside the lock, so concurrent
repayments on one loan run one after the other, each allocating against what the previous one left. Every
service is one transaction: bad input raises before anything is written, and any later failure rolls all of it
back (installments, repayment, journal entry, outbox events, audit).

Journal (one entry per repayment, ``source_key = "repayment:<id>"``): Dr Cash (1000) the amount; Cr Loan portfolio
(1100) principal, Cr Interest income (4000), Cr Fee income (4100), Cr Penalty income (4200), Cr Overpayment
liability (2100) whatever exceeds everything due on the schedule. Zero lines are left out. A reversal is
``journal_reverse`` of that entry (``source_key = "repayment:<id>:reversal"``).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from node.audit.services import audit_record
from node.cob.services import bucket_for
from node.core.errors import Forbidden, ValidationFailed
from node.credit.stacking import stacking_hold_later, stacking_release_later
from node.ledger import chart
from node.ledger.services import PostingLine, journal_post, journal_reverse
from node.loans.credit_events import emit_credit_event, loan_exposure, network_loan_key
from node.loans.errors import IllegalTransition
from node.loans.models import Loan, LoanInstallment, LoanProduct, LoanStatus
from node.mfis.models import Mfi
from node.notifications.services import notify_repayment_received
from node.repayments import allocation as A
from node.repayments.errors import AlreadyReversed, ReverseLaterFirst
from node.repayments.models import (
    AllocationStrategy,
    ProductRepaymentConfig,
    ReceiptCounter,
    Repayment,
    RepaymentAllocation,
    RepaymentChannel,
)
from node.users.models import Role, User

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


def allocation_strategy_for(product: LoanProduct | int) -> str:
    product_id = product.pk if isinstance(product, LoanProduct) else product
    chosen = (ProductRepaymentConfig.objects.filter(product_id=product_id)
              .values_list("allocation_strategy", flat=True).first())
    return chosen or A.DEFAULT_STRATEGY


def _next_receipt_number(mfi: Mfi) -> str:
    """``<MFI code>-R-<8 digits>``, from the MFI's counter row held FOR UPDATE until commit: never a duplicate
    (a rolled-back posting may leave a gap)."""
    ReceiptCounter.objects.bulk_create([ReceiptCounter(mfi=mfi)], ignore_conflicts=True)
    counter = ReceiptCounter.objects.select_for_update().get(mfi=mfi)
    counter.last_number += 1
    counter.save(update_fields=["last_number"])
    return f"{mfi.code.upper()}-R-{counter.last_number:08d}"


def _set_loan_status(loan: Loan, status: str, closed_at) -> None:
    """Close or re-open. A closed loan owes nothing, so its arrears (kept by close of business) are cleared."""
    loan.status, loan.closed_at = status, closed_at
    fields = ["status", "closed_at", "updated_at"]
    if status == LoanStatus.CLOSED:
        loan.days_past_due, loan.delinquency_bucket, loan.overdue_since = 0, bucket_for(0), None
        fields += ["days_past_due", "delinquency_bucket", "overdue_since"]
    loan.save(update_fields=fields)


def _check_staff(actor: User, mfi_id: int, roles: frozenset[str], what: str) -> None:
    if getattr(actor, "role", None) not in roles or actor.mfi_id != mfi_id:
        raise Forbidden(f"Only {what} of the loan's MFI may do this.")


def _validate_post(amount, payment_date, channel, reference) -> Decimal:
    errors: dict[str, list[str]] = {}
    if isinstance(amount, bool) or not isinstance(amount, Decimal) or not amount.is_finite():
        errors["amount"] = ["a decimal amount (a string such as \"150.00\")"]
    elif amount <= 0:
        errors["amount"] = ["must be greater than 0"]
    elif amount != amount.quantize(CENT):
        errors["amount"] = ["at most 2 decimal places"]
    elif amount >= MAX_AMOUNT:
        errors["amount"] = ["too large"]
    if isinstance(payment_date, dt.datetime) or not isinstance(payment_date, dt.date):
        errors["payment_date"] = ["a date"]
    elif payment_date > timezone.localdate():
        errors["payment_date"] = ["must not be in the future"]
    if channel not in RepaymentChannel.values:
        errors["channel"] = [f"one of {', '.join(RepaymentChannel.values)}"]
    if not isinstance(reference, str) or len(reference) > 100:
        errors["reference"] = ["at most 100 characters"]
    if errors:
        raise ValidationFailed("The repayment has invalid fields.", details={"fields": errors})
    return amount.quantize(CENT)


def _journal_lines(rep: Repayment) -> list[PostingLine]:
    memo = f"repayment {rep.receipt_number} by {rep.channel}" + (f" ({rep.reference})" if rep.reference else "")
    lines = [PostingLine(chart.CASH, debit=rep.amount, memo=memo[:255])]
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

@transaction.atomic
def repayment_post(*, actor: User, loan: Loan, amount: Decimal, payment_date: dt.date, channel: str,
                   reference: str = "") -> Repayment:
    """Receive ``amount`` on an active loan: allocate it over the schedule (the product's strategy, oldest
    installment first), post the journal entry, close the loan when nothing remains due, audit, and tell the
    network. Raises ``validation_error`` (400), ``illegal_transition`` (409) or ``permission_denied`` (403)
    before writing anything."""
    amount = _validate_post(amount, payment_date, channel, reference)
    _check_staff(actor, loan.mfi_id, OFFICERS, "loan officers and MFI admins")
    loan = _lock_loan(loan.pk, "repay", (LoanStatus.ACTIVE,))
    if loan.disbursement_date is None or payment_date < loan.disbursement_date:
        raise ValidationFailed("A repayment cannot be dated before the disbursement.",
                               details={"fields": {"payment_date": [
                                   f"on or after the disbursement date {loan.disbursement_date}"]}})
    installments = _locked_installments(loan)
    strategy = allocation_strategy_for(loan.product_id)
    dues = [A.Due(key=i.pk, **{c: _unpaid(i, c) for c in COMPONENTS}) for i in installments]
    plan = A.allocate(amount, dues, strategy)

    by_pk = {i.pk: i for i in installments}
    for portion in plan.portions:
        inst = by_pk[portion.key]
        for c in COMPONENTS:
            setattr(inst, f"{c}_paid", getattr(inst, f"{c}_paid") + portion.get(c))
        inst.save(update_fields=[f"{c}_paid" for c in COMPONENTS])
    after = _outstanding(installments)
    closes = sum(after.values(), ZERO) == 0

    now = timezone.now()
    rep = Repayment.objects.create(
        mfi=loan.mfi, loan=loan, receipt_number=_next_receipt_number(loan.mfi), amount=amount,
        payment_date=payment_date, channel=channel, reference=reference, allocation_strategy=strategy,
        **{c: plan.component(c) for c in COMPONENTS}, overpayment=plan.overpayment,
        **{f"outstanding_{c}_after": after[c] for c in COMPONENTS}, closed_loan=closes,
        posted_by=actor, posted_at=now,
    )
    RepaymentAllocation.objects.bulk_create([
        RepaymentAllocation(repayment=rep, installment_id=p.key, **{c: p.get(c) for c in COMPONENTS})
        for p in plan.portions
    ])
    rep.journal_entry = journal_post(
        mfi=loan.mfi, entry_date=payment_date, lines=_journal_lines(rep),
        description=f"Repayment {rep.receipt_number} on loan {loan.reference}",
        reference_type="repayment", reference_id=str(rep.pk), actor=actor, source_key=f"repayment:{rep.pk}",
    )
    rep.save(update_fields=["journal_entry"])

    if closes:
        _set_loan_status(loan, LoanStatus.CLOSED, now)
        emit_credit_event(loan, "loan.closed", outstanding_principal=ZERO)
        stacking_release_later(borrower_key=loan.borrower.borrower_key, loan_key=network_loan_key(loan))
        audit_record(actor=actor, action="loan.close", target_type="loan", target_id=loan.pk, mfi=loan.mfi,
                     before={"status": LoanStatus.ACTIVE}, after={"status": loan.status, "repayment": rep.pk,
                                                                  "receipt_number": rep.receipt_number})
    else:
        emit_credit_event(loan, "loan.repaid", outstanding_principal=after["principal"])
    notify_repayment_received(rep)  # SMS/e-mail to the borrower, sent after commit
    audit_record(
        actor=actor, action="repayment.post", target_type="repayment", target_id=rep.pk, mfi=loan.mfi,
        after={
            "loan": loan.pk, "receipt_number": rep.receipt_number, "amount": str(amount),
            "payment_date": payment_date.isoformat(), "channel": channel, "reference": reference,
            "allocation_strategy": strategy, "allocated": _money_json({c: plan.component(c) for c in COMPONENTS}),
            "overpayment": str(plan.overpayment), "outstanding_after": _money_json(after),
            "closed_loan": closes, "journal_entry": rep.journal_entry_id,
            "installments": [{"installment": by_pk[p.key].number, **_money_json({c: p.get(c) for c in COMPONENTS})}
                             for p in plan.portions],
        },
    )
    return rep


# --- reversal ----------------------------------------------------------------------------------------------------

@transaction.atomic
def repayment_reverse(*, actor: User, repayment: Repayment, reason: str) -> Repayment:
    """Undo a repayment: reverse its journal entry and take its stored allocation back off the installments.

    Newest first: while a later repayment of the same loan is in effect this answers ``reverse_later_first``
    (409). A loan the repayment had closed becomes active again (its network hold is restored)."""
    _check_staff(actor, repayment.mfi_id, frozenset({Role.MFI_ADMIN}), "MFI admins")
    reason = (reason or "").strip() if isinstance(reason, str) else ""
    if not REASON_MIN <= len(reason) <= REASON_MAX:
        raise ValidationFailed("Give the reason for the reversal (5 to 200 characters).",
                               details={"fields": {"reason": [f"{REASON_MIN} to {REASON_MAX} characters"]}})
    loan = _lock_loan(repayment.loan_id, "reverse_repayment", (LoanStatus.ACTIVE, LoanStatus.CLOSED))
    rep = Repayment.objects.select_for_update(of=("self",)).select_related("journal_entry").get(pk=repayment.pk)
    if rep.reversed_at is not None:
        raise AlreadyReversed(f"Repayment {rep.receipt_number} has already been reversed.",
                              details={"repayment": rep.pk, "reversed_at": rep.reversed_at.isoformat()})
    later = (Repayment.objects.filter(loan_id=loan.pk, reversed_at__isnull=True, pk__gt=rep.pk)
             .order_by("-pk").values_list("pk", "receipt_number").first())
    if later is not None:
        raise ReverseLaterFirst(
            "Reverse the loan's later repayments first (newest first).",
            details={"repayment": rep.pk, "latest_repayment": later[0], "latest_receipt_number": later[1]})

    installments = _locked_installments(loan)
    before = _outstanding(installments)
    by_pk = {i.pk: i for i in installments}
    for alloc in rep.allocations.all():
        inst = by_pk[alloc.installment_id]
        for c in COMPONENTS:
            restored = getattr(inst, f"{c}_paid") - getattr(alloc, c)
            if restored < 0:  # cannot happen while reversals go newest first; refuse rather than corrupt
                raise RuntimeError(f"installment {inst.pk}: reversing repayment {rep.pk} would make {c}_paid negative")
            setattr(inst, f"{c}_paid", restored)
        inst.save(update_fields=[f"{c}_paid" for c in COMPONENTS])
    after = _outstanding(installments)

    rep.reversal_entry = journal_reverse(entry=rep.journal_entry, actor=actor, reason=reason,
                                         source_key=f"repayment:{rep.pk}:reversal")
    rep.reversed_at, rep.reversed_by, rep.reversal_reason = timezone.now(), actor, reason
    rep.save(update_fields=["reversal_entry", "reversed_at", "reversed_by", "reversal_reason"])

    reopened = loan.status == LoanStatus.CLOSED
    if reopened:
        _set_loan_status(loan, LoanStatus.ACTIVE, None)
        audit_record(actor=actor, action="loan.reopen", target_type="loan", target_id=loan.pk, mfi=loan.mfi,
                     before={"status": LoanStatus.CLOSED}, after={"status": loan.status, "reversed_repayment": rep.pk})
    emit_credit_event(loan, "loan.reopened" if reopened else "loan.repaid", outstanding_principal=after["principal"])
    if reopened:
        stacking_hold_later(to=loan_exposure(loan))
    audit_record(
        actor=actor, action="repayment.reverse", target_type="repayment", target_id=rep.pk, mfi=loan.mfi,
        before={"reversed": False, "outstanding": _money_json(before)},
        after={"reversed": True, "reason": reason, "receipt_number": rep.receipt_number, "amount": str(rep.amount),
               "reversal_entry": rep.reversal_entry_id, "outstanding": _money_json(after), "loan_reopened": reopened},
    )
    return rep


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
