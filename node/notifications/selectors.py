"""Reads for notifications. Access to the borrower goes through ``node.borrowers.selectors.access_borrower_by_id``
(another MFI's borrower answers like a missing one); MFI staff then see only their own MFI's notifications."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from node.borrowers.models import Borrower
from node.notifications.models import (
    Notification,
    NotificationAttempt,
    NotificationPreference,
)
from node.users.models import Role, User


def preference_get(*, borrower: Borrower) -> NotificationPreference:
    """The stored preference, or the defaults (SMS, English) unsaved."""
    return (NotificationPreference.objects.filter(borrower=borrower).select_related("updated_by").first()
            or NotificationPreference(borrower=borrower))


def notification_list(*, actor: User, borrower: Borrower, status: str | None = None) -> QuerySet[Notification]:
    qs = (Notification.objects.filter(borrower=borrower).select_related("loan")
          .prefetch_related(Prefetch("log", queryset=NotificationAttempt.objects.order_by("attempted_at", "id")))
          .order_by("-created_at", "-id"))
    if actor.role != Role.BORROWER:
        qs = qs.filter(mfi_id=actor.mfi_id)
    if status:
        qs = qs.filter(status=status)
    return qs
