"""Credit disputes: a borrower says a loan's record in their network credit history is wrong.

As at a credit bureau, the borrower files the dispute wherever they sign in; it goes to the lender that wrote the
record (the node owning the loan — over the signed channel when that is another district), which must answer by
``respond_by``. Until it does, every credit report shows the loan as under dispute (``dispute.opened`` in the
borrower's ring partition); the lender's answer (``dispute.resolved``: corrected or confirmed) clears the flag.
The lender corrects a record the usual way (a reversal, a correcting posting); the dispute records the answer.
The free-text details and the lender's note stay on the owning node: the ring carries only the reason and outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction

from federation.fanout import BadResponse, fanout
from federation.peers import get_directory
from node.audit.services import audit_record
from node.borrowers.models import Borrower
from node.borrowers.selectors import borrower_partition_keys
from node.core.errors import Conflict, NotFound, ServiceUnavailable, ValidationFailed
from node.credit.models import CreditDispute, DisputeReason, DisputeStatus
from node.credit.report import DISPUTE_OPENED, DISPUTE_RESOLVED
from node.credit.services import credit_history_read
from node.loans.models import Loan
from node.notifications.services import notify_dispute_answered
from node.peers.schemas import DisputeAnswer, DisputeRequest
from node.users.models import User
from replication.outbox import outbox_enqueue

DISPUTES_PATH = "/_federation/v1/disputes"
MAX_DETAILS = 1000
OUTCOMES = (DisputeStatus.CORRECTED, DisputeStatus.REJECTED)


class DisputeAlreadyOpen(Conflict):
    code = "dispute_already_open"


class DisputeNotOpen(Conflict):
    code = "dispute_not_open"


class UnknownCreditEntry(NotFound):
    code = "unknown_credit_entry"


class LenderDistrictUnavailable(ServiceUnavailable):
    code = "lender_district_unavailable"


@dataclass(frozen=True)
class DisputeFiled:
    dispute_id: str
    loan_key: str
    lender_district: str
    respond_by: date


def response_days() -> int:
    return settings.LETSEMA_DISPUTE_RESPONSE_DAYS


def _check_input(reason: str, details: str) -> None:
    fields = {}
    if reason not in DisputeReason.values:
        fields["reason"] = [f"One of: {', '.join(DisputeReason.values)}."]
    if not isinstance(details, str) or len(details) > MAX_DETAILS:
        fields["details"] = [f"At most {MAX_DETAILS} characters."]
    elif reason == DisputeReason.OTHER and not details.strip():
        fields["details"] = ["Say what is wrong when the reason is 'other'."]
    if fields:
        raise ValidationFailed("The dispute is not valid.", details={"fields": fields})


# --- the lender's node (owns the loan) ------------------------------------------------------------------------
def dispute_open(*, borrower_key: str, loan_ref: str, reason: str, details: str, filed_at: str) -> CreditDispute:
    """Open a dispute of loan ``loan_ref`` (of this node) for the borrower ``borrower_key``: one open dispute per
    loan; audited, and ``dispute.opened`` goes to the borrower's ring partition in the same transaction."""
    _check_input(reason, details)
    with transaction.atomic():
        loan = (Loan.objects.select_for_update(of=("self",)).select_related("borrower", "mfi")
                .filter(reference=loan_ref).first())
        if loan is None or borrower_key not in borrower_partition_keys(loan.borrower):
            raise UnknownCreditEntry("That loan is not in your credit history.", details={"loan_ref": loan_ref})
        if CreditDispute.objects.filter(loan=loan, status=DisputeStatus.OPEN).exists():
            raise DisputeAlreadyOpen("This loan's record is already under dispute; the lender has not answered yet.")
        now = datetime.now(UTC)
        respond_by = now.date() + timedelta(days=response_days())
        try:
            with transaction.atomic():
                d = CreditDispute.objects.create(loan=loan, mfi=loan.mfi, borrower_key=loan.borrower.borrower_key,
                                                 reason=reason, details=details.strip(), filed_at_district=filed_at,
                                                 opened_at=now, respond_by=respond_by)
        except IntegrityError:  # a concurrent filing won the one open dispute per loan
            raise DisputeAlreadyOpen("This loan's record is already under dispute.") from None
        audit_record(actor=None, action="credit.dispute_opened", target_type="loan", target_id=loan.pk, mfi=loan.mfi,
                     after={"dispute_id": str(d.id), "reason": reason, "filed_at": filed_at,
                            "respond_by": respond_by.isoformat()})
        outbox_enqueue(event_type=DISPUTE_OPENED, partition_key=loan.borrower.borrower_key, payload={
            "schema": 1, "dispute_id": str(d.id), "district": settings.DISTRICT.code, "mfi": loan.mfi.code,
            "loan_ref": loan.reference, "reason": reason, "respond_by": respond_by.isoformat()})
    return d


def dispute_open_for_peer(request: DisputeRequest, *, origin: str) -> DisputeAnswer:
    """``POST /_federation/v1/disputes``: a refusal is an answer (``filed: false`` with its code), not an error."""
    try:
        d = dispute_open(borrower_key=request.borrower_key, loan_ref=request.loan_ref, reason=request.reason,
                         details=request.details, filed_at=origin)
    except (UnknownCreditEntry, DisputeAlreadyOpen, ValidationFailed) as exc:
        return DisputeAnswer(settings.DISTRICT.code, False, None, None, exc.code, exc.message)
    return DisputeAnswer(settings.DISTRICT.code, True, str(d.id), d.respond_by.isoformat(), "", "")


def dispute_resolve(*, actor: User, dispute_id, outcome: str, note: str) -> CreditDispute:
    """The lender answers: ``corrected`` (the record was fixed) or ``rejected`` (the record stands), with a note for
    the borrower. Staff of the loan's MFI only; audited; ``dispute.resolved`` goes to the ring."""
    fields = {}
    if outcome not in OUTCOMES:
        fields["outcome"] = [f"One of: {', '.join(OUTCOMES)}."]
    if not isinstance(note, str) or not note.strip() or len(note) > MAX_DETAILS:
        fields["note"] = [f"Explain the answer to the borrower (1 to {MAX_DETAILS} characters)."]
    if fields:
        raise ValidationFailed("The answer is not valid.", details={"fields": fields})
    with transaction.atomic():
        d = (CreditDispute.objects.select_for_update(of=("self",)).select_related("loan", "mfi")
             .filter(pk=dispute_id, mfi_id=actor.mfi_id).first() if actor.mfi_id else None)
        if d is None:
            raise NotFound("No such dispute for your MFI.")
        if d.status != DisputeStatus.OPEN:
            raise DisputeNotOpen(f"This dispute was already answered ({d.status}).", details={"status": d.status})
        d.status, d.resolved_at, d.resolved_by, d.resolution_note = outcome, datetime.now(UTC), actor, note.strip()
        d.save(update_fields=["status", "resolved_at", "resolved_by", "resolution_note"])
        audit_record(actor=actor, action="credit.dispute_resolved", target_type="loan", target_id=d.loan_id,
                     mfi=d.mfi, before={"status": DisputeStatus.OPEN},
                     after={"dispute_id": str(d.id), "status": outcome})
        outbox_enqueue(event_type=DISPUTE_RESOLVED, partition_key=d.borrower_key, payload={
            "schema": 1, "dispute_id": str(d.id), "district": settings.DISTRICT.code, "mfi": d.mfi.code,
            "loan_ref": d.loan.reference, "outcome": outcome})
        notify_dispute_answered(d)
    return d


def disputes_for_staff(actor: User, *, status: str = "open"):
    """The disputes of the actor's MFI (``status``: open, corrected, rejected or all), oldest deadline first."""
    if status not in (*DisputeStatus.values, "all"):
        raise ValidationFailed("Unknown status.", details={"fields": {"status": [*DisputeStatus.values, "all"]}})
    qs = CreditDispute.objects.filter(mfi_id=actor.mfi_id).select_related("loan", "resolved_by")
    if status != "all":
        qs = qs.filter(status=status)
    return qs.order_by("respond_by", "opened_at")


# --- any node: the borrower files ------------------------------------------------------------------------------
def _parse_answer(district: str, data) -> DisputeAnswer:
    ans = DisputeAnswer.from_json(data)
    if ans.district != district:
        raise BadResponse("the answer is from another district")
    return ans


def dispute_file(*, borrower: Borrower, loan_key: str, reason: str, details: str) -> DisputeFiled:
    """The borrower disputes a loan of their own credit history (``loan_key`` as the history lists it,
    ``<district>/<loan reference>``). The dispute is opened at the lender's node; nothing is kept here when it
    cannot be (503 ``lender_district_unavailable``: try again)."""
    _check_input(reason, details)
    district, _, loan_ref = (loan_key or "").partition("/")
    history = credit_history_read(borrower)
    if not loan_ref or loan_key not in {x.loan_key for x in history.loans}:
        raise UnknownCreditEntry("That loan is not in your credit history.", details={"loan_key": loan_key})
    own = settings.DISTRICT.code
    if district == own:
        d = dispute_open(borrower_key=borrower.borrower_key, loan_ref=loan_ref, reason=reason, details=details,
                         filed_at=own)
        filed = DisputeFiled(str(d.id), loan_key, own, d.respond_by)
    else:
        peer = get_directory().get(district)
        if peer is None or not peer.active:
            raise LenderDistrictUnavailable("The lender's district node is not reachable from here; nothing was "
                                            "filed. Try again later.", details={"district": district})
        req = DisputeRequest(borrower.borrower_key, loan_ref, reason, details)
        result = fanout("POST", DISPUTES_PATH, req.to_json(), peers=[peer],
                        timeout=float(getattr(settings, "LETSEMA_VISITOR_AUTH_TIMEOUT", 5.0)), parse=_parse_answer)
        answer: DisputeAnswer | None = result.answered.get(district)
        if answer is None:
            raise LenderDistrictUnavailable("The lender's district node did not answer; nothing was filed. Try again "
                                            "later.", details={"district": district,
                                                               "reason": result.missing.get(district, "")})
        if not answer.filed:  # the lender's refusal, with its own code (unknown entry, already open, invalid)
            refusal = {UnknownCreditEntry.code: UnknownCreditEntry, DisputeAlreadyOpen.code: DisputeAlreadyOpen}
            raise refusal.get(answer.code, ValidationFailed)(answer.message, code=answer.code)
        filed = DisputeFiled(answer.dispute_id, loan_key, district, date.fromisoformat(answer.respond_by))
    with transaction.atomic():
        audit_record(actor=borrower.user, action="credit.dispute_filed", target_type="borrower", target_id=borrower.pk,
                     after={"dispute_id": filed.dispute_id, "loan_key": loan_key, "reason": reason,
                            "lender_district": filed.lender_district})
    return filed
