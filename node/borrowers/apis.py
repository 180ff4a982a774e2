"""Borrower API: registration (self-service and staff-assisted), profile, phone OTP, KYC documents,
verification, consent and the network directory look-up. Views are thin: services write, selectors read."""

from __future__ import annotations

from datetime import date

from django.conf import settings
from django.http import FileResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from node.borrowers import selectors, services
from node.borrowers.identity import (
    LESOTHO_DISTRICTS,
    IdentityFormatError,
    normalise_national_id,
    normalise_phone,
)
from node.borrowers.models import Borrower, Channel
from node.core.errors import Forbidden, NotFound
from node.core.fields import MoneyField, StrictSerializer
from node.core.openapi import error_responses
from node.core.paging import page_parameters, paged_response
from node.users.models import MFI_STAFF_ROLES, Role
from node.users.permissions import role_required

OFFICERS = frozenset({Role.LOAN_OFFICER, Role.MFI_ADMIN})
SELF_OR_OFFICERS = OFFICERS | {Role.BORROWER}
SELF_OR_STAFF = frozenset(MFI_STAFF_ROLES) | {Role.BORROWER}


# --- serializers ---------------------------------------------------------------------------------
class PhoneField(serializers.CharField):
    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        try:
            return normalise_phone(value)
        except IdentityFormatError as exc:
            raise serializers.ValidationError(str(exc)) from None


class NextOfKinSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200)
    phone = PhoneField(max_length=32)
    relationship = serializers.CharField(max_length=40)


def _validate_dob(value: date) -> date:
    today = date.today()
    age = today.year - value.year - ((today.month, today.day) < (value.month, value.day))
    if value > today:
        raise serializers.ValidationError("Date of birth is in the future.")
    if age < 18:
        raise serializers.ValidationError("Borrowers must be at least 18 years old.")
    if age > 110:
        raise serializers.ValidationError("Date of birth is not plausible.")
    return value


class RegistrationSerializer(StrictSerializer):
    national_id = serializers.CharField(max_length=32)
    first_name = serializers.CharField(max_length=100)
    last_name = serializers.CharField(max_length=100)
    date_of_birth = serializers.DateField(validators=[_validate_dob])
    phone = PhoneField(max_length=32)
    address = serializers.CharField(max_length=300)
    residence_district = serializers.CharField(max_length=40)
    employer = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    employee_number = serializers.CharField(max_length=40, required=False, allow_blank=True, default="")
    monthly_income = MoneyField()
    next_of_kin = NextOfKinSerializer()

    def validate_national_id(self, value):
        try:
            return normalise_national_id(value)
        except IdentityFormatError as exc:
            raise serializers.ValidationError(str(exc)) from None

    def validate_residence_district(self, value):
        if settings.DISTRICT.country == "LS":
            match = {d.lower(): d for d in LESOTHO_DISTRICTS}.get(value.strip().lower())
            if match is None:
                raise serializers.ValidationError(f"One of: {', '.join(LESOTHO_DISTRICTS)}.")
            return match
        return value.strip()

    def to_data(self) -> services.RegistrationData:
        v = self.validated_data
        kin = v["next_of_kin"]
        return services.RegistrationData(
            national_id=v["national_id"], first_name=v["first_name"].strip(), last_name=v["last_name"].strip(),
            date_of_birth=v["date_of_birth"], phone=v["phone"], address=v["address"].strip(),
            residence_district=v["residence_district"], employer=v["employer"].strip(),
            employee_number=v["employee_number"].strip(), monthly_income=v["monthly_income"],
            next_of_kin_name=kin["name"].strip(), next_of_kin_phone=kin["phone"],
            next_of_kin_relationship=kin["relationship"].strip(),
        )


class SelfRegistrationSerializer(RegistrationSerializer):
    password = serializers.CharField(write_only=True, min_length=10, max_length=128)


class BorrowerOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    first_name = serializers.CharField()
    last_name = serializers.CharField()
    national_id_masked = serializers.SerializerMethodField()
    date_of_birth = serializers.DateField()
    phone = serializers.CharField()
    address = serializers.CharField()
    residence_district = serializers.CharField()
    employer = serializers.CharField()
    employee_number = serializers.CharField()
    monthly_income = MoneyField()
    next_of_kin = serializers.SerializerMethodField()
    phone_verified = serializers.SerializerMethodField()
    is_verified = serializers.BooleanField()
    verification_method = serializers.CharField()
    registration_channel = serializers.CharField()
    home_district = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()

    def get_national_id_masked(self, b: Borrower) -> str:
        if b.national_id is None:  # a visiting borrower: the national ID stays at the home district
            return ""
        return "*" * max(0, len(b.national_id) - 3) + b.national_id[-3:]

    def get_next_of_kin(self, b: Borrower) -> dict:
        return {"name": b.next_of_kin_name, "phone": b.next_of_kin_phone, "relationship": b.next_of_kin_relationship}

    def get_phone_verified(self, b: Borrower) -> bool:
        return b.phone_verified_at is not None

    def get_home_district(self, b: Borrower) -> str:
        return settings.DISTRICT.code


def _borrower(b: Borrower) -> dict:
    return BorrowerOutputSerializer(b).data


# --- registration --------------------------------------------------------------------------------
class BorrowerSelfRegisterApi(APIView):
    """Self-service registration at any district node (no log-in). The phone number becomes the username."""

    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(request=SelfRegistrationSerializer, responses={201: BorrowerOutputSerializer})
    def post(self, request):
        s = SelfRegistrationSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        b = services.borrower_register(
            actor=None, data=s.to_data(), channel=Channel.SELF_SERVICE, password=s.validated_data["password"]
        )
        return Response({**_borrower(b), "username": b.user.username}, status=status.HTTP_201_CREATED)


class BorrowerListApi(APIView):
    """Staff: list your MFI's clients, or register a borrower at the branch (staff-assisted)."""

    def get_permissions(self):
        if self.request.method == "POST":
            return [role_required(*OFFICERS)()]
        return [role_required(*MFI_STAFF_ROLES)()]

    @extend_schema(parameters=page_parameters(), responses=BorrowerOutputSerializer(many=True))
    def get(self, request):
        """Oldest first, a page at a time (``limit``/``offset``; ``X-Total-Count`` and ``Link`` headers)."""
        return paged_response(request, selectors.borrower_list_for(actor=request.user).order_by("id"), _borrower)

    @extend_schema(request=RegistrationSerializer, responses={201: BorrowerOutputSerializer})
    def post(self, request):
        s = RegistrationSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        b = services.borrower_register(
            actor=request.user, data=s.to_data(), channel=Channel.BRANCH, mfi=request.user.mfi
        )
        return Response(_borrower(b), status=status.HTTP_201_CREATED)


class BorrowerLinkApi(APIView):
    """Staff: make a walk-in borrower already registered at this node a client of your MFI."""

    permission_classes = [role_required(*OFFICERS)]

    class InputSerializer(StrictSerializer):
        national_id = serializers.CharField(max_length=32)

    @extend_schema(request=InputSerializer, responses=BorrowerOutputSerializer)
    def post(self, request):
        s = self.InputSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        try:
            b = services.borrower_link_to_mfi(actor=request.user, national_id=s.validated_data["national_id"])
        except IdentityFormatError as exc:
            raise serializers.ValidationError({"national_id": [str(exc)]}) from None
        return Response(_borrower(b))


class BorrowerMeApi(APIView):
    permission_classes = [role_required(Role.BORROWER)]

    @extend_schema(responses=BorrowerOutputSerializer)
    def get(self, request):
        b = Borrower.objects.filter(user=request.user).first()
        if b is None:
            raise NotFound("No borrower profile for this account.")
        return Response(_borrower(b))


class BorrowerUpdateSerializer(StrictSerializer):
    phone = PhoneField(max_length=32, required=False)
    address = serializers.CharField(max_length=300, required=False)
    residence_district = serializers.CharField(max_length=40, required=False)
    employer = serializers.CharField(max_length=200, required=False, allow_blank=True)
    employee_number = serializers.CharField(max_length=40, required=False, allow_blank=True)
    monthly_income = MoneyField(required=False)
    next_of_kin_name = serializers.CharField(max_length=200, required=False)
    next_of_kin_phone = PhoneField(max_length=32, required=False)
    next_of_kin_relationship = serializers.CharField(max_length=40, required=False)

    validate_residence_district = RegistrationSerializer.validate_residence_district


class BorrowerDetailApi(APIView):
    @extend_schema(responses=BorrowerOutputSerializer)
    def get(self, request, borrower_id):
        return Response(_borrower(selectors.access_borrower_by_id(request.user, borrower_id)))

    @extend_schema(request=BorrowerUpdateSerializer, responses=BorrowerOutputSerializer)
    def patch(self, request, borrower_id):
        b = selectors.access_borrower_by_id(request.user, borrower_id, roles=OFFICERS)
        s = BorrowerUpdateSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        b = services.borrower_update(actor=request.user, borrower=b, changes=dict(s.validated_data))
        return Response(_borrower(b))


# --- phone OTP -----------------------------------------------------------------------------------
class PhoneOtpSendApi(APIView):
    """Send a one-time code by SMS to the borrower's phone (expires in 5 minutes; resend limits apply)."""

    @extend_schema(request=None, responses={202: inline_serializer("OtpSent", {
        "sent_to": serializers.CharField(help_text="the phone number, masked"),
        "expires_at": serializers.DateTimeField(),
        "resend_after_seconds": serializers.IntegerField()})})
    @error_responses({429: "A code was sent moments ago, or too many today (otp_resend_too_soon, otp_send_limit)."})
    def post(self, request, borrower_id):
        b = selectors.access_borrower_by_id(request.user, borrower_id, roles=SELF_OR_OFFICERS)
        otp = services.otp_send(actor=request.user, borrower=b)
        return Response(
            {"sent_to": b.phone[:4] + "*" * (len(b.phone) - 7) + b.phone[-3:],
             "expires_at": otp.expires_at, "resend_after_seconds": settings.OTP_RESEND_INTERVAL_SECONDS},
            status=status.HTTP_202_ACCEPTED,
        )


class PhoneOtpVerifyApi(APIView):
    class InputSerializer(StrictSerializer):
        code = serializers.CharField(max_length=12)

    @extend_schema(request=InputSerializer, responses=BorrowerOutputSerializer)
    @error_responses({429: "Too many wrong codes for this one (otp_attempts_exceeded): request a new one."})
    def post(self, request, borrower_id):
        b = selectors.access_borrower_by_id(request.user, borrower_id, roles=SELF_OR_OFFICERS)
        s = self.InputSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        return Response(_borrower(services.otp_verify(actor=request.user, borrower=b, code=s.validated_data["code"])))


# --- KYC documents -------------------------------------------------------------------------------
class KycDocumentOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    doc_type = serializers.CharField()
    content_type = serializers.CharField()
    size = serializers.IntegerField()
    sha256 = serializers.CharField()
    original_name = serializers.CharField()
    uploaded_at = serializers.DateTimeField()
    retain_until = serializers.DateField()


class KycDocumentListApi(APIView):
    parser_classes = [MultiPartParser]

    @extend_schema(responses=KycDocumentOutputSerializer(many=True))
    def get(self, request, borrower_id):
        b = selectors.access_borrower_by_id(request.user, borrower_id, roles=SELF_OR_OFFICERS)
        return Response(KycDocumentOutputSerializer(b.documents.all(), many=True).data)

    @extend_schema(
        request={"multipart/form-data": {"type": "object", "properties": {
            "doc_type": {"type": "string", "enum": ["id_copy", "payslip", "proof_of_address"]},
            "file": {"type": "string", "format": "binary"}}}},
        responses={201: KycDocumentOutputSerializer},
    )
    @error_responses({413: "The file is larger than KYC_MAX_BYTES (file_too_large)."})
    def post(self, request, borrower_id):
        b = selectors.access_borrower_by_id(request.user, borrower_id, roles=SELF_OR_OFFICERS)
        uploaded = request.FILES.get("file")
        if uploaded is None:
            raise serializers.ValidationError({"file": ["Attach the document as 'file'."]})
        doc = services.kyc_upload(actor=request.user, borrower=b, doc_type=request.data.get("doc_type", ""), uploaded=uploaded)
        return Response(KycDocumentOutputSerializer(doc).data, status=status.HTTP_201_CREATED)


class KycDocumentContentApi(APIView):
    """Download a KYC document. ``reason`` is required and logged with who and when."""

    @extend_schema(parameters=[OpenApiParameter("reason", str, required=True)], responses={(200, "application/octet-stream"): bytes})
    def get(self, request, borrower_id, document_id):
        b = selectors.access_borrower_by_id(request.user, borrower_id, roles=SELF_OR_OFFICERS)
        doc = selectors.access_kyc_document(request.user, b, document_id)
        fh = services.kyc_open(actor=request.user, document=doc, reason=request.query_params.get("reason", ""))
        response = FileResponse(fh, content_type=doc.content_type, as_attachment=True,
                                filename=f"{doc.doc_type}-{doc.pk}.{doc.storage_name.rsplit('.', 1)[-1]}")
        response["Cache-Control"] = "no-store"
        response["X-Content-Type-Options"] = "nosniff"
        return response


# --- verification, consent, network look-up -------------------------------------------------------
class BorrowerVerifyApi(APIView):
    class InputSerializer(StrictSerializer):
        method = serializers.ChoiceField(choices=services.VERIFICATION_METHODS)

    @extend_schema(request=InputSerializer, responses=BorrowerOutputSerializer)
    def post(self, request, borrower_id):
        b = selectors.access_borrower_by_id(request.user, borrower_id, roles=OFFICERS)
        s = self.InputSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        return Response(_borrower(services.borrower_verify(actor=request.user, borrower=b, method=s.validated_data["method"])))


class ConsentOutputSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    language = serializers.CharField()
    channel = serializers.CharField()
    given_at = serializers.DateTimeField()
    withdrawn_at = serializers.DateTimeField(allow_null=True)
    withdrawal_channel = serializers.CharField()


def _channel_for(user) -> str:
    return Channel.SELF_SERVICE if user.role == Role.BORROWER else Channel.BRANCH


class ConsentApi(APIView):
    class InputSerializer(StrictSerializer):
        version = serializers.IntegerField(min_value=1)
        language = serializers.ChoiceField(choices=["en", "st"])

    @extend_schema(responses=ConsentOutputSerializer(many=True))
    def get(self, request, borrower_id):
        b = selectors.access_borrower_by_id(request.user, borrower_id, roles=SELF_OR_STAFF)
        return Response(ConsentOutputSerializer(selectors.consent_history(borrower=b), many=True).data)

    @extend_schema(request=InputSerializer, responses={201: ConsentOutputSerializer})
    def post(self, request, borrower_id):
        b = selectors.access_borrower_by_id(request.user, borrower_id, roles=SELF_OR_OFFICERS)
        s = self.InputSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        c = services.consent_give(actor=request.user, borrower=b, channel=_channel_for(request.user), **s.validated_data)
        return Response(ConsentOutputSerializer(c).data, status=status.HTTP_201_CREATED)


class ConsentWithdrawApi(APIView):
    @extend_schema(request=None, responses=ConsentOutputSerializer)
    def post(self, request, borrower_id):
        b = selectors.access_borrower_by_id(request.user, borrower_id, roles=SELF_OR_OFFICERS)
        c = services.consent_withdraw(actor=request.user, borrower=b, channel=_channel_for(request.user))
        return Response(ConsentOutputSerializer(c).data)


class ConsentTextApi(APIView):
    """The current consent text (public), in English (en) or Sesotho (st)."""

    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(parameters=[OpenApiParameter("language", str, enum=["en", "st"])],
                   responses=inline_serializer("ConsentText", {
                       "version": serializers.IntegerField(), "language": serializers.CharField(),
                       "title": serializers.CharField(), "body": serializers.CharField()}))
    def get(self, request):
        language = request.query_params.get("language", "en")
        if language not in ("en", "st"):
            raise serializers.ValidationError({"language": ["One of: en, st."]})
        text = selectors.consent_text_current(language=language)
        if text is None:
            raise NotFound("No consent text is published.")
        return Response({"version": text.version, "language": text.language, "title": text.title, "body": text.body})


class BorrowerNetworkApi(APIView):
    """Where the borrower is registered in the network and whether verified. Requires the borrower's consent."""

    @extend_schema(responses=inline_serializer("NetworkEntry", {
        "home_district": serializers.CharField(), "verified": serializers.BooleanField(),
        "verification_method": serializers.CharField(allow_blank=True, allow_null=True),
        "registered_at": serializers.DateTimeField(allow_null=True)}))
    def get(self, request, borrower_id):
        b = selectors.access_borrower_by_id(request.user, borrower_id, roles=OFFICERS)
        entry = services.borrower_network_lookup(actor=request.user, borrower=b)
        if entry is None:
            raise Forbidden("This borrower is not in the network directory.", code="not_in_directory")
        return Response({
            "home_district": entry.home_district, "verified": entry.verified,
            "verification_method": entry.verification_method, "registered_at": entry.registered_at,
        })
