"""Staff management. MFI admins manage their own MFI's staff; Letsema admins any staff of this node.
Nobody can change their own role or status, and nobody can grant a role above their own reach."""

from __future__ import annotations

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction

from node.audit.services import audit_record
from node.core.errors import Conflict, Forbidden, ValidationFailed
from node.mfis.models import Mfi
from node.users.models import MFI_STAFF_ROLES, Role, User

ASSIGNABLE = {
    Role.MFI_ADMIN: frozenset(MFI_STAFF_ROLES),
    Role.LETSEMA_ADMIN: frozenset(MFI_STAFF_ROLES) | {Role.OPERATOR, Role.LETSEMA_ADMIN},
}


def _snapshot(u: User) -> dict:
    return {"username": u.username, "role": u.role, "mfi": u.mfi.code if u.mfi_id else None, "is_active": u.is_active}


def _check_role(actor: User, role: str, mfi: Mfi | None) -> None:
    allowed = ASSIGNABLE.get(actor.role, frozenset())
    if role not in allowed:
        raise Forbidden(f"You cannot assign the role {role!r}.", code="role_not_assignable",
                        details={"assignable": sorted(allowed)})
    if role in MFI_STAFF_ROLES and mfi is None:
        raise ValidationFailed("MFI staff must belong to an MFI.", details={"fields": {"mfi": ["required"]}})


@transaction.atomic
def staff_create(*, actor: User, username: str, first_name: str, last_name: str, email: str, role: str,
                 password: str, mfi: Mfi | None = None) -> User:
    if actor.role == Role.MFI_ADMIN:
        mfi = actor.mfi
    if role not in MFI_STAFF_ROLES:
        mfi = None
    _check_role(actor, role, mfi)
    if User.objects.filter(username=username).exists():
        raise Conflict("That username is taken.", code="username_taken", details={"username": username})
    user = User(username=username, first_name=first_name, last_name=last_name, email=email, role=role, mfi=mfi)
    try:
        validate_password(password, user)
    except DjangoValidationError as exc:
        raise ValidationFailed("The password is too weak.", details={"fields": {"password": exc.messages}}) from None
    user.set_password(password)
    user.save()
    audit_record(actor=actor, action="staff.create", target_type="user", target_id=user.pk, mfi=mfi,
                 after=_snapshot(user))
    return user


@transaction.atomic
def staff_update(*, actor: User, user: User, role: str | None = None, is_active: bool | None = None) -> User:
    if user.pk == actor.pk:
        raise Forbidden("You cannot change your own role or status.", code="self_modification_forbidden")
    target = User.objects.select_for_update().get(pk=user.pk)
    before = _snapshot(target)
    fields = []
    if role is not None and role != target.role:
        _check_role(actor, role, target.mfi)
        if target.role not in ASSIGNABLE.get(actor.role, frozenset()):
            raise Forbidden("You cannot change this user's role.", code="role_not_assignable")
        target.role = role
        if role not in MFI_STAFF_ROLES:
            target.mfi = None
            fields.append("mfi")
        fields.append("role")
    if is_active is not None and is_active != target.is_active:
        target.is_active = is_active
        fields.append("is_active")
    if fields:
        target.save(update_fields=fields)
        audit_record(actor=actor, action="staff.update", target_type="user", target_id=target.pk,
                     mfi=target.mfi or actor.mfi, before=before, after=_snapshot(target))
    return target
