"""Onboarding MFIs (Letsema admins): the MFI and its first MFI admin in one step; the MFI's settings after."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction

from node.audit.services import audit_record
from node.core.errors import Conflict, Forbidden, ValidationFailed
from node.ledger.services import ledger_ensure_chart
from node.mfis.models import Mfi
from node.users.models import Role, User


@dataclass(frozen=True)
class OnboardResult:
    mfi: Mfi
    admin: User
    temporary_password: str | None  # shown once when the caller gave no password


@transaction.atomic
def mfi_onboard(
    *,
    actor: User | None,
    code: str,
    name: str,
    registration_number: str,
    interest_rate_cap: Decimal,
    admin_username: str,
    admin_first_name: str,
    admin_last_name: str,
    admin_email: str = "",
    admin_password: str | None = None,
    home_district: str | None = None,
) -> OnboardResult:
    home = home_district or settings.DISTRICT.code
    if home != settings.DISTRICT.code:
        raise ValidationFailed(
            "An MFI is onboarded on its home district node; run this on that node.", code="wrong_home_node",
            details={"home_district": home, "this_node": settings.DISTRICT.code},
        )
    if not Decimal("0") < interest_rate_cap <= Decimal("1000"):
        raise ValidationFailed("The interest-rate cap must be a percentage above 0.",
                               details={"fields": {"interest_rate_cap": ["out of range"]}})
    if Mfi.objects.filter(code=code).exists():
        raise Conflict(f"An MFI with code {code!r} already exists.", code="mfi_exists", details={"code": code})
    if User.objects.filter(username=admin_username).exists():
        raise Conflict("That username is taken.", code="username_taken", details={"username": admin_username})
    temporary = None
    if admin_password is None:
        temporary = admin_password = secrets.token_urlsafe(12)
    admin = User(username=admin_username, first_name=admin_first_name, last_name=admin_last_name,
                 email=admin_email, role=Role.MFI_ADMIN)
    try:
        validate_password(admin_password, admin)
    except DjangoValidationError as exc:
        raise ValidationFailed("The admin password is too weak.",
                               details={"fields": {"admin_password": exc.messages}}) from None
    mfi = Mfi.objects.create(code=code, name=name, registration_number=registration_number,
                             home_district=home, interest_rate_cap=interest_rate_cap)
    admin.mfi = mfi
    admin.set_password(admin_password)
    admin.save()
    ledger_ensure_chart(mfi=mfi, actor=actor)
    audit_record(actor=actor, action="mfi.onboard", target_type="mfi", target_id=mfi.pk, mfi=mfi,
                 after={"code": code, "name": name, "registration_number": registration_number,
                        "interest_rate_cap": str(interest_rate_cap), "admin": admin_username})
    return OnboardResult(mfi=mfi, admin=admin, temporary_password=temporary)


PAYBILL_NUMBER = re.compile(r"^[0-9]{4,12}$")


def _check_settings_actor(actor: User, mfi: Mfi, what: str) -> None:
    """An MFI's own settings are changed by its admins or by Letsema admins (403 otherwise)."""
    if not (actor.role == Role.LETSEMA_ADMIN or (actor.role == Role.MFI_ADMIN and actor.mfi_id == mfi.pk)):
        raise Forbidden(f"Only the MFI's admins or Letsema admins {what}.")


@transaction.atomic
def mfi_paybill_set(*, actor: User, mfi: Mfi, paybill_number: str | None) -> Mfi:
    """Set (or clear, ``None``) the MFI's mobile-money business number ("Pay Bill", docs/mobile-money.md): the MFI's
    admins or Letsema admins. 4 to 12 digits; one MFI per number (409 ``paybill_number_taken``). Audited."""
    _check_settings_actor(actor, mfi, "set its business number")
    number = (paybill_number or "").strip() or None
    if number is not None and not PAYBILL_NUMBER.match(number):
        raise ValidationFailed("The business number is 4 to 12 digits.",
                               details={"fields": {"paybill_number": ["4 to 12 digits"]}})
    mfi = Mfi.objects.select_for_update().get(pk=mfi.pk)
    if number is not None and Mfi.objects.filter(paybill_number=number).exclude(pk=mfi.pk).exists():
        raise Conflict("Another MFI has that business number.", code="paybill_number_taken",
                       details={"paybill_number": number})
    return _setting_change(actor, mfi, "paybill_number", number, action="mfi.paybill_set", key="paybill_number")


@transaction.atomic
def mfi_notifications_set(*, actor: User, mfi: Mfi, payroll_repayments: bool) -> Mfi:
    """Whether payroll deductions posted from an employer's file send borrowers a "repayment received" message (the
    MFI's admins or Letsema admins; docs/notifications.md). Repayments posted any other way always do. Audited."""
    _check_settings_actor(actor, mfi, "change its notifications")
    mfi = Mfi.objects.select_for_update().get(pk=mfi.pk)
    return _setting_change(actor, mfi, "notify_payroll_repayments", payroll_repayments,
                           action="mfi.notifications_set", key="payroll_repayments")


def _setting_change(actor: User, mfi: Mfi, field: str, value, *, action: str, key: str) -> Mfi:
    """Write one setting of ``mfi`` (locked by the caller) and audit it as ``action`` (``key``: its name in the audit
    row) — only when it changes."""
    before = getattr(mfi, field)
    if before != value:
        setattr(mfi, field, value)
        mfi.save(update_fields=[field])
        audit_record(actor=actor, action=action, target_type="mfi", target_id=mfi.pk, mfi=mfi,
                     before={key: before}, after={key: value})
    return mfi
