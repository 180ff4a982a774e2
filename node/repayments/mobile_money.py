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

3. :func:`mobile_money_paybill` (the provider's signed notice of money the payer sent to the MFI's business number,
   "Pay Bill", with the loan reference as the account): posted on that loan like a confirmation; money whose account
   matches no loan that can take it is ``unapplied`` and on the books (Dr Cash / Cr Unapplied receipts) until an MFI
   admin applies it to a loan (:func:`mobile_money_apply`) or pays it back (:func:`mobile_money_refund`).

Postings are made by the MFI's mobile-money integration account (:func:`integration_actor`: a loan-officer account
that cannot sign in), so the audit trail and the receipt say who posted them.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

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
    MobileMoneyKind,
    MobileMoneyPayment,
    MobileMoneyStatus,
    RepaymentChannel,
)
from node.repayments.selectors import loan_balance, mfi_loan_by_reference, normalise_account
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


def _check_signature(body: bytes, timestamp: str, signature: str, what: str) -> None:
    """Everything the provider sends is signed with the shared secret (``gateway.signature_valid``)."""
    if not settings.MOBILE_MONEY_SECRET:
        raise MobileMoneyNotConfigured(f"This node has no mobile-money secret; {what}s cannot be checked.")
    if not gateway.signature_valid(settings.MOBILE_MONEY_SECRET, timestamp or "", body, signature or "",
                                   now=time.time(), window=settings.MOBILE_MONEY_SIGNATURE_WINDOW_SECONDS):
        log.warning(f"mobile money {what} refused: bad signature or timestamp", extra={"timestamp": timestamp})
        raise SignatureInvalid(f"The {what}'s signature or timestamp is not valid.")


def mobile_money_confirm(*, body: bytes, timestamp: str, signature: str) -> MobileMoneyPayment:
    """The provider's confirmation of a prompt (the raw body as received, its signature headers)."""
    _check_signature(body, timestamp, signature, "confirmation")
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
    p.provider_transaction_id, p.amount_received, p.completed_at = txn, received, timezone.now()
    _post_received(p, timezone.localdate())
    p.save(update_fields=["status", "provider_transaction_id", "amount_received", "completed_at", "failure_reason",
                          "repayment"])
    audit_record(actor=None, action="mobile_money.confirmed", target_type="loan", target_id=p.loan_id, mfi=p.mfi,
                 after={"request_id": str(p.request_id), "transaction_id": txn, "amount": f"{received:.2f}",
                        "status": p.status, "receipt": p.repayment.receipt_number if p.repayment else None})
    return p


def _post_received(p: MobileMoneyPayment, paid_on, *, unmatched: str = "") -> None:
    """Money the provider took (``p.amount_received``): posted on ``p.loan`` through the one posting path, or — no
    loan (``unmatched`` says why) or one that refuses it — ``unapplied`` with the reason and on the books as owed
    back. Sets the payment's status, repayment and reason (the caller saves)."""
    # the one posting path (imported late: services is large and imports much)
    from node.repayments.services import repayment_post

    if p.loan_id is not None:
        try:
            with transaction.atomic():
                rep = repayment_post(actor=integration_actor(p.mfi), loan=p.loan, amount=p.amount_received,
                                     payment_date=paid_on, channel=RepaymentChannel.MOBILE_MONEY,
                                     reference=p.provider_transaction_id)
        except ApplicationError as exc:
            unmatched = f"{exc.code}: {exc.message}"
        else:
            p.status, p.repayment, p.failure_reason = MobileMoneyStatus.PAID, rep, ""
            return
    # the money was taken: on the books as owed back, listed for staff to apply or refund
    p.status, p.repayment, p.failure_reason = MobileMoneyStatus.UNAPPLIED, None, unmatched[:300]
    log.warning("mobile money payment not applied", extra={"request_id": str(p.request_id), "reason": unmatched})
    _post_suspense(p, "received")


def _post_suspense(p: MobileMoneyPayment, what: str, actor: User | None = None) -> None:
    """Money received that no loan took: Dr Cash / Cr Unapplied receipts ("received"); paid back, or later applied
    to a loan (whose repayment then books the cash in again): the reverse ("refund", "applied"). Source key per
    payment and step, so each is on the books once."""
    ledger_ensure_chart(mfi=p.mfi)  # (an MFI created before account 2150 existed gets it)
    amount = p.amount_received
    legs = ([PostingLine(CASH, debit=amount), PostingLine(UNAPPLIED_RECEIPTS, credit=amount)] if what == "received"
            else [PostingLine(UNAPPLIED_RECEIPTS, debit=amount), PostingLine(CASH, credit=amount)])
    target = f"loan {p.loan.reference}" if p.loan_id else f"account {p.account_reference!r}"
    journal_post(mfi=p.mfi, entry_date=timezone.localdate(), lines=legs, actor=actor,
                 source_key=f"mobile_money:{p.pk}:{what}", reference_type="mobile_money",
                 reference_id=p.provider_transaction_id or "",
                 description=f"Mobile money {p.provider_transaction_id} for {target}: " + {
                     "received": "received, no loan could take it", "refund": "paid back",
                     "applied": "applied to the loan (posted as its repayment)"}[what])


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
    audit_record(actor=actor, action="mobile_money.refund", **_target(p), mfi=p.mfi,
                 after={"request_id": str(p.request_id), "amount": f"{p.amount_received:.2f}", "reference": reference})
    return p


def _target(p: MobileMoneyPayment) -> dict:
    """What an audit row of ``p`` is about: its loan, or — paybill money no loan took — the payment itself."""
    if p.loan_id is not None:
        return {"target_type": "loan", "target_id": p.loan_id}
    return {"target_type": "mobile_money_payment", "target_id": p.pk}


# --- paybill: the payer starts it on the phone -----------------------------------------------------------------------

PAYBILL_PHONE = re.compile(r"^\+?[0-9]{6,15}$")
PAYBILL_MAX_AGE = timedelta(days=30)  # a notice about money older than this is a mistake, not a late delivery
PAYBILL_LOCK_CLASS = 7301  # pg_advisory_xact_lock(class, hashtext(transaction id)): one notice applied at a time


def _paybill_notice(body: bytes) -> dict:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict):
        raise ValidationFailed("The notice is not a JSON object.")
    errors: dict[str, list[str]] = {}
    out: dict = {}
    for field, limit in (("transaction_id", 64), ("business_number", 20), ("account_reference", 64)):
        value = data.get(field)
        if not isinstance(value, str) or not 1 <= len(value.strip()) <= limit:
            errors[field] = [f"1 to {limit} characters"]
        else:
            out[field] = value.strip()
    phone = data.get("phone")
    if not isinstance(phone, str) or not PAYBILL_PHONE.match(phone.strip()):
        errors["phone"] = ["the payer's number, digits with an optional leading +"]
    else:
        out["phone"] = phone.strip()
    now = timezone.now()
    out["paid_at"] = now
    if data.get("paid_at") is not None:
        paid_at = parse_datetime(data["paid_at"]) if isinstance(data["paid_at"], str) else None
        if paid_at is None or paid_at.tzinfo is None:
            errors["paid_at"] = ["an ISO 8601 date and time with its offset, e.g. 2026-12-07T10:15:00+02:00"]
        elif not now - PAYBILL_MAX_AGE <= paid_at <= now + timedelta(minutes=5):
            errors["paid_at"] = ["within the last 30 days"]
        else:
            out["paid_at"] = paid_at
    if errors:
        raise ValidationFailed("The paybill notice has invalid fields.", details={"fields": errors})
    out["amount"] = _amount(data.get("amount"))
    return out


def mobile_money_paybill(*, body: bytes, timestamp: str, signature: str) -> tuple[MobileMoneyPayment, bool]:
    """The provider's signed notice of money a payer sent to an MFI's business number ("Pay Bill") with an
    account reference: posted on the MFI's loan with that reference (from the day it was paid), else ``unapplied``
    and on the books (no such loan, or the loan refused it — closed, written off). Answers the payment and whether
    it was new; the same notice again changes nothing; another notice with a used transaction id is refused
    (``transaction_id_reused``); a business number no MFI of this node has: 404 ``unknown_business_number``."""
    _check_signature(body, timestamp, signature, "paybill notice")
    data = _paybill_notice(body)
    txn = data["transaction_id"]
    with transaction.atomic():
        with connection.cursor() as cur:  # two deliveries of one notice at once: the second waits, then replays
            cur.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [PAYBILL_LOCK_CLASS, txn])
        known = (MobileMoneyPayment.objects.select_related("loan", "mfi", "repayment")
                 .filter(provider_transaction_id=txn).first())
        if known is not None:
            if (known.kind == MobileMoneyKind.PAYBILL and known.mfi.paybill_number == data["business_number"]
                    and known.amount_received == data["amount"]
                    and known.account_reference == data["account_reference"]):
                return known, False  # the provider retried: nothing posted twice
            raise Conflict("This transaction id already came with another payment.", code="transaction_id_reused",
                           details={"payment": known.pk})
        mfi = Mfi.objects.filter(paybill_number=data["business_number"], is_active=True).first()
        if mfi is None:
            raise NotFound("No MFI of this node has that business number.", code="unknown_business_number",
                           details={"business_number": data["business_number"]})
        account = normalise_account(data["account_reference"])
        loan = mfi_loan_by_reference(mfi_id=mfi.pk, reference=account)
        now = timezone.now()
        p = MobileMoneyPayment.objects.create(
            request_id=uuid.uuid4(), kind=MobileMoneyKind.PAYBILL, mfi=mfi, loan=loan, phone=data["phone"][:20],
            account_reference=data["account_reference"], amount=data["amount"], status=MobileMoneyStatus.UNAPPLIED,
            requested_at=now, completed_at=now, provider_transaction_id=txn, amount_received=data["amount"])
        paid_on = min(timezone.localtime(data["paid_at"]).date(), timezone.localdate())
        _post_received(p, paid_on, unmatched="" if loan else f"no loan of {mfi.name} has the reference {account!r}")
        p.save(update_fields=["status", "repayment", "failure_reason"])
        audit_record(actor=None, action="mobile_money.paybill", **_target(p), mfi=mfi,
                     after={"transaction_id": txn, "account_reference": data["account_reference"],
                            "amount": f"{p.amount_received:.2f}", "status": p.status,
                            "receipt": p.repayment.receipt_number if p.repayment else None,
                            "reason": p.failure_reason})
    return p, True


def mobile_money_paybill_check(*, body: bytes, timestamp: str, signature: str) -> dict:
    """The provider asks, before it takes the payer's money, whether the MFI will take a paybill payment (M-Pesa's
    C2B "validation"; the same signed body as the notice). Accepted when the business number is an MFI of this node
    and the account is one of its active loans; otherwise refused with a stable ``reason``
    (``unknown_business_number``, ``unknown_account``, ``loan_not_active``), so the payer is told at the phone and
    the money never becomes ``unapplied``. Reads only: nothing is written, nothing reserved (a loan closed between
    the check and the notice still ends ``unapplied``, as without a check)."""
    _check_signature(body, timestamp, signature, "paybill check")
    data = _paybill_notice(body)
    answer = {"accept": False, "transaction_id": data["transaction_id"], "business_number": data["business_number"],
              "account_reference": data["account_reference"]}
    mfi = Mfi.objects.filter(paybill_number=data["business_number"], is_active=True).first()
    loan = mfi_loan_by_reference(mfi_id=mfi.pk, reference=data["account_reference"]) if mfi else None
    if mfi is None:
        answer.update(reason="unknown_business_number", message="No MFI of this node has that business number.")
    elif loan is None:
        answer.update(reason="unknown_account",
                      message=f"{mfi.name} has no loan with the account {normalise_account(data['account_reference'])}.")
    elif loan.status != LoanStatus.ACTIVE:
        answer.update(reason="loan_not_active", message=f"The loan {loan.reference} is {loan.status}: it takes no "
                      "payments.")
    else:
        answer.update(accept=True, mfi=mfi.code, loan_reference=loan.reference)
    log.info("mobile money paybill check", extra={"transaction_id": data["transaction_id"], "accept": answer["accept"],
                                                   "reason": answer.get("reason", "")})
    return answer


@transaction.atomic
def mobile_money_apply(*, actor: User, payment: MobileMoneyPayment, loan: Loan) -> MobileMoneyPayment:
    """An MFI admin applies ``unapplied`` money (a paybill payment with a mistyped account, a payment for a loan
    closed since) to an active loan of the MFI: the repayment is posted as of the day the money came in (posted by
    the admin, the provider's transaction id as reference) and the money leaves Unapplied receipts (Dr 2150 / Cr
    Cash, the repayment booking the cash in again); the payment is ``paid`` with who applied it; audited
    ``mobile_money.apply``. Refused: not the MFI's admin (403), not unapplied (``illegal_transition``), another
    MFI's loan (``not_found``), a loan that cannot take it (the posting's own error)."""
    from node.repayments.services import repayment_post

    p = MobileMoneyPayment.objects.select_for_update(of=("self",)).select_related("loan", "mfi").get(pk=payment.pk)
    if actor.role != Role.MFI_ADMIN or actor.mfi_id != p.mfi_id:
        raise Forbidden("Only the MFI's admins apply money no loan took.")
    if p.status != MobileMoneyStatus.UNAPPLIED:
        raise Conflict("Only money that no loan took can be applied to a loan.", code="illegal_transition",
                       details={"current_state": p.status})
    if loan.mfi_id != p.mfi_id:
        raise NotFound("The MFI has no such loan.")
    received_on = timezone.localtime(p.completed_at).date()
    rep = repayment_post(actor=actor, loan=loan, amount=p.amount_received, payment_date=received_on,
                         channel=RepaymentChannel.MOBILE_MONEY, reference=p.provider_transaction_id)
    before = {"status": p.status, "loan": p.loan_id, "reason": p.failure_reason}
    p.loan, p.status, p.repayment, p.applied_at, p.applied_by = loan, MobileMoneyStatus.PAID, rep, timezone.now(), actor
    p.save(update_fields=["loan", "status", "repayment", "applied_at", "applied_by"])
    _post_suspense(p, "applied", actor=actor)
    audit_record(actor=actor, action="mobile_money.apply", target_type="loan", target_id=loan.pk, mfi=p.mfi,
                 before=before, after={"payment": p.pk, "transaction_id": p.provider_transaction_id,
                                       "amount": f"{p.amount_received:.2f}", "receipt": rep.receipt_number})
    return p
