"""The loan lifecycle as an explicit state machine, maker-checker disbursement and write-off.

Every transition locks the loan row (SELECT ... FOR UPDATE) and checks the state inside the lock, so two
concurrent actions on one loan cannot both win; an illegal transition raises ``IllegalTransition`` (409) with
the current state. Money moves only through ``node.ledger.services.journal_post`` with a source key per
event, so a disbursement can never be posted twice.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from node.core.money import plain
from node.audit.services import audit_record
from node.borrowers.models import Borrower, MfiClient
from node.borrowers.services import consent_require
from node.core.errors import ValidationFailed
from node.ledger import chart
from node.ledger.services import PostingLine, journal_post
from node.credit.errors import CreditNetworkUnavailable, StackingLimitReached
from node.credit.stacking import stacking_activate, stacking_hold_later, stacking_release_later, stacking_reserve
from node.loans.credit_events import (
    emit_credit_event, loan_exposure, loan_schedule, monthly_installment, network_loan_key,
)
from node.loans.errors import (
    ApprovalLimitExceeded,
    IllegalTransition,
    MakerCheckerViolation,
    StepUpRequired,
)
from node.loans.models import (
    DisbursementChannel,
    Loan,
    LoanInstallment,
    LoanProduct,
    LoanStatus,
    RejectionReason,
    StepUpGrant,
)
from node.loans.products import build_schedule, check_rate_cap, check_terms
from node.notifications.services import notify_loan_disbursed
from node.users.models import Role, User

S = LoanStatus
# action -> states it may start from
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "update_terms": (S.DRAFT, S.SUBMITTED, S.UNDER_REVIEW, S.APPROVED),
    "submit": (S.DRAFT,),
    "start_review": (S.SUBMITTED,),
    "approve": (S.UNDER_REVIEW,),
    "reject": (S.SUBMITTED, S.UNDER_REVIEW),
    "withdraw": (S.DRAFT, S.SUBMITTED, S.UNDER_REVIEW, S.APPROVED),
    "initiate_disbursement": (S.APPROVED,),
    "confirm_disbursement": (S.APPROVED,),
    "write_off": (S.ACTIVE,),
    "reschedule": (S.ACTIVE,),
}
TERM_FIELDS = ("principal", "number_of_repayments", "annual_interest_rate", "expected_disbursement_date")


def _lock(loan: Loan, action: str) -> Loan:
    # of=self: lock the loan row only, not the MFI, product and borrower rows it joins (that would serialise
    # every write of the MFI behind one approval)
    locked = Loan.objects.select_for_update(of=("self",)).select_related("mfi", "product", "borrower").get(pk=loan.pk)
    if locked.status not in TRANSITIONS[action]:
        raise IllegalTransition(
            f"A loan in state '{locked.status}' does not allow '{action}'.",
            details={"current_state": locked.status, "action": action, "allowed_from": list(TRANSITIONS[action])},
        )
    return locked


def _terms(loan: Loan) -> dict:
    return {
        "principal": str(loan.principal), "number_of_repayments": loan.number_of_repayments,
        "annual_interest_rate": plain(loan.annual_interest_rate),
        "expected_disbursement_date": loan.expected_disbursement_date.isoformat(), "product": loan.product_id,
    }


def _audit(actor: User, loan: Loan, action: str, before: str | None, **extra) -> None:
    audit_record(actor=actor, action=f"loan.{action}", target_type="loan", target_id=loan.pk, mfi=loan.mfi,
                 before={"status": before} if before else None, after={"status": loan.status, **extra})


def _audited_refusal(action: str):
    """Commit an audit row when the network refuses (stacking policy) or cannot decide (no ring quorum); the
    refused service's own transaction has rolled back, so nothing else is written."""

    def wrap(service):
        @functools.wraps(service)
        def run(*, actor: User, loan: Loan, **kwargs):
            try:
                return service(actor=actor, loan=loan, **kwargs)
            except (StackingLimitReached, CreditNetworkUnavailable) as exc:
                with transaction.atomic():
                    audit_record(actor=actor, action=f"loan.{action}_refused", target_type="loan", target_id=loan.pk,
                                 mfi=loan.mfi, after={"code": exc.code, **{k: v for k, v in exc.details.items()
                                                                             if k != "holders"}})
                raise
        return run
    return wrap


def _release_hold(loan: Loan) -> None:
    stacking_release_later(borrower_key=loan.borrower.borrower_key, loan_key=network_loan_key(loan))


def _new_reference(mfi_code: str) -> str:
    return f"{mfi_code[:12].upper()}-{timezone.now():%y%m}-{secrets.token_hex(4).upper()}"


def loan_apply(*, actor: User, borrower: Borrower, product: LoanProduct, principal: Decimal,
               number_of_repayments: int, expected_disbursement_date: date, purpose: str = "",
               annual_interest_rate: Decimal | None = None) -> Loan:
    """Create a draft application. The borrower must have consented to credit-history sharing (the application is
    shared as a credit event); a refusal is audited. A borrower applying online becomes a client of the MFI."""
    consent_require(actor=actor, borrower=borrower, purpose="loan_application")
    return _loan_apply(actor=actor, borrower=borrower, product=product, principal=principal,
                       number_of_repayments=number_of_repayments, expected_disbursement_date=expected_disbursement_date,
                       purpose=purpose, annual_interest_rate=annual_interest_rate)


@transaction.atomic
def _loan_apply(*, actor: User, borrower: Borrower, product: LoanProduct, principal: Decimal,
                number_of_repayments: int, expected_disbursement_date: date, purpose: str,
                annual_interest_rate: Decimal | None) -> Loan:
    if not product.is_active:
        raise ValidationFailed("This product is not offered any more.", code="product_inactive")
    rate = product.annual_interest_rate if annual_interest_rate is None else annual_interest_rate
    check_rate_cap(product.mfi, rate)
    check_terms(product, principal=principal, number_of_repayments=number_of_repayments)
    build_schedule(product, principal=principal, number_of_repayments=number_of_repayments,
                   annual_interest_rate=rate, disbursement_date=expected_disbursement_date)
    MfiClient.objects.get_or_create(borrower=borrower, mfi=product.mfi, defaults={"created_by": actor})
    loan = Loan.objects.create(
        mfi=product.mfi, product=product, borrower=borrower, reference=_new_reference(product.mfi.code),
        principal=principal, number_of_repayments=number_of_repayments, annual_interest_rate=rate,
        expected_disbursement_date=expected_disbursement_date, purpose=purpose, created_by=actor,
    )
    _audit(actor, loan, "apply", None, **_terms(loan))
    emit_credit_event(loan, "loan.applied")
    return loan


@transaction.atomic
def loan_update_terms(*, actor: User, loan: Loan, changes: dict) -> Loan:
    loan = _lock(loan, "update_terms")
    before_terms, before_status = _terms(loan), loan.status
    for field, value in changes.items():
        if field not in TERM_FIELDS:
            raise ValidationFailed("This field cannot be changed.", details={"fields": {field: ["read-only"]}})
        setattr(loan, field, value)
    check_rate_cap(loan.mfi, loan.annual_interest_rate)
    check_terms(loan.product, principal=loan.principal, number_of_repayments=loan.number_of_repayments)
    build_schedule(loan.product, principal=loan.principal, number_of_repayments=loan.number_of_repayments,
                   annual_interest_rate=loan.annual_interest_rate, disbursement_date=loan.expected_disbursement_date)
    voided = loan.status == S.APPROVED and _terms(loan) != loan.approved_terms
    if voided:
        _release_hold(loan)
        emit_credit_event(loan, "loan.approval_voided")
        # any change to amount or terms after approval voids the approval (and any initiated disbursement)
        loan.status = S.UNDER_REVIEW
        loan.approved_by = loan.approved_at = loan.approved_terms = None
        loan.disbursement_initiated_by = loan.disbursement_initiated_at = None
        loan.disbursement_channel = loan.disbursement_reference = ""
    loan.save()
    audit_record(actor=actor, action="loan.update_terms", target_type="loan", target_id=loan.pk, mfi=loan.mfi,
                 before={**before_terms, "status": before_status},
                 after={**_terms(loan), "status": loan.status, "approval_voided": voided})
    return loan


@transaction.atomic
def loan_submit(*, actor: User, loan: Loan) -> Loan:
    loan = _lock(loan, "submit")
    loan.status, loan.submitted_at = S.SUBMITTED, timezone.now()
    loan.save(update_fields=["status", "submitted_at", "updated_at"])
    _audit(actor, loan, "submit", S.DRAFT)
    return loan


@transaction.atomic
def loan_start_review(*, actor: User, loan: Loan) -> Loan:
    loan = _lock(loan, "start_review")
    loan.status, loan.reviewed_by = S.UNDER_REVIEW, actor
    loan.save(update_fields=["status", "reviewed_by", "updated_at"])
    _audit(actor, loan, "start_review", S.SUBMITTED)
    return loan


def loan_credit_assess(*, actor: User, loan: Loan):
    """The network credit report and score for this application (this loan scored as the new debt), logged as a
    ``loan_application`` enquiry by the actor's MFI; the grade and points are kept on the loan for the risk-grade
    reports. Raises ``CreditNetworkUnavailable`` (503) without a ring quorum; then nothing is kept."""
    from node.credit.services import credit_assess

    a = credit_assess(actor=actor, borrower=loan.borrower, purpose="loan_application",
                      loan_key=network_loan_key(loan), new_monthly_installment=monthly_installment(loan_schedule(loan)))
    Loan.objects.filter(pk=loan.pk).update(risk_grade=a.score.grade, risk_points=a.score.points,
                                           risk_assessed_at=timezone.now())
    loan.risk_grade, loan.risk_points = a.score.grade, a.score.points
    return a


@_audited_refusal("approve")
@transaction.atomic
def loan_approve(*, actor: User, loan: Loan) -> Loan:
    """Approve; the network's stacking guard reserves the loan's exposure first (409 ``stacking_limit`` past the
    policy, 503 ``credit_network_unavailable`` without a ring quorum — in both cases nothing changes)."""
    loan = _lock(loan, "approve")
    limit = loan.mfi.officer_approval_limit
    if actor.role == Role.LOAN_OFFICER and limit is not None and loan.principal > limit:
        raise ApprovalLimitExceeded(
            f"Loan officers may approve up to {limit}; an MFI admin must approve this loan.",
            details={"limit": str(limit), "principal": str(loan.principal)},
        )
    check_rate_cap(loan.mfi, loan.annual_interest_rate)
    stacking_reserve(loan_exposure(loan))
    loan.status, loan.approved_by, loan.approved_at = S.APPROVED, actor, timezone.now()
    loan.approved_terms = _terms(loan)
    loan.save(update_fields=["status", "approved_by", "approved_at", "approved_terms", "updated_at"])
    _audit(actor, loan, "approve", S.UNDER_REVIEW, terms=loan.approved_terms)
    emit_credit_event(loan, "loan.approved")
    return loan


@transaction.atomic
def loan_reject(*, actor: User, loan: Loan, reason: str, note: str = "") -> Loan:
    if reason not in RejectionReason.values:
        raise ValidationFailed("Unknown rejection reason.", details={"fields": {"reason": list(RejectionReason.values)}})
    loan = _lock(loan, "reject")
    before = loan.status
    loan.status, loan.rejected_by, loan.rejection_reason, loan.rejection_note = S.REJECTED, actor, reason, note[:500]
    loan.save(update_fields=["status", "rejected_by", "rejection_reason", "rejection_note", "updated_at"])
    _audit(actor, loan, "reject", before, reason=reason, note=note[:500])
    emit_credit_event(loan, "loan.rejected")
    return loan


@transaction.atomic
def loan_withdraw(*, actor: User, loan: Loan) -> Loan:
    loan = _lock(loan, "withdraw")
    before = loan.status
    loan.status, loan.withdrawn_at = S.WITHDRAWN, timezone.now()
    loan.save(update_fields=["status", "withdrawn_at", "updated_at"])
    _audit(actor, loan, "withdraw", before)
    if before == S.APPROVED:
        _release_hold(loan)
    emit_credit_event(loan, "loan.withdrawn")
    return loan


@transaction.atomic
def loan_initiate_disbursement(*, actor: User, loan: Loan, channel: str, reference: str) -> Loan:
    if channel not in DisbursementChannel.values:
        raise ValidationFailed("Unknown disbursement channel.", details={"fields": {"channel": list(DisbursementChannel.values)}})
    loan = _lock(loan, "initiate_disbursement")
    if loan.disbursement_initiated_by_id is not None:
        raise IllegalTransition("The disbursement was already initiated.",
                                details={"current_state": loan.status, "action": "initiate_disbursement"})
    loan.disbursement_initiated_by, loan.disbursement_initiated_at = actor, timezone.now()
    loan.disbursement_channel, loan.disbursement_reference = channel, reference[:100]
    loan.save(update_fields=["disbursement_initiated_by", "disbursement_initiated_at", "disbursement_channel",
                             "disbursement_reference", "updated_at"])
    _audit(actor, loan, "initiate_disbursement", S.APPROVED, channel=channel, reference=reference[:100])
    return loan


# --- step-up -------------------------------------------------------------------------------------
STEP_UP_SECONDS = 300


def _token_hash(token: str) -> str:
    return hashlib.sha256(f"{settings.SECRET_KEY}:{token}".encode()).hexdigest()


@transaction.atomic
def step_up_grant(*, user: User, password: str) -> tuple[str, StepUpGrant]:
    if not user.check_password(password):
        audit_record(actor=user, action="auth.step_up_failed", target_type="user", target_id=user.pk, mfi=user.mfi)
        raise StepUpRequired("The password is not correct.", code="step_up_failed")
    token = secrets.token_urlsafe(32)
    grant = StepUpGrant.objects.create(user=user, token_hash=_token_hash(token),
                                       expires_at=timezone.now() + timedelta(seconds=STEP_UP_SECONDS))
    audit_record(actor=user, action="auth.step_up", target_type="user", target_id=user.pk, mfi=user.mfi)
    return token, grant


def _consume_step_up(user: User, token: str | None) -> None:
    if not token:
        raise StepUpRequired("Confirm your password again (step-up) before this disbursement.",
                             details={"step_up_url": "/api/v1/auth/step-up"})
    grant = StepUpGrant.objects.select_for_update().filter(token_hash=_token_hash(token), user=user).first()
    if grant is None or grant.used_at is not None or grant.expires_at <= timezone.now():
        raise StepUpRequired("The step-up is missing, used or expired; confirm your password again.",
                             details={"step_up_url": "/api/v1/auth/step-up"})
    grant.used_at = timezone.now()
    grant.save(update_fields=["used_at"])


# --- disbursement --------------------------------------------------------------------------------
@_audited_refusal("confirm_disbursement")
@transaction.atomic
def loan_confirm_disbursement(*, actor: User, loan: Loan, disbursement_date: date | None = None,
                              step_up_token: str | None = None) -> Loan:
    """The checker confirms: the schedule is fixed, installments stored, and the journal entry posted."""
    loan = _lock(loan, "confirm_disbursement")
    if loan.disbursement_initiated_by_id is None:
        raise IllegalTransition("The disbursement has not been initiated yet.",
                                details={"current_state": loan.status, "action": "confirm_disbursement"})
    if actor.pk in (loan.approved_by_id, loan.disbursement_initiated_by_id):
        raise MakerCheckerViolation(
            "The user who approved or initiated this disbursement cannot confirm it.",
            details={"approved_by": loan.approved_by.username, "initiated_by": loan.disbursement_initiated_by.username},
        )
    if loan.principal > loan.mfi.dual_control_threshold:
        if actor.role != Role.MFI_ADMIN:
            raise MakerCheckerViolation(
                f"Disbursements above {loan.mfi.dual_control_threshold} must be confirmed by an MFI admin.",
                details={"threshold": str(loan.mfi.dual_control_threshold)},
            )
        _consume_step_up(actor, step_up_token)
    check_rate_cap(loan.mfi, loan.annual_interest_rate)
    day = disbursement_date or timezone.localdate()
    sched = build_schedule(loan.product, principal=loan.principal, number_of_repayments=loan.number_of_repayments,
                           annual_interest_rate=loan.annual_interest_rate, disbursement_date=day)
    disbursement_fees = _store_installments(loan, sched)
    lines = [PostingLine(chart.LOAN_PORTFOLIO, debit=loan.principal, memo="principal disbursed"),
             PostingLine(chart.CASH, credit=loan.principal - disbursement_fees, memo=f"paid out by {loan.disbursement_channel}")]
    if disbursement_fees:
        lines.append(PostingLine(chart.FEE_INCOME, credit=disbursement_fees, memo="disbursement fees deducted"))
    entry = journal_post(
        mfi=loan.mfi, entry_date=day, lines=lines, description=f"Disbursement of loan {loan.reference}",
        reference_type="loan", reference_id=str(loan.pk), actor=actor, source_key=f"loan:{loan.pk}:disbursement",
    )
    loan.status, loan.disbursed_by, loan.disbursed_at = S.ACTIVE, actor, timezone.now()
    loan.disbursement_date, loan.schedule = day, sched
    stacking_activate(loan_exposure(loan))  # last: a refusal rolls everything above back
    loan.save(update_fields=["status", "disbursed_by", "disbursed_at", "disbursement_date", "schedule", "updated_at"])
    _audit(actor, loan, "disburse", S.APPROVED, journal_entry=entry.pk, disbursement_date=day.isoformat(),
           net_paid_out=str(loan.principal - disbursement_fees))
    emit_credit_event(loan, "loan.disbursed", outstanding_principal=loan.principal)
    notify_loan_disbursed(loan)  # SMS/e-mail to the borrower, sent after commit
    return loan


def _store_installments(loan: Loan, sched: dict) -> Decimal:
    """Store the schedule's rows; returns the disbursement charges (row 0), which are deducted from proceeds."""
    disbursement_fees = Decimal(0)
    for row in sched["installments"]:
        fees = Decimal(row["fees"])
        LoanInstallment.objects.create(
            loan=loan, number=row["number"], due_date=date.fromisoformat(row["due_date"]),
            principal=Decimal(row["principal"]), interest=Decimal(row["interest"]), fees=fees,
            penalties=Decimal(row["penalties"]), fees_paid=fees if row["number"] == 0 else Decimal(0),
        )
        if row["number"] == 0:
            disbursement_fees += fees
    return disbursement_fees


def principal_outstanding(loan: Loan) -> Decimal:
    total = Decimal(0)
    for inst in loan.installments.all():
        total += inst.principal - inst.principal_paid
    return total


@transaction.atomic
def loan_write_off(*, actor: User, loan: Loan, reason: str, write_off_date: date | None = None) -> Loan:
    if actor.role != Role.MFI_ADMIN:
        raise MakerCheckerViolation("Only an MFI admin can write a loan off.")
    if len(reason.strip()) < 5:
        raise ValidationFailed("Give the reason for the write-off.", details={"fields": {"reason": ["required"]}})
    loan = _lock(loan, "write_off")
    outstanding = principal_outstanding(loan)
    day = write_off_date or timezone.localdate()
    entry = None
    if outstanding > 0:
        entry = journal_post(
            mfi=loan.mfi, entry_date=day, description=f"Write-off of loan {loan.reference}",
            lines=[PostingLine(chart.WRITE_OFF_EXPENSE, debit=outstanding, memo=reason[:200]),
                   PostingLine(chart.LOAN_PORTFOLIO, credit=outstanding, memo="principal written off")],
            reference_type="loan", reference_id=str(loan.pk), actor=actor, source_key=f"loan:{loan.pk}:write_off",
        )
    loan.status, loan.written_off_at, loan.written_off_by = S.WRITTEN_OFF, timezone.now(), actor
    loan.write_off_reason = reason[:300]
    loan.save(update_fields=["status", "written_off_at", "written_off_by", "write_off_reason", "updated_at"])
    _audit(actor, loan, "write_off", S.ACTIVE, principal_written_off=str(outstanding),
           journal_entry=entry.pk if entry else None)
    emit_credit_event(loan, "loan.written_off", outstanding_principal=outstanding)
    _release_hold(loan)
    return loan


@transaction.atomic
def loan_reschedule(*, actor: User, loan: Loan, number_of_repayments: int, reason: str,
                    annual_interest_rate: Decimal | None = None, reschedule_date: date | None = None) -> Loan:
    """Replace an active loan by a new active loan for its outstanding principal, on new terms.

    The old loan ends in ``rescheduled``; the new one points back to it (``rescheduled_from``). Only principal moves:
    unpaid interest and fees of the old schedule are not carried over (cash-based accounting has not booked them),
    and no disbursement charges are taken again. The portfolio entry moves the principal from the old loan to the new
    one (same account, both references), so the trial balance is unchanged.
    """
    if actor.role != Role.MFI_ADMIN:
        raise MakerCheckerViolation("Only an MFI admin can reschedule a loan.")
    if len(reason.strip()) < 5:
        raise ValidationFailed("Give the reason for the rescheduling.", details={"fields": {"reason": ["required"]}})
    old = _lock(loan, "reschedule")
    outstanding = principal_outstanding(old)
    if outstanding <= 0:
        raise IllegalTransition("Nothing is outstanding to reschedule.",
                                details={"current_state": old.status, "action": "reschedule"})
    rate = old.annual_interest_rate if annual_interest_rate is None else annual_interest_rate
    check_rate_cap(old.mfi, rate)
    day = reschedule_date or timezone.localdate()
    installment_fees = [f for f in (old.product.fees or []) if f.get("charge_time") == "INSTALLMENT"]
    sched = build_schedule(old.product, principal=outstanding, number_of_repayments=number_of_repayments,
                           annual_interest_rate=rate, disbursement_date=day, fees=installment_fees)
    now = timezone.now()
    new = Loan.objects.create(
        mfi=old.mfi, product=old.product, borrower=old.borrower, reference=f"{old.reference}-R",
        status=S.ACTIVE, principal=outstanding, number_of_repayments=number_of_repayments,
        annual_interest_rate=rate, expected_disbursement_date=day, purpose=old.purpose, created_by=actor,
        approved_by=actor, approved_at=now, disbursed_by=actor, disbursed_at=now, disbursement_date=day,
        schedule=sched, rescheduled_from=old, reschedule_reason=reason[:300],
    )
    _store_installments(new, sched)
    entry = journal_post(
        mfi=old.mfi, entry_date=day, description=f"Rescheduling of loan {old.reference} into {new.reference}",
        lines=[PostingLine(chart.LOAN_PORTFOLIO, debit=outstanding, memo=f"into loan {new.reference}"),
               PostingLine(chart.LOAN_PORTFOLIO, credit=outstanding, memo=f"out of loan {old.reference}")],
        reference_type="loan", reference_id=str(new.pk), actor=actor, source_key=f"loan:{old.pk}:reschedule",
    )
    old.status, old.rescheduled_at, old.rescheduled_by, old.reschedule_reason = S.RESCHEDULED, now, actor, reason[:300]
    old.save(update_fields=["status", "rescheduled_at", "rescheduled_by", "reschedule_reason", "updated_at"])
    _audit(actor, old, "reschedule", S.ACTIVE, into_loan=new.pk, principal=str(outstanding), journal_entry=entry.pk)
    _audit(actor, new, "create_from_reschedule", None, from_loan=old.pk, number_of_repayments=number_of_repayments,
           annual_interest_rate=plain(rate), reschedule_date=day.isoformat())
    emit_credit_event(old, "loan.rescheduled", outstanding_principal=Decimal(0))
    emit_credit_event(new, "loan.disbursed", outstanding_principal=outstanding)
    stacking_hold_later(to=loan_exposure(new, principal=outstanding), drop=(network_loan_key(old),))
    return new
