from django.db.models import QuerySet

from node.audit.services import audit_access_denied
from node.core.errors import NotFound
from node.users.models import Role, User


def staff_list_for(*, actor: User) -> QuerySet[User]:
    qs = User.objects.exclude(role=Role.BORROWER).select_related("mfi").order_by("id")
    if actor.role == Role.LETSEMA_ADMIN:
        return qs
    if actor.role == Role.MFI_ADMIN and actor.mfi_id is not None:
        return qs.filter(mfi_id=actor.mfi_id)
    return qs.none()


def access_staff_by_id(actor: User, user_id) -> User:
    try:
        pk = int(user_id)
    except (TypeError, ValueError):
        raise NotFound("No such user.") from None
    user = staff_list_for(actor=actor).filter(pk=pk).first()
    if user is None:
        if User.objects.filter(pk=pk).exists():
            audit_access_denied(actor=actor, target_type="user", target_id=pk)
        raise NotFound("No such user.")
    return user
