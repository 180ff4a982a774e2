from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView


class LetsemaTokenObtainPairSerializer(TokenObtainPairSerializer):
    default_error_messages = {"no_active_account": "Wrong username or password, or the account is disabled."}

    @classmethod
    def get_token(cls, user):
        token = super().get_token(user)
        token["role"] = user.role
        token["district"] = settings.DISTRICT.code
        token["mfi"] = user.mfi.code if user.mfi_id else None
        return token

    def validate(self, attrs):
        data = super().validate(attrs)
        data["role"] = self.user.role
        data["district"] = settings.DISTRICT.code
        data["access_expires_in"] = int(settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"].total_seconds())
        return data


class TokenObtainApi(TokenObtainPairView):
    """Log in with username and password; returns a short-lived access token and a refresh token."""

    serializer_class = LetsemaTokenObtainPairSerializer


class TokenRefreshApi(TokenRefreshView):
    """Exchange a refresh token for a new access token."""


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
