"""Writes for borrowers: registration, phone OTP, KYC documents, verification, consent, MFI links.

Every write records an audit event in the same transaction. Ring calls (the borrower directory) happen
outside database transactions; a failed local write releases the ring claim it made.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from node.audit.services import audit_record
from node.borrowers import directory
from node.borrowers.errors import (
    BorrowerExists,
    ConsentRequired,
    NotVerifiable,
    OtpError,
    OtpRateLimited,
    RegisteredElsewhere,
    RingDown,
    SmsUnavailable,
    UploadRejected,
    UploadTooLarge,
)
from node.borrowers.identity import borrower_keys_all_versions, normalise_national_id
from node.borrowers.models import (
    Borrower,
    Channel,
    Consent,
    ConsentText,
    DocumentType,
    KycAccess,
    KycDocument,
    MfiClient,
    PhoneOtp,
)
from node.borrowers.selectors import borrower_partition_keys
from node.core.errors import Conflict, NotFound, ValidationFailed
from node.core.logging import current_client_ip
from node.mfis.models import Mfi
from node.notifications.sms import SmsSendFailed, send_sms
from node.users.models import Role, User
from replication.ring import RingUnavailable

log = logging.getLogger("letsema.borrowers")

# Fields safe to copy into audit records (never the raw national ID).
AUDITED_FIELDS = (
    "borrower_key", "first_name", "last_name", "date_of_birth", "phone", "address", "residence_district",
    "employer", "employee_number", "monthly_income", "next_of_kin_name", "next_of_kin_phone",
    "next_of_kin_relationship", "is_verified", "verification_method", "phone_verified_at",
)
EDITABLE_FIELDS = (
    "phone", "address", "residence_district", "employer", "employee_number", "monthly_income",
    "next_of_kin_name", "next_of_kin_phone", "next_of_kin_relationship",
)


def _snapshot(b: Borrower, fields=AUDITED_FIELDS) -> dict:
    out = {}
    for f in fields:
        v = getattr(b, f)
        out[f] = str(v) if isinstance(v, (Decimal, date)) else v
    return out


@dataclass(frozen=True)
class RegistrationData:
    national_id: str
    first_name: str
    last_name: str
    date_of_birth: date
    phone: str
    address: str
    residence_district: str
    employer: str
    employee_number: str
    monthly_income: Decimal
    next_of_kin_name: str
    next_of_kin_phone: str
    next_of_kin_relationship: str


def _claim_in_ring(key: str, older_keys: list[str], claim_id: uuid.UUID) -> None:
    """Claim ``key`` for this district network-wide, or raise why not. RingDown when the ring can't tell."""
    district = settings.DISTRICT.code
    try:
        if older_keys:
            old = directory.directory_get(older_keys)
            if old is not None:
                raise _exists_error(old.home_district)
        result = directory.directory_claim(key, district, claim_id)
        if result.applied:
            return
        existing = result.existing
        assert existing is not None
        if existing.home_district == district and not Borrower.objects.filter(borrower_key=key).exists():
            # an orphaned claim of ours (the local write never committed): take it over
            if directory.directory_take_over(key, existing.claim_id, claim_id):
                return
            raise RingDown("The borrower directory changed during registration; try again.")
        raise _exists_error(existing.home_district)
    except RingUnavailable as exc:
        log.warning("ring unavailable during registration", extra={"error": str(exc)[:200]})
        raise RingDown(
            "The network borrower directory is unavailable, so registration cannot be checked for duplicates. "
            "Try again shortly."
        ) from None


def _exists_error(home_district: str):
    if home_district == settings.DISTRICT.code:
        return BorrowerExists("A borrower with this national ID is already registered at this district.")
    return RegisteredElsewhere(
        "A borrower with this national ID is already registered in the Letsema network, at another district.",
        details={"home_district": home_district},
    )


def borrower_register(
    *,
    actor: User | None,
    data: RegistrationData,
    channel: str,
    mfi: Mfi | None = None,
    password: str | None = None,
) -> Borrower:
    """Register a borrower at this node (self-service when ``password`` is given, else staff-assisted)."""
    national_id = normalise_national_id(data.national_id)
    if Borrower.objects.filter(national_id=national_id).exists():
        raise BorrowerExists("A borrower with this national ID is already registered at this district.")
    if password is not None:
        if User.objects.filter(username=data.phone).exists():
            raise Conflict("This phone number already has an account.", code="phone_in_use")
        try:
            validate_password(password, User(username=data.phone, first_name=data.first_name, last_name=data.last_name))
        except DjangoValidationError as exc:
            raise ValidationFailed("The password is too weak.", details={"fields": {"password": exc.messages}}) from None

    keys = borrower_keys_all_versions(national_id)
    key = keys[0]
    claim_id = uuid.uuid4()
    _claim_in_ring(key, keys[1:], claim_id)
    try:
        with transaction.atomic():
            user = None
            if password is not None:
                user = User(username=data.phone, role=Role.BORROWER, first_name=data.first_name, last_name=data.last_name)
                user.set_password(password)
                user.save()
            b = Borrower.objects.create(
                national_id=national_id,
                borrower_key=key,
                first_name=data.first_name,
                last_name=data.last_name,
                date_of_birth=data.date_of_birth,
                phone=data.phone,
                address=data.address,
                residence_district=data.residence_district,
                employer=data.employer,
                employee_number=data.employee_number,
                monthly_income=data.monthly_income,
                next_of_kin_name=data.next_of_kin_name,
                next_of_kin_phone=data.next_of_kin_phone,
                next_of_kin_relationship=data.next_of_kin_relationship,
                user=user,
                registration_channel=channel,
                registered_by=actor if actor is not None else user,
                ring_claim_id=claim_id,
            )
            if mfi is not None:
                MfiClient.objects.create(borrower=b, mfi=mfi, created_by=actor)
            audit_record(
                actor=actor or user, action="borrower.register", target_type="borrower", target_id=b.pk,
                mfi=mfi, after={**_snapshot(b), "channel": channel},
            )
    except IntegrityError:
        _release_quietly(key, claim_id)
        raise BorrowerExists("A borrower with this national ID or phone is already registered here.") from None
    except BaseException:
        _release_quietly(key, claim_id)
        raise
    return b


def _release_quietly(key: str, claim_id: uuid.UUID) -> None:
    try:
        directory.directory_release(key, claim_id)
    except RingUnavailable:
        # left as an orphaned claim of this district; the next registration here takes it over
        log.warning("could not release ring claim", extra={"claim_id": str(claim_id)})


@transaction.atomic
def borrower_update(*, actor: User, borrower: Borrower, changes: dict) -> Borrower:
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationFailed("These fields cannot be changed.", details={"fields": {f: ["read-only"] for f in unknown}})
    b = Borrower.objects.select_for_update().get(pk=borrower.pk)
    before = _snapshot(b)
    for field, value in changes.items():
        setattr(b, field, value)
    if "phone" in changes and changes["phone"] != before["phone"]:
        b.phone_verified_at = None
        PhoneOtp.objects.filter(borrower=b, consumed_at__isnull=True).update(superseded=True)
    b.save(update_fields=[*changes, "phone_verified_at", "updated_at"])
    audit_record(actor=actor, action="borrower.update", target_type="borrower", target_id=b.pk,
                 mfi=actor.mfi, before=before, after=_snapshot(b))
    return b


def borrower_link_to_mfi(*, actor: User, national_id: str) -> Borrower:
    """A walk-in borrower already registered at this node becomes a client of the officer's MFI."""
    nid = normalise_national_id(national_id)
    b = Borrower.objects.filter(national_id=nid).first()
    if b is None:
        try:
            entry = directory.directory_get(borrower_keys_all_versions(nid))
        except RingUnavailable:
            entry = None
        if entry is not None and entry.home_district != settings.DISTRICT.code:
            raise RegisteredElsewhere(
                "This borrower is registered at another district.", details={"home_district": entry.home_district}
            )
        raise NotFound("No borrower with this national ID is registered here; register them first.")
    with transaction.atomic():
        link, created = MfiClient.objects.get_or_create(borrower=b, mfi=actor.mfi, defaults={"created_by": actor})
        if created:
            audit_record(actor=actor, action="borrower.link_mfi", target_type="borrower", target_id=b.pk,
                         mfi=actor.mfi, after={"mfi": actor.mfi.code})
    return b


# --- phone OTP ---------------------------------------------------------------------------------
def _otp_hash(otp_id_seed: str, code: str) -> str:
    return hmac.new(settings.SECRET_KEY.encode(), f"{otp_id_seed}:{code}".encode(), hashlib.sha256).hexdigest()


def otp_send(*, actor: User, borrower: Borrower) -> PhoneOtp:
    now = timezone.now()
    with transaction.atomic():
        b = Borrower.objects.select_for_update().get(pk=borrower.pk)
        if b.phone_verified_at is not None:
            raise Conflict("This phone number is already verified.", code="phone_already_verified")
        last = PhoneOtp.objects.filter(borrower=b).order_by("-created_at").first()
        if last is not None:
            wait = settings.OTP_RESEND_INTERVAL_SECONDS - (now - last.created_at).total_seconds()
            if wait > 0:
                raise OtpRateLimited(
                    "A code was sent moments ago; wait before asking for another.",
                    code="otp_resend_too_soon", details={"retry_after_seconds": int(wait) + 1},
                    retry_after=int(wait) + 1,
                )
        sent_today = PhoneOtp.objects.filter(borrower=b, created_at__gte=now - timedelta(days=1)).count()
        if sent_today >= settings.OTP_MAX_SENDS_PER_DAY:
            raise OtpRateLimited(
                "Too many codes were sent to this borrower in the last 24 hours.", code="otp_send_limit",
                details={"limit": settings.OTP_MAX_SENDS_PER_DAY},
            )
        PhoneOtp.objects.filter(borrower=b, consumed_at__isnull=True, superseded=False).update(superseded=True)
        code = f"{secrets.randbelow(10**6):06d}"
        seed = uuid.uuid4().hex
        otp = PhoneOtp.objects.create(
            borrower=b, phone=b.phone, code_hash=f"{seed}${_otp_hash(seed, code)}", created_at=now,
            expires_at=now + timedelta(seconds=settings.OTP_TTL_SECONDS),
        )
        audit_record(actor=actor, action="borrower.otp_sent", target_type="borrower", target_id=b.pk,
                     after={"otp_id": otp.pk, "expires_at": otp.expires_at.isoformat()})
    minutes = settings.OTP_TTL_SECONDS // 60
    try:
        send_sms(b.phone, f"Letsema: your verification code is {code}. It expires in {minutes} minutes.")
    except SmsSendFailed as exc:
        PhoneOtp.objects.filter(pk=otp.pk).update(superseded=True)
        raise SmsUnavailable(f"The code could not be sent: {exc}") from None
    return otp


def otp_verify(*, actor: User, borrower: Borrower, code: str) -> Borrower:
    now = timezone.now()
    failure: OtpError | None = None
    with transaction.atomic():
        b = Borrower.objects.select_for_update().get(pk=borrower.pk)
        if b.phone_verified_at is not None:
            return b
        otp = (
            PhoneOtp.objects.select_for_update()
            .filter(borrower=b, superseded=False, consumed_at__isnull=True, phone=b.phone)
            .order_by("-created_at")
            .first()
        )
        if otp is None:
            raise OtpError("No code has been requested for this phone number.", code="otp_not_requested")
        if now >= otp.expires_at:
            raise OtpError("The code has expired; request a new one.", code="otp_expired")
        if otp.attempts >= settings.OTP_MAX_ATTEMPTS:
            raise OtpRateLimited("Too many wrong codes; request a new one.", code="otp_attempts_exceeded")
        otp.attempts += 1
        seed, _, digest = otp.code_hash.partition("$")
        if not re.fullmatch(r"\d{6}", code or "") or not hmac.compare_digest(digest, _otp_hash(seed, code)):
            otp.save(update_fields=["attempts"])  # committed: the failed attempt counts
            remaining = settings.OTP_MAX_ATTEMPTS - otp.attempts
            failure = OtpError("The code is not correct.", code="otp_invalid", details={"attempts_remaining": remaining})
        else:
            otp.consumed_at = now
            otp.save(update_fields=["attempts", "consumed_at"])
            b.phone_verified_at = now
            b.save(update_fields=["phone_verified_at", "updated_at"])
            audit_record(actor=actor, action="borrower.phone_verified", target_type="borrower", target_id=b.pk,
                         after={"phone": b.phone, "phone_verified_at": now.isoformat()})
    if failure is not None:
        raise failure
    return b


# --- KYC documents -------------------------------------------------------------------------------
_SIGNATURES = (
    (b"%PDF-", "application/pdf", "pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png", "png"),
    (b"\xff\xd8\xff", "image/jpeg", "jpg"),
)


def sniff_content_type(head: bytes) -> tuple[str, str] | None:
    for magic, ctype, ext in _SIGNATURES:
        if head.startswith(magic):
            return ctype, ext
    return None


def safe_display_name(name: str) -> str:
    base = re.split(r"[\\/]", name or "")[-1]
    base = unicodedata.normalize("NFKC", base)
    base = "".join(ch for ch in base if ch.isprintable() and ch not in '<>:"|?*').strip(" .")
    return base[:120]


def kyc_upload(*, actor: User, borrower: Borrower, doc_type: str, uploaded) -> KycDocument:
    if doc_type not in DocumentType.values:
        raise ValidationFailed("Unknown document type.", details={"fields": {"doc_type": [f"one of {', '.join(DocumentType.values)}"]}})
    if uploaded.size > settings.KYC_MAX_BYTES:
        raise UploadTooLarge(
            f"The file is larger than {settings.KYC_MAX_BYTES // (1024 * 1024)} MB.",
            details={"max_bytes": settings.KYC_MAX_BYTES, "size": uploaded.size},
        )
    if uploaded.size == 0:
        raise UploadRejected("The file is empty.", code="file_empty")
    uploaded.seek(0)
    sniffed = sniff_content_type(uploaded.read(16))
    if sniffed is None:
        raise UploadRejected(
            "Only PDF, PNG and JPEG documents are accepted (checked by content, not by file name).",
            code="unsupported_file_type",
        )
    content_type, ext = sniffed
    storage = settings.KYC_STORAGE_DIR
    storage.mkdir(parents=True, exist_ok=True, mode=0o700)
    storage_name = f"{uuid.uuid4().hex}.{ext}"
    path = storage / storage_name
    digest = hashlib.sha256()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            uploaded.seek(0)
            for chunk in uploaded.chunks():
                digest.update(chunk)
                out.write(chunk)
        with transaction.atomic():
            doc = KycDocument.objects.create(
                borrower=borrower, doc_type=doc_type, content_type=content_type, size=uploaded.size,
                sha256=digest.hexdigest(), storage_name=storage_name,
                original_name=safe_display_name(getattr(uploaded, "name", "")), uploaded_by=actor,
                retain_until=timezone.localdate() + timedelta(days=settings.KYC_RETENTION_DAYS),
            )
            KycAccess.objects.create(document=doc, actor=actor, action="upload", reason="upload", ip=current_client_ip())
            audit_record(actor=actor, action="kyc.upload", target_type="kyc_document", target_id=str(doc.pk),
                         mfi=actor.mfi, after={"borrower": borrower.pk, "doc_type": doc_type, "sha256": doc.sha256,
                                              "size": doc.size, "content_type": content_type})
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return doc


def kyc_open(*, actor: User, document: KycDocument, reason: str):
    reason = (reason or "").strip()
    if len(reason) < 5:
        raise ValidationFailed("Say why you are opening this document (at least 5 characters).",
                               details={"fields": {"reason": ["required"]}})
    path = settings.KYC_STORAGE_DIR / document.storage_name
    if not path.is_file():
        raise NotFound("The document file is missing from storage.", code="document_file_missing")
    with transaction.atomic():
        KycAccess.objects.create(document=document, actor=actor, action="download", reason=reason[:300], ip=current_client_ip())
        audit_record(actor=actor, action="kyc.download", target_type="kyc_document", target_id=str(document.pk),
                     mfi=actor.mfi, after={"reason": reason[:300]})
    return open(path, "rb")  # noqa: SIM115 - streamed by the view


# --- verification ------------------------------------------------------------------------------
VERIFICATION_METHODS = ("id_document_in_branch", "kyc_documents_reviewed")


def borrower_verify(*, actor: User, borrower: Borrower, method: str) -> Borrower:
    if method not in VERIFICATION_METHODS:
        raise ValidationFailed("Unknown verification method.", details={"fields": {"method": list(VERIFICATION_METHODS)}})
    if borrower.is_verified:
        return borrower
    missing = []
    if borrower.phone_verified_at is None:
        missing.append("phone_verification")
    if not borrower.documents.filter(doc_type=DocumentType.ID_COPY).exists():
        missing.append("id_copy_document")
    if missing:
        raise NotVerifiable("The borrower cannot be verified yet.", details={"missing": missing})
    try:
        ok = directory.directory_mark_verified(borrower.borrower_key, borrower.ring_claim_id, method)
    except RingUnavailable:
        raise RingDown("The network borrower directory is unavailable; try again shortly.") from None
    if not ok:
        raise Conflict("The network directory entry for this borrower does not belong to this node.",
                       code="directory_mismatch")
    with transaction.atomic():
        b = Borrower.objects.select_for_update().get(pk=borrower.pk)
        before = _snapshot(b, ("is_verified", "verification_method"))
        b.is_verified, b.verified_at, b.verified_by, b.verification_method = True, timezone.now(), actor, method
        b.save(update_fields=["is_verified", "verified_at", "verified_by", "verification_method", "updated_at"])
        audit_record(actor=actor, action="borrower.verify", target_type="borrower", target_id=b.pk, mfi=actor.mfi,
                     before=before, after=_snapshot(b, ("is_verified", "verification_method")))
    return b


# --- consent -----------------------------------------------------------------------------------
def consent_current_version() -> int:
    latest = ConsentText.objects.order_by("-version").values_list("version", flat=True).first()
    if latest is None:
        raise NotFound("No consent text is published.", code="consent_text_missing")
    return latest


def consent_give(*, actor: User, borrower: Borrower, version: int, language: str, channel: str) -> Consent:
    if channel not in Channel.values:
        raise ValidationFailed("Unknown channel.", details={"fields": {"channel": list(Channel.values)}})
    if not ConsentText.objects.filter(version=version, language=language).exists():
        raise ValidationFailed("No consent text with this version and language.", code="consent_text_unknown",
                               details={"version": version, "language": language})
    current = consent_current_version()
    if version != current:
        raise Conflict("This consent text is outdated; show the current one.", code="consent_version_outdated",
                       details={"current_version": current})
    now = timezone.now()
    with transaction.atomic():
        Borrower.objects.select_for_update().get(pk=borrower.pk)  # serialise consent changes per borrower
        active = Consent.objects.filter(borrower=borrower, withdrawn_at__isnull=True).first()
        if active is not None and active.version == version:
            return active
        if active is not None:
            active.withdrawn_at, active.withdrawal_channel, active.withdrawn_by = now, channel, actor
            active.save(update_fields=["withdrawn_at", "withdrawal_channel", "withdrawn_by"])
        consent = Consent.objects.create(borrower=borrower, version=version, language=language, channel=channel,
                                         given_at=now, recorded_by=actor)
        audit_record(actor=actor, action="consent.give", target_type="borrower", target_id=borrower.pk,
                     mfi=actor.mfi, after={"version": version, "language": language, "channel": channel})
    return consent


def consent_withdraw(*, actor: User, borrower: Borrower, channel: str) -> Consent:
    if channel not in Channel.values:
        raise ValidationFailed("Unknown channel.", details={"fields": {"channel": list(Channel.values)}})
    with transaction.atomic():
        Borrower.objects.select_for_update().get(pk=borrower.pk)
        active = Consent.objects.filter(borrower=borrower, withdrawn_at__isnull=True).first()
        if active is None:
            raise Conflict("There is no active consent to withdraw.", code="no_active_consent")
        active.withdrawn_at, active.withdrawal_channel, active.withdrawn_by = timezone.now(), channel, actor
        active.save(update_fields=["withdrawn_at", "withdrawal_channel", "withdrawn_by"])
        audit_record(actor=actor, action="consent.withdraw", target_type="borrower", target_id=borrower.pk,
                     mfi=actor.mfi, after={"version": active.version, "channel": channel})
    return active


def consent_require(*, actor: User, borrower: Borrower, purpose: str) -> Consent:
    """Gate for any credit-history sharing or look-up. Refusals are audited (and committed)."""
    active = Consent.objects.filter(borrower=borrower, withdrawn_at__isnull=True).first()
    if active is None:
        with transaction.atomic():
            audit_record(actor=actor, action="consent.lookup_refused", target_type="borrower",
                         target_id=borrower.pk, mfi=actor.mfi, after={"purpose": purpose})
        raise ConsentRequired(
            "The borrower has not given consent to credit-history sharing; record consent first.",
            details={"purpose": purpose},
        )
    return active


def borrower_network_lookup(*, actor: User, borrower: Borrower) -> directory.DirectoryEntry | None:
    consent_require(actor=actor, borrower=borrower, purpose="network_lookup")
    try:
        entry = directory.directory_get(borrower_partition_keys(borrower))
    except RingUnavailable:
        raise RingDown("The network borrower directory is unavailable; try again shortly.") from None
    with transaction.atomic():
        audit_record(actor=actor, action="network.lookup", target_type="borrower", target_id=borrower.pk,
                     mfi=actor.mfi, after={"found": entry is not None})
    return entry

