from django.conf import settings
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from node.core.fields import StrictSerializer
from node.core.openapi import error_responses
from node.mfis.models import Mfi
from node.users import selectors as user_selectors
from node.users import services as user_services
from node.users import tokens
from node.users.models import Role
from node.users.permissions import role_required


class TokenPair(serializers.Serializer):
    """What a sign-in or a refresh answers (the OpenAPI document's description of it)."""

    access = serializers.CharField(help_text="the access token (Authorization: Bearer …)")
    refresh = serializers.CharField(help_text="the session's newest refresh token: store it, the one sent is spent")
    access_expires_in = serializers.IntegerField(help_text="seconds")


class SignedIn(TokenPair):
    role = serializers.CharField()
    district = serializers.CharField()


class TokenObtainApi(APIView):
    """Log in with username and password; returns a short-lived access token and a refresh token (one token
    session). After 10 failed passwords for an account within 15 minutes the account is throttled: 429
    ``login_throttled`` with ``Retry-After``."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    class InputSerializer(StrictSerializer):
        username = serializers.CharField(max_length=150)
        password = serializers.CharField(max_length=256, trim_whitespace=False)

    @extend_schema(request=InputSerializer, responses=SignedIn)
    @error_responses({429: "Too many failed passwords for this account in 15 minutes (login_throttled)."})
    def post(self, request):
        s = self.InputSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        user = tokens.password_sign_in(**s.validated_data)
        return Response({**tokens.token_pair_issue(user=user), "role": user.role, "district": settings.DISTRICT.code})


class TokenRefreshApi(APIView):
    """Exchange the session's newest refresh token for a new access token and a new refresh token (rotation:
    the one sent is spent; sending a spent one again signs the whole session out)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    class InputSerializer(StrictSerializer):
        refresh = serializers.CharField(max_length=2048)

    @extend_schema(request=InputSerializer, responses=TokenPair)
    def post(self, request):
        s = self.InputSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        return Response(tokens.token_refresh(raw=s.validated_data["refresh"]))


class LogoutApi(APIView):
    """Sign out: the session of the access token used ends now (its access and refresh tokens are refused from
    the next request); ``{"everywhere": true}`` ends every session of your account."""

    class InputSerializer(StrictSerializer):
        everywhere = serializers.BooleanField(required=False, default=False)

    @extend_schema(request=InputSerializer,
                   responses=inline_serializer("LoggedOut", {"revoked_sessions": serializers.IntegerField()}))
    def post(self, request):
        s = self.InputSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        n = tokens.token_sessions_revoke(actor=request.user, sid=request.auth.get("sid"),
                                         everywhere=s.validated_data["everywhere"])
        return Response({"revoked_sessions": n})


class MeApi(APIView):
    class OutputSerializer(serializers.Serializer):
        username = serializers.CharField()
        first_name = serializers.CharField()
        last_name = serializers.CharField()
        role = serializers.CharField()
        mfi = serializers.CharField(allow_null=True)
        district = serializers.CharField()

    @extend_schema(responses=OutputSerializer)
    def get(self, request):
        u = request.user
        return Response(
            self.OutputSerializer(
                {
                    "username": u.username,
                    "first_name": u.first_name,
                    "last_name": u.last_name,
                    "role": u.role,
                    "mfi": u.mfi.code if u.mfi_id else None,
                    "district": settings.DISTRICT.code,
                }
            ).data
        )


class NodeInfoApi(APIView):
    """Which district this node serves (public)."""

    permission_classes = [AllowAny]
    authentication_classes: list = []

    class OutputSerializer(serializers.Serializer):
        district = serializers.CharField()
        name = serializers.CharField()
        country = serializers.CharField()
        currency = serializers.CharField()
        public_url = serializers.CharField()
        mfis = serializers.ListField(child=serializers.CharField())

    @extend_schema(responses=OutputSerializer)
    def get(self, request):
        d = settings.DISTRICT
        return Response(
            {
                "district": d.code,
                "name": d.name,
                "country": d.country,
                "currency": d.currency,
                "public_url": d.public_url,
                "mfis": [m.code for m in d.mfis],
            }
        )


# --- staff management -------------------------------------------------------------------------------

STAFF_MANAGERS = (Role.MFI_ADMIN, Role.LETSEMA_ADMIN)


class StaffOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    first_name = serializers.CharField()
    last_name = serializers.CharField()
    email = serializers.CharField()
    role = serializers.CharField()
    mfi = serializers.SerializerMethodField()
    is_active = serializers.BooleanField()

    def get_mfi(self, u) -> str | None:
        return u.mfi.code if u.mfi_id else None


class StaffCreateSerializer(StrictSerializer):
    username = serializers.RegexField(r"^[\w.@+-]{3,150}$")
    first_name = serializers.CharField(max_length=150)
    last_name = serializers.CharField(max_length=150)
    email = serializers.EmailField(required=False, allow_blank=True, default="")
    role = serializers.ChoiceField(choices=[r for r in Role.values if r != Role.BORROWER])
    password = serializers.CharField(write_only=True, min_length=10, max_length=128)
    mfi = serializers.SlugRelatedField(slug_field="code", queryset=Mfi.objects.all(), required=False, allow_null=True)


class StaffUpdateSerializer(StrictSerializer):
    role = serializers.ChoiceField(choices=[r for r in Role.values if r != Role.BORROWER], required=False)
    is_active = serializers.BooleanField(required=False)


class StaffListApi(APIView):
    """MFI admins: your MFI's staff. Letsema admins: all staff of this node."""

    permission_classes = [role_required(*STAFF_MANAGERS)]

    @extend_schema(responses=StaffOutputSerializer(many=True))
    def get(self, request):
        return Response(StaffOutputSerializer(user_selectors.staff_list_for(actor=request.user), many=True).data)

    @extend_schema(request=StaffCreateSerializer, responses={201: StaffOutputSerializer})
    def post(self, request):
        s = StaffCreateSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        user = user_services.staff_create(actor=request.user, **s.validated_data)
        return Response(StaffOutputSerializer(user).data, status=201)


class StaffDetailApi(APIView):
    permission_classes = [role_required(*STAFF_MANAGERS)]

    @extend_schema(responses=StaffOutputSerializer)
    def get(self, request, user_id):
        return Response(StaffOutputSerializer(user_selectors.access_staff_by_id(request.user, user_id)).data)

    @extend_schema(request=StaffUpdateSerializer, responses=StaffOutputSerializer)
    def patch(self, request, user_id):
        user = user_selectors.access_staff_by_id(request.user, user_id)
        s = StaffUpdateSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        return Response(StaffOutputSerializer(user_services.staff_update(actor=request.user, user=user, **s.validated_data)).data)
