"""Notification API: a borrower's notification preference (channel, language, e-mail) and notification log.

Borrowers see and set their own; MFI staff see those of their MFI's clients, and loan officers and MFI admins set
them on the borrower's behalf. Another MFI's borrower answers exactly like a missing one (404)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from node.borrowers.selectors import access_borrower_by_id
from node.core.errors import ValidationFailed
from node.core.fields import StrictSerializer
from node.notifications import selectors, services
from node.notifications.models import (
    Language,
    Notification,
    NotificationPreference,
    NotificationStatus,
    NotifyChannel,
)
from node.users.models import MFI_STAFF_ROLES, Role

READERS = frozenset(MFI_STAFF_ROLES) | {Role.BORROWER}
WRITERS = frozenset({Role.BORROWER, Role.LOAN_OFFICER, Role.MFI_ADMIN})
MAX_LIMIT = 200


def preference_json(p: NotificationPreference) -> dict:
    return {
        "borrower": p.borrower_id,
        "channel": p.channel,
        "language": p.language,
        "email": p.email or None,
        "updated_at": p.updated_at.isoformat() if p.updated_at else None,
        "updated_by": p.updated_by.username if p.updated_by_id else None,
        "channels": list(NotifyChannel.values),
        "languages": list(Language.values),
    }


def notification_json(n: Notification) -> dict:
    return {
        "id": n.pk,
        "event_key": n.event_key,
        "kind": n.kind,
        "status": n.status,
        "loan": n.loan_id,
        "loan_reference": n.loan.reference if n.loan_id else None,
        "channels": n.channel_list(),
        "language": n.language or None,
        "attempts": n.attempts,
        "next_attempt_at": n.next_attempt_at.isoformat() if n.status == NotificationStatus.PENDING else None,
        "last_error": n.last_error or None,
        "created_at": n.created_at.isoformat(),
        "sent_at": n.sent_at.isoformat() if n.sent_at else None,
        "deliveries": [
            {"attempt": a.attempt, "channel": a.channel, "to": a.to_masked, "language": a.language,
             "template": a.template, "attempted_at": a.attempted_at.isoformat(),
             "sent_at": a.sent_at.isoformat() if a.sent_at else None,
             "gateway_message_id": a.gateway_message_id or None, "error": a.error or None}
            for a in n.log.all()
        ],
    }


class PreferenceOut(serializers.Serializer):
    """The preference as answered (the OpenAPI document's description)."""

    borrower = serializers.IntegerField()
    channel = serializers.ChoiceField(choices=NotifyChannel.values)
    language = serializers.ChoiceField(choices=Language.values)
    email = serializers.CharField(allow_null=True)
    updated_at = serializers.DateTimeField(allow_null=True)
    updated_by = serializers.CharField(allow_null=True)
    channels = serializers.ListField(child=serializers.CharField(), help_text="the channels one may choose")
    languages = serializers.ListField(child=serializers.CharField(), help_text="the languages one may choose")


class DeliveryOut(serializers.Serializer):
    attempt = serializers.IntegerField()
    channel = serializers.CharField()
    to = serializers.CharField(help_text="the recipient, masked")
    language = serializers.CharField()
    template = serializers.CharField()
    attempted_at = serializers.DateTimeField()
    sent_at = serializers.DateTimeField(allow_null=True)
    gateway_message_id = serializers.CharField(allow_null=True)
    error = serializers.CharField(allow_null=True)


class NotificationOut(serializers.Serializer):
    id = serializers.IntegerField()
    event_key = serializers.CharField()
    kind = serializers.CharField()
    status = serializers.ChoiceField(choices=NotificationStatus.values)
    loan = serializers.IntegerField(allow_null=True)
    loan_reference = serializers.CharField(allow_null=True)
    channels = serializers.ListField(child=serializers.CharField())
    language = serializers.CharField(allow_null=True)
    attempts = serializers.IntegerField()
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    last_error = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    sent_at = serializers.DateTimeField(allow_null=True)
    deliveries = DeliveryOut(many=True)


class PreferenceSerializer(StrictSerializer):
    channel = serializers.ChoiceField(choices=NotifyChannel.values, required=False)
    language = serializers.ChoiceField(choices=Language.values, required=False)
    email = serializers.EmailField(max_length=254, required=False, allow_blank=True, allow_null=True)


class NotificationPreferenceApi(APIView):
    """``GET``: the borrower's notification preference (defaults: SMS, English). ``PUT``: change channel
    (sms/email/both/none), language (en/st) and e-mail address — by the borrower, or a loan officer or MFI admin on
    the borrower's behalf. Fields left out keep their value; e-mail channels need an address."""

    @extend_schema(responses=PreferenceOut)
    def get(self, request, borrower_id):
        b = access_borrower_by_id(request.user, borrower_id, roles=READERS)
        return Response(preference_json(selectors.preference_get(borrower=b)))

    @extend_schema(request=PreferenceSerializer, responses=PreferenceOut)
    def put(self, request, borrower_id):
        b = access_borrower_by_id(request.user, borrower_id, roles=WRITERS)
        s = PreferenceSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        v = s.validated_data
        email = v.get("email", None)
        if "email" in v and email is None:
            email = ""
        services.preference_set(actor=request.user, borrower=b, channel=v.get("channel"),
                                language=v.get("language"), email=email)
        return Response(preference_json(selectors.preference_get(borrower=b)))


class NotificationLogApi(APIView):
    """The borrower's notifications, newest first, with every delivery attempt (recipient masked). MFI staff see
    the notifications of their own MFI's loans; the borrower sees all of theirs."""

    @extend_schema(parameters=[OpenApiParameter("status", str, enum=NotificationStatus.values),
                               OpenApiParameter("limit", int, description=f"default 50, at most {MAX_LIMIT}")],
                   responses=NotificationOut(many=True))
    def get(self, request, borrower_id):
        b = access_borrower_by_id(request.user, borrower_id, roles=READERS)
        status = request.query_params.get("status") or None
        if status is not None and status not in NotificationStatus.values:
            raise ValidationFailed("Unknown status.", details={"fields": {"status": list(NotificationStatus.values)}})
        try:
            limit = int(request.query_params.get("limit", "50"))
        except ValueError:
            limit = -1
        if not 1 <= limit <= MAX_LIMIT:
            raise ValidationFailed(f"limit must be 1 to {MAX_LIMIT}.", details={"fields": {"limit": [f"1..{MAX_LIMIT}"]}})
        rows = selectors.notification_list(actor=request.user, borrower=b, status=status)[:limit]
        return Response([notification_json(n) for n in rows])
