"""Reads and the one access-check path per entity. An object the actor may not see answers exactly like
a missing one (NotFound, same body); when the object exists, the attempt is audited."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from node.audit.services import audit_access_denied
from node.borrowers.identity import (
    IdentityFormatError,
    normalise_national_id,
    normalise_phone,
)
from node.borrowers.models import Borrower, Consent, ConsentText, KycDocument
from node.core.errors import Forbidden, NotFound
from node.users.models import MFI_STAFF_ROLES, Role, User

NOT_FOUND_MESSAGE = "No such borrower."


def borrower_list_for(*, actor: User) -> QuerySet[Borrower]:
    if actor.role == Role.BORROWER:
        return Borrower.objects.filter(user=actor)
    if actor.role in MFI_STAFF_ROLES and actor.mfi_id is not None:
        return Borrower.objects.filter(mfi_links__mfi_id=actor.mfi_id)
    return Borrower.objects.none()


def identity_match(typed: str) -> Q:
    """A filter for the borrower whose national ID or phone number ``typed`` is, in any usual writing (normalised
    as registration stores them); an empty ``Q()`` when it is neither (the caller decides what that means)."""
    match = Q()
    for normalise, field in ((normalise_phone, "phone"), (normalise_national_id, "national_id")):
        try:
            match |= Q(**{field: normalise(typed)})
        except IdentityFormatError:
            pass
    return match


def access_borrower_by_id(actor: User, borrower_id, *, roles: frozenset[str] | None = None) -> Borrower:
    """The borrower if ``actor`` may see it; NotFound otherwise. ``roles`` limits the action further
    (403 for a visible object the role may not act on)."""
    try:
        pk = int(borrower_id)
    except (TypeError, ValueError):
        raise NotFound(NOT_FOUND_MESSAGE) from None
    b = borrower_list_for(actor=actor).filter(pk=pk).first()
    if b is None:
        if Borrower.objects.filter(pk=pk).exists():
            audit_access_denied(actor=actor, target_type="borrower", target_id=pk)
        raise NotFound(NOT_FOUND_MESSAGE)
    if roles is not None and actor.role not in roles:
        raise Forbidden("Your role may not do this.")
    return b


def access_kyc_document(actor: User, borrower: Borrower, document_id) -> KycDocument:
    doc = KycDocument.objects.filter(pk=document_id, borrower=borrower).first() if _is_uuid(document_id) else None
    if doc is None:
        if _is_uuid(document_id) and KycDocument.objects.filter(pk=document_id).exists():
            audit_access_denied(actor=actor, target_type="kyc_document", target_id=document_id)
        raise NotFound("No such document.")
    return doc


def _is_uuid(value) -> bool:
    import uuid

    try:
        uuid.UUID(str(value))
        return True
    except ValueError:
        return False


def consent_history(*, borrower: Borrower) -> QuerySet[Consent]:
    return Consent.objects.filter(borrower=borrower).order_by("-given_at")


def consent_active(*, borrower: Borrower) -> Consent | None:
    return Consent.objects.filter(borrower=borrower, withdrawn_at__isnull=True).first()


def consent_text_current(*, language: str) -> ConsentText | None:
    return ConsentText.objects.filter(language=language).order_by("-version").first()


def borrower_partition_keys(b: Borrower) -> list[str]:
    """The ring partitions holding this borrower's credit history: every pepper version's key for a borrower
    registered here; for a visiting borrower (no national ID here) the key their home node shared."""
    if b.national_id is None:
        return [b.borrower_key]
    from node.borrowers.identity import borrower_keys_all_versions

    return borrower_keys_all_versions(b.national_id)
