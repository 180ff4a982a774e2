"""Role checks for API views: ``permission_classes = [role_required(Role.LETSEMA_ADMIN)]``."""

from rest_framework.permissions import BasePermission

from node.users.models import Role


def role_required(*roles: Role) -> type[BasePermission]:
    allowed = frozenset(roles)

    class HasRole(BasePermission):
        message = f"This action needs one of the roles: {', '.join(sorted(allowed))}."

        def has_permission(self, request, view) -> bool:
            user = request.user
            return bool(user and user.is_authenticated and user.role in allowed)

    HasRole.__name__ = "HasRole_" + "_".join(sorted(allowed))
    return HasRole


STAFF_ROLES = (Role.LOAN_OFFICER, Role.MFI_ADMIN, Role.ANALYST, Role.LETSEMA_ADMIN, Role.OPERATOR)
