"""Borrowers served at any district node.

A borrower registered at district A signs in at district B with their national ID and password
(``POST /api/v1/auth/visitor/token`` on B). B never stores or forwards the national ID: it derives the
pseudonymous borrower key, finds the home district in the ring's borrower directory, and asks the home node over
the signed channel to check the password (``POST /_federation/v1/borrowers/authenticate``). The home node answers
with the profile and KYC status it shares for applications at other districts; B keeps that copy as a *visiting*
borrower (``Borrower.home_district``) with a local sign-in that has no password of its own, and issues its usual
tokens. From then on the borrower applies to B's MFIs like any local borrower; the credit history is the ring's,
the same wherever they sign in.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction

from federation.fanout import BadResponse, fanout
from federation.peers import get_directory
from node.audit.models import AuditEvent
from node.audit.services import audit_record
from node.borrowers import directory
from node.borrowers.identity import (
    IdentityFormatError,
    borrower_keys_all_versions,
    normalise_national_id,
)
from node.borrowers.models import Borrower, Channel, Consent
from node.core.errors import ApplicationError, ServiceUnavailable
from node.peers.schemas import BorrowerAuthRequest, BorrowerAuthResult
from node.users.models import Role, User
from node.users.tokens import InvalidCredentials
from node.users.tokens import password_check
from replication.ring import RingUnavailable

log = logging.getLogger("letsema.federation")
AUTHENTICATE_PATH = "/_federation/v1/borrowers/authenticate"
#: failed federated sign-ins per borrower within the window before the home node stops checking passwords
MAX_FAILURES, FAILURE_WINDOW = 5, timedelta(minutes=15)


class SignInLocked(ApplicationError):
    code = "sign_in_locked"
    status = 429


class HomeDistrictUnavailable(ServiceUnavailable):
    code = "home_district_unavailable"


# --- the home node's side ----------------------------------------------------------------------------------
def _profile(b: Borrower) -> dict:
    consent = Consent.objects.filter(borrower=b, withdrawn_at__isnull=True).first()
    return {
        "first_name": b.first_name, "last_name": b.last_name, "date_of_birth": b.date_of_birth.isoformat(),
        "phone": b.phone, "address": b.address, "residence_district": b.residence_district,
        "employer": b.employer, "employee_number": b.employee_number, "monthly_income": str(b.monthly_income),
        "next_of_kin_name": b.next_of_kin_name, "next_of_kin_phone": b.next_of_kin_phone,
        "next_of_kin_relationship": b.next_of_kin_relationship,
        "phone_verified": b.phone_verified_at is not None, "verified": b.is_verified,
        "verification_method": b.verification_method,
        "consent_version": consent.version if consent else 0, "consent_language": consent.language if consent else "",
    }


def borrower_federated_authenticate(*, request: BorrowerAuthRequest, origin: str) -> BorrowerAuthResult:
    """Check the password of a borrower registered here on behalf of district ``origin``. Every attempt is
    audited; after ``MAX_FAILURES`` failures in ``FAILURE_WINDOW`` the password is not checked at all."""
    own = settings.DISTRICT.code
    b = (Borrower.objects.select_related("user").filter(borrower_key=request.borrower_key, home_district="")
         .first())
    user = b.user if b is not None else None
    since = datetime.now(UTC) - FAILURE_WINDOW
    locked = b is not None and AuditEvent.objects.filter(
        action="borrower.federated_sign_in_failed", target_type="borrower", target_id=str(b.pk),
        occurred_at__gte=since).count() >= MAX_FAILURES
    if user is None or not user.is_active or locked:
        User().set_password(request.password)  # the same work as a real check: no timing hint of who exists
        ok = False
    else:
        ok = user.check_password(request.password)
    if b is not None:
        with transaction.atomic():
            audit_record(actor=None, action="borrower.federated_sign_in" if ok else "borrower.federated_sign_in_failed",
                         target_type="borrower", target_id=b.pk,
                         after={"at_district": origin, **({"locked": True} if locked else {})})
    log.info("federated borrower sign-in", extra={"origin": origin, "borrower_key": request.borrower_key,
                                                   "ok": ok, "locked": locked})
    return BorrowerAuthResult(own, request.borrower_key, ok, _profile(b) if ok else None)


# --- the visiting node's side ------------------------------------------------------------------------------
def _parse_auth(borrower_key: str):
    def parse(district: str, data) -> BorrowerAuthResult:
        res = BorrowerAuthResult.from_json(data)
        if res.district != district or res.borrower_key != borrower_key:
            raise BadResponse("the answer is about another district or borrower key")
        return res

    return parse


def borrower_visitor_sign_in(*, national_id: str, password: str) -> User:
    """Authenticate a borrower at this node, wherever they are registered. Returns the local user to issue
    tokens for: the borrower's own account when registered here, else the visiting borrower's local account."""
    try:
        keys = borrower_keys_all_versions(normalise_national_id(national_id))
    except IdentityFormatError:
        raise InvalidCredentials("Wrong national ID or password.") from None
    local = Borrower.objects.select_related("user").filter(borrower_key__in=keys, home_district="").first()
    if local is not None:
        if local.user is None:
            User().set_password(password)
            raise InvalidCredentials("Wrong national ID or password.")
        try:  # the same throttled, audited check as the username log-in (the account's own counter)
            return password_check(username=local.user.username, password=password, user=local.user, channel="visitor")
        except InvalidCredentials:  # the same error, with the national-ID sign-in's wording
            raise InvalidCredentials("Wrong national ID or password.") from None
    try:
        entry = directory.directory_get(keys)
    except RingUnavailable:
        raise HomeDistrictUnavailable("The network borrower directory is unavailable; try again shortly.") from None
    if entry is None or entry.home_district == settings.DISTRICT.code:
        User().set_password(password)
        raise InvalidCredentials("Wrong national ID or password.")
    home = entry.home_district
    peer = get_directory().get(home)
    if peer is None or not peer.active:
        raise HomeDistrictUnavailable("Your home district's node is not reachable from here right now.",
                                      details={"home_district": home})
    result = fanout("POST", AUTHENTICATE_PATH, BorrowerAuthRequest(entry.borrower_key, password).to_json(),
                    peers=[peer], timeout=float(getattr(settings, "LETSEMA_VISITOR_AUTH_TIMEOUT", 5.0)),
                    parse=_parse_auth(entry.borrower_key))
    answer: BorrowerAuthResult | None = result.answered.get(home)
    if answer is None:
        raise HomeDistrictUnavailable("Your home district's node did not answer; try again shortly.",
                                      details={"home_district": home, "reason": result.missing.get(home, "")})
    if not answer.authenticated:
        raise InvalidCredentials("Wrong national ID or password.")
    try:
        return _visitor_upsert(home=home, borrower_key=entry.borrower_key, claim_id=entry.claim_id,
                               profile=answer.profile)
    except IntegrityError:  # a concurrent first sign-in created the record: refresh it instead
        return _visitor_upsert(home=home, borrower_key=entry.borrower_key, claim_id=entry.claim_id,
                               profile=answer.profile)


def _visitor_upsert(*, home: str, borrower_key: str, claim_id, profile: dict) -> User:
    """Create or refresh the visiting borrower's copy (profile, KYC status, consent) in one transaction."""
    now = datetime.now(UTC)
    fields = {
        "first_name": profile["first_name"], "last_name": profile["last_name"],
        "date_of_birth": date.fromisoformat(profile["date_of_birth"]), "phone": profile["phone"],
        "address": profile["address"], "residence_district": profile["residence_district"],
        "employer": profile["employer"], "employee_number": profile["employee_number"],
        "monthly_income": Decimal(profile["monthly_income"]), "next_of_kin_name": profile["next_of_kin_name"],
        "next_of_kin_phone": profile["next_of_kin_phone"],
        "next_of_kin_relationship": profile["next_of_kin_relationship"],
        "is_verified": profile["verified"], "verification_method": profile["verification_method"],
    }
    with transaction.atomic():
        b = (Borrower.objects.select_for_update(of=("self",)).select_related("user")
             .filter(borrower_key=borrower_key).first())
        created = b is None
        if created:
            user = User(username=f"visitor-{borrower_key.split(':', 1)[1][:24]}", role=Role.BORROWER,
                        first_name=fields["first_name"], last_name=fields["last_name"])
            user.set_unusable_password()  # signs in only through the home node
            user.save()
            b = Borrower(borrower_key=borrower_key, national_id=None, home_district=home, user=user,
                         registration_channel=Channel.SELF_SERVICE, registered_by=user, ring_claim_id=claim_id)
        for k, v in fields.items():
            setattr(b, k, v)
        b.home_district = home
        b.phone_verified_at = (b.phone_verified_at or now) if profile["phone_verified"] else None
        b.verified_at = (b.verified_at or now) if profile["verified"] else None
        b.save()
        consent = Consent.objects.filter(borrower=b, withdrawn_at__isnull=True).first()
        if profile["consent_version"] and consent is None:
            Consent.objects.create(borrower=b, version=profile["consent_version"],
                                   language=profile["consent_language"] or "en", channel=Channel.HOME_DISTRICT,
                                   given_at=now, recorded_by=b.user)
        elif not profile["consent_version"] and consent is not None and consent.channel == Channel.HOME_DISTRICT:
            consent.withdrawn_at, consent.withdrawal_channel, consent.withdrawn_by = now, Channel.HOME_DISTRICT, b.user
            consent.save(update_fields=["withdrawn_at", "withdrawal_channel", "withdrawn_by"])
        audit_record(actor=b.user, action="borrower.visitor_sign_in", target_type="borrower", target_id=b.pk,
                     after={"home_district": home, "created": created, "verified": b.is_verified,
                            "consent_version": profile["consent_version"]})
    return b.user
