"""Mobile-money collections (docs/mobile-money.md): a borrower pays an installment from their phone.

1. :func:`mobile_money_request` (the borrower, on the web page or over the API): the amount is checked against the
   loan (active, more than 0, at most what the loan still owes), a :class:`MobileMoneyPayment` is written and
   audited, and — after the commit — the provider is asked to prompt the phone (a failure to reach it marks the
   payment ``failed`` with the reason; nothing was taken).
2. :func:`mobile_money_confirm` (the provider's signed confirmation): ``success`` posts the repayment through the one
   posting path (:func:`node.repayments.services.repayment_post`, channel ``mobile_money``, the provider's transaction
   id as reference) in the same transaction as the payment's new state; ``failed`` records the reason. The same
   confirmation again changes nothing (idempotent by request and transaction id). Money the provider took is never
   dropped: a loan that cannot take it any more (closed, written off since) leaves the payment ``unapplied`` for
   staff to refund, and a success after a failure (a late confirmation) is still posted.

Postings are made by the MFI's mobile-money integration account (:func:`integration_actor`: a loan-officer account
that cannot sign in), so the audit trail and the receipt say who posted them.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from node.audit.services import audit_record
from node.borrowers.identity import IdentityFormatError, normalise_phone
from node.core.errors import (
    ApplicationError,
    Conflict,
    Forbidden,
    NotFound,
    ServiceUnavailable,
    ValidationFailed,
)
from node.ledger.chart import CASH, UNAPPLIED_RECEIPTS
from node.ledger.services import PostingLine, journal_post, ledger_ensure_chart
from node.loans.models import Loan, LoanStatus
from node.mfis.models import Mfi
from node.repayments import mobile_money_gateway as gateway
from node.repayments.models import (
    MobileMoneyPayment,
    MobileMoneyStatus,
    RepaymentChannel,
)
from node.repayments.selectors import loan_balance
from node.users.models import Role, User

log = logging.getLogger("letsema.mobile_money")
CENT = Decimal("0.01")


class SignatureInvalid(ApplicationError):
    code = "invalid_signature"
    status = 401


class MobileMoneyNotConfigured(ServiceUnavailable):
    code = "mobile_money_not_configured"


def integration_actor(mfi: Mfi) -> User:
    """The MFI's mobile-money integration account (created on first use): a loan officer of the MFI that is not
    active and has no usable password, so nobody can sign in as it; repayments it posts name it."""
    user = User.objects.filter(username=f"mobile-money@{mfi.code}").first()
    if user is None:
        user = User(username=f"mobile-money@{mfi.code}", role=Role.LOAN_OFFICER, mfi=mfi, is_active=False,
                    first_name="Mobile money", last_name="(integration)")
        user.set_unusable_password()
        user.save()
    return user


def _amount(value, field: str = "amount") -> Decimal:
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        amount = None
    if (amount is None or isinstance(value, (bool, float)) or not amount.is_finite() or amount <= 0
            or amount != amount.quantize(CENT) or amount >= Decimal("1e15")):
        raise ValidationFailed("The amount must be more than 0, with at most 2 decimal places.",
                               details={"fields": {field: ["a positive amount such as \"150.00\""]}})
    return amount


@transaction.atomic
def mobile_money_request(*, actor: User, loan: Loan, amount: Decimal, phone: str | None = None) -> MobileMoneyPayment:
    """The borrower asks to pay ``amount`` on their loan from ``phone`` (default: their registered phone)."""
    amount = _amount(amount)
    loan = Loan.objects.select_for_update(of=("self",)).select_related("mfi", "borrower").get(pk=loan.pk)
    if actor.role != Role.BORROWER or loan.borrower.user_id != actor.pk:
        raise Forbidden("Only the borrower pays their loan by mobile money here.")
    if loan.status != LoanStatus.ACTIVE:
        raise Conflict("Only an active loan can be repaid.", code="illegal_transition",
                       details={"current_state": loan.status})
    try:
        phone = normalise_phone(phone) if phone else loan.borrower.phone
    except IdentityFormatError as exc:
        raise ValidationFailed(str(exc), details={"fields": {"phone": [str(exc)]}}) from None
    today = timezone.localdate()
    owed = sum(loan_balance(loan=loan, as_of=max(today, loan.disbursement_date)).outstanding.values(), Decimal(0))
    if amount > owed:  # (an early payoff with unearned interest waived is done at the branch: loan_payoff)
        raise ValidationFailed(f"That is more than the loan still owes ({owed:.2f}).", code="amount_above_balance",
                               details={"fields": {"amount": [f"at most {owed:.2f}"]}, "outstanding": f"{owed:.2f}"})
    now = timezone.now()
    waiting = (MobileMoneyPayment.objects.filter(loan=loan, status=MobileMoneyStatus.REQUESTED,
                                                 requested_at__gt=now - timedelta(
                                                     seconds=settings.MOBILE_MONEY_PROMPT_SECONDS))
               .order_by("-requested_at").first())
    if waiting is not None:
        raise Conflict("A payment prompt was sent to the phone moments ago: approve or decline it first.",
                       code="payment_pending", details={"request_id": str(waiting.request_id)})
    payment = MobileMoneyPayment.objects.create(request_id=uuid.uuid4(), mfi=loan.mfi, loan=loan, requested_by=actor,
                                                phone=phone, amount=amount, requested_at=now)
    audit_record(actor=actor, action="mobile_money.request", target_type="loan", target_id=loan.pk, mfi=loan.mfi,
                 after={"request_id": str(payment.request_id), "amount": f"{amount:.2f}"})
    transaction.on_commit(lambda: _prompt(payment.pk))
    return payment


def _prompt(payment_id: int) -> None:
    p = MobileMoneyPayment.objects.select_related("loan", "mfi").get(pk=payment_id)
    try:
        gateway.request_payment(
            request_id=str(p.request_id), phone=p.phone, amount=f"{p.amount:.2f}", currency=settings.DISTRICT.currency,
            description=f"{p.mfi.name} loan {p.loan.reference}",
            callback_url=settings.DISTRICT.public_url.rstrip("/") + "/api/v1/mobile-money/confirmations")
    except gateway.PromptFailed as exc:
        log.warning("mobile money prompt failed", extra={"request_id": str(p.request_id), "error": str(exc)})
        MobileMoneyPayment.objects.filter(pk=p.pk, status=MobileMoneyStatus.REQUESTED).update(
            status=MobileMoneyStatus.FAILED, failure_reason=f"The payment could not be started: {exc}"[:300],
            completed_at=timezone.now())


def _confirmation(body: bytes) -> dict:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict):
        raise ValidationFailed("The confirmation is not a JSON object.")
    errors = {}
    try:
        data["request_id"] = uuid.UUID(str(data.get("request_id", "")))
    except ValueError:
        errors["request_id"] = ["the request_id the prompt was sent with"]
    if data.get("status") not in ("success", "failed"):
        errors["status"] = ["success or failed"]
    txn = data.get("transaction_id")
    if data.get("status") == "success" and (not isinstance(txn, str) or not 1 <= len(txn.strip()) <= 64):
        errors["transaction_id"] = ["the provider's transaction id (1 to 64 characters)"]
    if errors:
        raise ValidationFailed("The confirmation has invalid fields.", details={"fields": errors})
    if data["status"] == "success":
        data["amount"] = _amount(data.get("amount"))
        data["transaction_id"] = txn.strip()
    data["reason"] = str(data.get("reason") or "")[:200]
    return data


def mobile_money_confirm(*, body: bytes, timestamp: str, signature: str) -> MobileMoneyPayment:
    """The provider's confirmation of a prompt (the raw body as received, its signature headers)."""
    if not settings.MOBILE_MONEY_SECRET:
        raise MobileMoneyNotConfigured("This node has no mobile-money secret; confirmations cannot be checked.")
    if not gateway.signature_valid(settings.MOBILE_MONEY_SECRET, timestamp or "", body, signature or "",
                                   now=time.time(), window=settings.MOBILE_MONEY_SIGNATURE_WINDOW_SECONDS):
        log.warning("mobile money confirmation refused: bad signature or timestamp", extra={"timestamp": timestamp})
        raise SignatureInvalid("The confirmation's signature or timestamp is not valid.")
    data = _confirmation(body)
    with transaction.atomic():
        p = (MobileMoneyPayment.objects.select_for_update(of=("self",)).select_related("loan", "mfi")
             .filter(request_id=data["request_id"]).first())
        if p is None:
            raise NotFound("No payment was requested with this request_id.")
        if data["status"] == "failed":
            return _failed(p, data["reason"])
        return _paid(p, data)


def _failed(p: MobileMoneyPayment, reason: str) -> MobileMoneyPayment:
    if p.status == MobileMoneyStatus.FAILED:
        return p  # the same answer again
    if p.status != MobileMoneyStatus.REQUESTED:
        raise Conflict("The payment was already confirmed as paid.", code="already_completed",
                       details={"status": p.status})
    p.status, p.failure_reason, p.completed_at = MobileMoneyStatus.FAILED, reason or "declined", timezone.now()
    p.save(update_fields=["status", "failure_reason", "completed_at"])
    audit_record(actor=None, action="mobile_money.failed", target_type="loan", target_id=p.loan_id, mfi=p.mfi,
                 after={"request_id": str(p.request_id), "reason": p.failure_reason})
    return p


def _paid(p: MobileMoneyPayment, data: dict) -> MobileMoneyPayment:
    txn, received = data["transaction_id"], data["amount"]
    if p.provider_transaction_id is not None:
        if p.provider_transaction_id == txn and p.amount_received == received:
            return p  # the same confirmation again: nothing posted twice
        raise Conflict("The payment was already confirmed with another transaction.", code="already_completed",
                       details={"status": p.status})
    if MobileMoneyPayment.objects.filter(provider_transaction_id=txn).exists():
        raise Conflict("This transaction id already confirmed another payment.", code="transaction_id_reused")
    # the one posting path (imported late: services is large and imports much)
    from node.repayments.services import repayment_post

    p.provider_transaction_id, p.amount_received, p.completed_at = txn, received, timezone.now()
    try:
        with transaction.atomic():
            rep = repayment_post(actor=integration_actor(p.mfi), loan=p.loan, amount=received,
                                 payment_date=timezone.localdate(), channel=RepaymentChannel.MOBILE_MONEY,
                                 reference=txn)
    except ApplicationError as exc:  # the money was taken: on the books as owed back, listed for a refund
        p.status, p.failure_reason = MobileMoneyStatus.UNAPPLIED, f"{exc.code}: {exc.message}"[:300]
        log.warning("mobile money payment not applied", extra={"request_id": str(p.request_id), "code": exc.code})
        _post_suspense(p, "received")
    else:
        p.status, p.repayment, p.failure_reason = MobileMoneyStatus.PAID, rep, ""
    p.save(update_fields=["status", "provider_transaction_id", "amount_received", "completed_at", "failure_reason",
                          "repayment"])
    audit_record(actor=None, action="mobile_money.confirmed", target_type="loan", target_id=p.loan_id, mfi=p.mfi,
                 after={"request_id": str(p.request_id), "transaction_id": txn, "amount": f"{received:.2f}",
                        "status": p.status, "receipt": p.repayment.receipt_number if p.repayment else None})
    return p


def _post_suspense(p: MobileMoneyPayment, what: str, actor: User | None = None) -> None:
    """Money received that no loan took: Dr Cash / Cr Unapplied receipts ("received"); paid back: the reverse
    ("refund"). Source key per payment and step, so each is on the books once."""
    ledger_ensure_chart(mfi=p.mfi)  # (an MFI created before account 2150 existed gets it)
    amount = p.amount_received
    legs = ([PostingLine(CASH, debit=amount), PostingLine(UNAPPLIED_RECEIPTS, credit=amount)] if what == "received"
            else [PostingLine(UNAPPLIED_RECEIPTS, debit=amount), PostingLine(CASH, credit=amount)])
    journal_post(mfi=p.mfi, entry_date=timezone.localdate(), lines=legs, actor=actor,
                 source_key=f"mobile_money:{p.pk}:{what}", reference_type="mobile_money",
                 reference_id=p.provider_transaction_id or "",
                 description=(f"Mobile money {p.provider_transaction_id} for loan {p.loan.reference}: "
                              + ("received, no loan could take it" if what == "received" else "paid back")))


@transaction.atomic
def mobile_money_refund(*, actor: User, payment: MobileMoneyPayment, reference: str = "") -> MobileMoneyPayment:
    """An MFI admin records that an ``unapplied`` payment was paid back to the payer (by mobile money, cash or
    bank, outside Letsema): Dr Unapplied receipts / Cr Cash, the payment ``refunded``, audited."""
    p = MobileMoneyPayment.objects.select_for_update(of=("self",)).select_related("loan", "mfi").get(pk=payment.pk)
    if actor.role != Role.MFI_ADMIN or actor.mfi_id != p.mfi_id:
        raise Forbidden("Only the MFI's admins record a refund.")
    reference = (reference or "").strip()
    if len(reference) > 100:
        raise ValidationFailed("The reference is too long.", details={"fields": {"reference": ["at most 100 characters"]}})
    if p.status == MobileMoneyStatus.REFUNDED:
        raise Conflict("This payment was already refunded.", code="already_refunded")
    if p.status != MobileMoneyStatus.UNAPPLIED:
        raise Conflict("Only money that no loan took can be refunded here; a posted repayment is reversed instead.",
                       code="illegal_transition", details={"current_state": p.status})
    p.status, p.refunded_at, p.refunded_by, p.refund_reference = (MobileMoneyStatus.REFUNDED, timezone.now(), actor,
                                                                  reference)
    p.save(update_fields=["status", "refunded_at", "refunded_by", "refund_reference"])
    _post_suspense(p, "refund", actor=actor)
    audit_record(actor=actor, action="mobile_money.refund", target_type="loan", target_id=p.loan_id, mfi=p.mfi,
                 after={"request_id": str(p.request_id), "amount": f"{p.amount_received:.2f}", "reference": reference})
    return p
