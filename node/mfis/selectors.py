from django.db.models import QuerySet

from node.mfis.models import Mfi
from node.users.models import Role, User


def mfi_list_for(*, actor: User) -> QuerySet[Mfi]:
    """MFIs the actor may see: all for Letsema admins and operators, otherwise only the actor's own MFI."""
    qs = Mfi.objects.all()
    if actor.role in (Role.LETSEMA_ADMIN, Role.OPERATOR):
        return qs
    if actor.mfi_id is None:
        return qs.none()
    return qs.filter(pk=actor.mfi_id)
