"""Credit look-ups: every report is consented, logged as an enquiry in the ring (which MFI looked, when, why) and
audited locally, before the borrower's partition is read. Without a ring quorum there is no report (503)."""

from __future__ import annotations

import logging
import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction

from node.audit.models import AuditEvent
from node.audit.services import audit_record
from node.borrowers.models import Borrower
from node.borrowers.selectors import borrower_partition_keys
from node.borrowers.services import consent_require
from node.core.errors import ValidationFailed
from node.credit.errors import CreditNetworkUnavailable, EnquiryLimitReached
from node.credit.report import ENQUIRY, CreditReport, RingRow, fold
from node.credit.score import Score, score_report, scorecard_from_settings
from node.users.models import User
from replication.events import event_insert, events_read
from replication.ring import RingUnavailable

# why an MFI may look (a bureau's permissible purposes)
PURPOSES = ("loan_application", "account_review", "collections")
ENQUIRY_WINDOW = timedelta(hours=1)
log = logging.getLogger("letsema.credit")


@dataclass(frozen=True)
class Assessment:
    report: CreditReport
    score: Score
    enquiry_id: uuid.UUID
    new_monthly_installment: Decimal


def credit_assess(*, actor: User, borrower: Borrower, purpose: str, loan_key: str | None = None,
                  new_monthly_installment: Decimal = Decimal(0)) -> Assessment:
    """The borrower's network-wide credit report and score, for ``actor``'s MFI. ``loan_key`` is the application
    being assessed: it is left out of the figures and its monthly installment is scored as the new debt."""
    if purpose not in PURPOSES:
        raise ValidationFailed("Unknown enquiry purpose.", details={"fields": {"purpose": list(PURPOSES)}})
    consent_require(actor=actor, borrower=borrower, purpose="credit_report")
    enquiry_quota_check(actor=actor)
    now = datetime.now(UTC)
    enquiry_id = uuid.uuid4()
    keys = borrower_partition_keys(borrower)
    try:
        event_insert(partition_key=borrower.borrower_key, event_time=now, event_id=enquiry_id, event_type=ENQUIRY,
                     origin_district=settings.DISTRICT.code,
                     payload={"mfi": actor.mfi.code if actor.mfi else "", "district": settings.DISTRICT.code,
                              "purpose": purpose})
        # the report lists the enquiries made before this one (this one is returned as ``enquiry_id``)
        rows = [RingRow(r.event_time, str(r.event_id), r.event_type, r.origin_district, r.payload)
                for key in keys for r in events_read(key) if r.event_id != enquiry_id]
    except RingUnavailable as exc:
        raise CreditNetworkUnavailable("The credit network cannot be read at quorum right now; no report was made.",
                                       details={"reason": str(exc)[:200]}) from None
    report = fold(borrower.borrower_key, rows, as_of=now, exclude_loan_key=loan_key)
    score = score_report(report, monthly_income=borrower.monthly_income,
                         new_monthly_installment=new_monthly_installment, card=scorecard_from_settings())
    with transaction.atomic():
        audit_record(actor=actor, action="credit.report", target_type="borrower", target_id=borrower.pk,
                     mfi=actor.mfi, after={"purpose": purpose, "enquiry_id": str(enquiry_id), "loan": loan_key,
                                           "grade": score.grade, "points": score.points})
    return Assessment(report, score, enquiry_id, new_monthly_installment)


def enquiry_quota_check(*, actor: User) -> None:
    """At most ``LETSEMA_CREDIT_REPORTS_PER_HOUR`` credit reports per staff member in any hour (0: no limit): a
    stolen or rogue officer account must not be able to harvest the network's credit histories. Past it: 429
    ``enquiry_limit_reached`` with ``Retry-After`` (until the oldest report of the hour leaves the window), and an
    alert — an ERROR log line ``credit enquiry limit reached`` with ``alert: true`` and a
    ``credit.enquiry_limit_reached`` audit row, once per window. Counted from the ``credit.report`` audit rows,
    so the limit holds across web processes and restarts."""
    limit = int(getattr(settings, "LETSEMA_CREDIT_REPORTS_PER_HOUR", 0))
    if limit <= 0 or actor is None or actor.pk is None:
        return
    now = datetime.now(UTC)
    recent = list(AuditEvent.objects.filter(actor_id=actor.pk, action="credit.report",
                                            occurred_at__gte=now - ENQUIRY_WINDOW)
                  .order_by("-occurred_at").values_list("occurred_at", flat=True)[:limit])
    if len(recent) < limit:
        return
    retry_after = max(1, math.ceil((recent[-1] + ENQUIRY_WINDOW - now).total_seconds()))
    alerted = AuditEvent.objects.filter(actor_id=actor.pk, action="credit.enquiry_limit_reached",
                                        occurred_at__gte=now - ENQUIRY_WINDOW).exists()
    if not alerted:
        with transaction.atomic():
            audit_record(actor=actor, action="credit.enquiry_limit_reached", target_type="user", target_id=actor.pk,
                         mfi=actor.mfi, after={"limit": limit, "window_minutes": 60})
        log.error("credit enquiry limit reached", extra={"alert": True, "actor": actor.pk, "mfi": actor.mfi_id,
                                                        "limit": limit})
    raise EnquiryLimitReached(
        f"You have made {limit} credit look-ups in the last hour, the most this node allows; "
        f"try again in {math.ceil(retry_after / 60)} minute(s).",
        details={"limit": limit, "retry_after_seconds": retry_after}, retry_after=retry_after)


def network_policy_set(*, actor: User | None, max_active_loans: int | None, max_dti: Decimal | None,
                       reservation_days: int):
    """Letsema admins set the network lending policy the stacking guard enforces on every node. Audited here."""
    from node.credit.stacking import policy_get, policy_write

    try:
        before = policy_get().to_json()
        policy = policy_write(max_active_loans=max_active_loans, max_dti=max_dti, reservation_days=reservation_days,
                              by=getattr(actor, "username", "") or "operator")
    except ValueError as exc:
        raise ValidationFailed(str(exc), code="invalid_policy") from None
    except RingUnavailable as exc:
        raise CreditNetworkUnavailable("The ring cannot store the policy at quorum right now.",
                                       details={"reason": str(exc)[:200]}) from None
    with transaction.atomic():
        audit_record(actor=actor, action="network.policy_set", target_type="network_policy", target_id="network",
                     mfi=None, before=before, after=policy.to_json())
    return policy


def credit_history_read(borrower: Borrower) -> CreditReport:
    """The borrower's partition(s) folded, no enquiry and no audit (callers audit what they do with it). 503
    ``credit_network_unavailable`` without a ring quorum."""
    now = datetime.now(UTC)
    try:
        rows = [RingRow(r.event_time, str(r.event_id), r.event_type, r.origin_district, r.payload)
                for key in borrower_partition_keys(borrower) for r in events_read(key)]
    except RingUnavailable as exc:
        raise CreditNetworkUnavailable("The credit network cannot be read at quorum right now.",
                                       details={"reason": str(exc)[:200]}) from None
    return fold(borrower.borrower_key, rows, as_of=now)


def credit_history_own(*, borrower: Borrower) -> CreditReport:
    """The borrower's own network credit history, as a bureau shows consumers their file: every loan at every MFI
    and district and who looked. Not an enquiry (lenders never see it); audited here. 503 without a ring quorum."""
    report = credit_history_read(borrower)
    with transaction.atomic():
        audit_record(actor=borrower.user, action="credit.own_history_viewed", target_type="borrower",
                     target_id=borrower.pk, after={"events_read": report.events_read})
    return report
