from decimal import Decimal

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from node.core.errors import NotFound
from node.core.fields import MoneyField, StrictSerializer
from node.mfis.selectors import mfi_list_for
from node.mfis.services import mfi_notifications_set, mfi_onboard, mfi_paybill_set
from node.users.models import Role
from node.users.permissions import STAFF_ROLES, role_required


class MfiOutputSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    registration_number = serializers.CharField()
    home_district = serializers.CharField()
    interest_rate_cap = MoneyField(places=4, allow_null=True)
    paybill_number = serializers.CharField(allow_null=True, help_text="mobile-money business (Pay Bill) number")
    notify_payroll_repayments = serializers.BooleanField(
        help_text="payroll deductions send borrowers a 'repayment received' message")
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


def mfi_onboard_validated(*, actor, data: dict):
    """``mfi_onboard`` with an :class:`MfiOnboardSerializer`'s validated data (the API and the web page)."""
    return mfi_onboard(
        actor=actor, code=data["code"], name=data["name"], registration_number=data["registration_number"],
        interest_rate_cap=Decimal(data["interest_rate_cap"]), admin_username=data["admin_username"],
        admin_first_name=data["admin_first_name"], admin_last_name=data["admin_last_name"],
        admin_email=data["admin_email"], admin_password=data.get("admin_password"),
        home_district=data.get("home_district", settings.DISTRICT.code),
    )


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
        result = mfi_onboard_validated(actor=request.user, data=s.validated_data)
        body = MfiOutputSerializer(result.mfi).data
        body["admin"] = {"username": result.admin.username, "temporary_password": result.temporary_password}
        return Response(body, status=status.HTTP_201_CREATED)


def _visible_mfi(actor, code: str):
    """The MFI ``code`` if ``actor`` may see it, else 404 as for one that does not exist."""
    mfi = mfi_list_for(actor=actor).filter(code=code).first()
    if mfi is None:
        raise NotFound("No such MFI.")
    return mfi


class MfiPaybillSerializer(StrictSerializer):
    paybill_number = serializers.CharField(allow_null=True, allow_blank=True, max_length=20,
                                           help_text="4 to 12 digits; null or empty clears it")


class MfiPaybillApi(APIView):
    """Set the MFI's mobile-money business ("Pay Bill") number, to which borrowers send repayments with their loan
    reference as the account (the MFI's admins, Letsema admins). 409 ``paybill_number_taken``."""

    permission_classes = [role_required(Role.MFI_ADMIN, Role.LETSEMA_ADMIN)]

    @extend_schema(request=MfiPaybillSerializer, responses={200: MfiOutputSerializer})
    def put(self, request, code):
        mfi = _visible_mfi(request.user, code)
        s = MfiPaybillSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        mfi = mfi_paybill_set(actor=request.user, mfi=mfi, paybill_number=s.validated_data["paybill_number"])
        return Response(MfiOutputSerializer(mfi).data)


class MfiNotificationsSerializer(StrictSerializer):
    payroll_repayments = serializers.BooleanField(
        help_text="whether payroll deductions posted from an employer's file send a 'repayment received' message")


class MfiNotificationsApi(APIView):
    """Which borrower messages the MFI sends where it has a choice: today, whether a payroll file's deductions each
    send "repayment received" (the MFI's admins, Letsema admins; audited ``mfi.notifications_set``)."""

    permission_classes = [role_required(Role.MFI_ADMIN, Role.LETSEMA_ADMIN)]

    @extend_schema(request=MfiNotificationsSerializer, responses={200: MfiOutputSerializer})
    def put(self, request, code):
        mfi = _visible_mfi(request.user, code)
        s = MfiNotificationsSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        mfi = mfi_notifications_set(actor=request.user, mfi=mfi,
                                    payroll_repayments=s.validated_data["payroll_repayments"])
        return Response(MfiOutputSerializer(mfi).data)
