from decimal import Decimal

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from node.core.fields import MoneyField, StrictSerializer
from node.mfis.selectors import mfi_list_for
from node.mfis.services import mfi_onboard
from node.users.models import Role
from node.users.permissions import STAFF_ROLES, role_required


class MfiOutputSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    registration_number = serializers.CharField()
    home_district = serializers.CharField()
    interest_rate_cap = MoneyField(places=4, allow_null=True)
    is_active = serializers.BooleanField()


class MfiOnboardSerializer(StrictSerializer):
    code = serializers.RegexField(r"^[a-z][a-z0-9-]{1,39}$", help_text="lower-case letters, digits, '-'")
    name = serializers.CharField(max_length=200)
    registration_number = serializers.CharField(max_length=60)
    home_district = serializers.RegexField(r"^[a-z][a-z0-9_]{1,31}$", required=False)
    interest_rate_cap = MoneyField(places=4, help_text="annual nominal rate cap in percent, e.g. \"60\"")
    admin_username = serializers.RegexField(r"^[\w.@+-]{3,150}$")
    admin_first_name = serializers.CharField(max_length=150)
    admin_last_name = serializers.CharField(max_length=150)
    admin_email = serializers.EmailField(required=False, allow_blank=True, default="")
    admin_password = serializers.CharField(required=False, write_only=True, min_length=10, max_length=128)


class MfiApi(APIView):
    """List MFIs (staff see their own MFI; Letsema admins and operators see all) or onboard one (Letsema
    admins): the MFI and its first MFI admin in one step. Without ``admin_password`` a temporary password is
    generated and returned once."""

    def get_permissions(self):
        if self.request.method == "POST":
            return [role_required(Role.LETSEMA_ADMIN)()]
        return [role_required(*STAFF_ROLES)()]

    @extend_schema(responses=MfiOutputSerializer(many=True))
    def get(self, request):
        return Response(MfiOutputSerializer(mfi_list_for(actor=request.user), many=True).data)

    @extend_schema(request=MfiOnboardSerializer, responses={201: MfiOutputSerializer})
    def post(self, request):
        s = MfiOnboardSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        v = s.validated_data
        result = mfi_onboard(
            actor=request.user, code=v["code"], name=v["name"], registration_number=v["registration_number"],
            interest_rate_cap=Decimal(v["interest_rate_cap"]), admin_username=v["admin_username"],
            admin_first_name=v["admin_first_name"], admin_last_name=v["admin_last_name"],
            admin_email=v["admin_email"], admin_password=v.get("admin_password"),
            home_district=v.get("home_district", settings.DISTRICT.code),
        )
        body = MfiOutputSerializer(result.mfi).data
        body["admin"] = {"username": result.admin.username, "temporary_password": result.temporary_password}
        return Response(body, status=status.HTTP_201_CREATED)
