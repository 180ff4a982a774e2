"""Loans API: the public calculator, products, applications through approval, maker-checker disbursement."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from node.borrowers.models import Borrower
from node.borrowers.selectors import access_borrower_by_id
from node.core.errors import NotFound, ValidationFailed
from node.core.fields import MoneyField, StrictSerializer
from node.core.idempotency import idempotent
from node.core.openapi import error_responses
from node.core.paging import page_parameters, paged_response
from node.credit.apis import ENQUIRY_LIMIT_ANSWER, assessment_json
from node.credit.schemas import CreditAssessment
from node.loans import products as product_services
from node.loans import schemas, selectors, services
from node.loans.models import DisbursementChannel, Loan, LoanStatus, RejectionReason
from node.loans.schedule import (
    ScheduleInputError,
    generate_schedule,
    parse_schedule_input,
    schedule_to_json,
)
from node.users.models import Role
from node.users.permissions import role_required

OFFICERS = frozenset({Role.LOAN_OFFICER, Role.MFI_ADMIN})
OWNER_OR_OFFICERS = OFFICERS | {Role.BORROWER}


# --- the public calculator -------------------------------------------------------------------------
class SchedulePreviewApi(APIView):
    """Public loan calculator: the repayment schedule for the given terms (same JSON as ``preview_schedule``).

    Amounts and rates are strings. Invalid input answers 400 ``validation_error`` with field-level errors."""

    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(request=schemas.ScheduleInput, responses=schemas.Schedule)
    def post(self, request):
        try:
            return Response(schedule_to_json(generate_schedule(parse_schedule_input(request.data))))
        except ScheduleInputError as exc:
            raise ValidationFailed("The schedule input is invalid.", details={"fields": exc.errors}) from None


# --- products ------------------------------------------------------------------------------------
class ProductSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    mfi = serializers.CharField(source="mfi.code", read_only=True)
    code = serializers.SlugField(max_length=40)
    name = serializers.CharField(max_length=200)
    currency = serializers.ChoiceField(choices=["LSL", "ZMW"], default="LSL")
    currency_decimals = serializers.IntegerField(min_value=0, max_value=6, default=2)
    currency_in_multiples_of = serializers.IntegerField(min_value=0, default=0)
    installment_in_multiples_of = serializers.IntegerField(min_value=1, required=False, allow_null=True, default=None)
    annual_interest_rate = MoneyField(places=6)
    interest_method = serializers.ChoiceField(choices=["FLAT", "DECLINING_BALANCE"])
    amortization = serializers.ChoiceField(choices=["EQUAL_INSTALLMENTS", "EQUAL_PRINCIPAL"])
    interest_calculation_period = serializers.ChoiceField(choices=["SAME_AS_REPAYMENT_PERIOD", "DAILY"], default="SAME_AS_REPAYMENT_PERIOD")
    schedule_type = serializers.ChoiceField(choices=["CUMULATIVE", "PROGRESSIVE"], default="CUMULATIVE")
    repayment_every = serializers.IntegerField(min_value=1, max_value=120, default=1)
    repayment_frequency = serializers.ChoiceField(choices=["DAYS", "WEEKS", "MONTHS"])
    days_in_year = serializers.ChoiceField(choices=["ACTUAL", "360", "364", "365"], default="ACTUAL")
    days_in_month = serializers.ChoiceField(choices=["ACTUAL", "30"], default="ACTUAL")
    grace_on_principal_periods = serializers.IntegerField(min_value=0, default=0)
    grace_on_interest_payment_periods = serializers.IntegerField(min_value=0, default=0)
    grace_on_interest_charged_periods = serializers.IntegerField(min_value=0, default=0)
    min_principal = MoneyField()
    max_principal = MoneyField()
    min_repayments = serializers.IntegerField(min_value=1, max_value=600)
    max_repayments = serializers.IntegerField(min_value=1, max_value=600)
    fees = serializers.ListField(child=serializers.DictField(), default=list)
    overdue_penalty = serializers.DictField(required=False, allow_null=True, default=None)
    is_active = serializers.BooleanField(read_only=True)


class ProductCreateSerializer(StrictSerializer, ProductSerializer):
    pass


class ProductListApi(APIView):
    """Products on offer (public; filter with ``?mfi=<code>``). MFI admins create products for their MFI."""

    def get_permissions(self):
        if self.request.method == "POST":
            return [role_required(Role.MFI_ADMIN)()]
        return [AllowAny()]

    @extend_schema(parameters=[OpenApiParameter("mfi", str)], responses=ProductSerializer(many=True))
    def get(self, request):
        return Response(ProductSerializer(selectors.product_list(mfi_code=request.query_params.get("mfi")), many=True).data)

    @extend_schema(request=ProductCreateSerializer, responses={201: ProductSerializer})
    def post(self, request):
        s = ProductCreateSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        product = product_services.product_create(actor=request.user, mfi=request.user.mfi, data=dict(s.validated_data))
        return Response(ProductSerializer(product).data, status=status.HTTP_201_CREATED)


# --- loans ---------------------------------------------------------------------------------------
class LoanSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    reference = serializers.CharField()
    status = serializers.CharField()
    mfi = serializers.CharField(source="mfi.code")
    product = serializers.IntegerField(source="product_id")
    borrower = serializers.IntegerField(source="borrower_id")
    principal = MoneyField()
    number_of_repayments = serializers.IntegerField()
    annual_interest_rate = MoneyField(places=6)
    expected_disbursement_date = serializers.DateField()
    purpose = serializers.CharField()
    approved_by = serializers.CharField(source="approved_by.username", default=None, allow_null=True)
    approved_at = serializers.DateTimeField()
    rejection_reason = serializers.CharField()
    disbursement_channel = serializers.CharField()
    disbursement_reference = serializers.CharField()
    disbursement_initiated_by = serializers.CharField(source="disbursement_initiated_by.username", default=None,
                                                      allow_null=True)
    disbursed_by = serializers.CharField(source="disbursed_by.username", default=None, allow_null=True)
    disbursement_date = serializers.DateField()
    rescheduled_from = serializers.IntegerField(source="rescheduled_from_id", allow_null=True)
    created_at = serializers.DateTimeField()


class LoanApplySerializer(StrictSerializer):
    product = serializers.IntegerField()
    borrower = serializers.IntegerField(required=False, help_text="staff only: the borrower applied for")
    principal = MoneyField()
    number_of_repayments = serializers.IntegerField(min_value=1, max_value=600)
    expected_disbursement_date = serializers.DateField()
    purpose = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")


class LoanTermsSerializer(StrictSerializer):
    principal = MoneyField(required=False)
    number_of_repayments = serializers.IntegerField(min_value=1, max_value=600, required=False)
    annual_interest_rate = MoneyField(places=6, required=False)
    expected_disbursement_date = serializers.DateField(required=False)


def _loan(loan: Loan) -> dict:
    return LoanSerializer(loan).data


class LoanListApi(APIView):
    """Your loans and applications (borrowers: your own; staff: your MFI's), or apply for a loan."""

    def get_permissions(self):
        return [role_required(*OWNER_OR_OFFICERS, Role.ANALYST)()]

    @extend_schema(parameters=[OpenApiParameter("status", str, enum=LoanStatus.values), *page_parameters()],
                   responses=LoanSerializer(many=True))
    def get(self, request):
        """Oldest first, a page at a time (``limit``/``offset``; ``X-Total-Count`` and ``Link`` headers)."""
        qs = selectors.loan_list_for(actor=request.user)
        status_ = request.query_params.get("status")
        if status_:
            if status_ not in LoanStatus.values:
                raise ValidationFailed("Unknown loan status.", details={"fields": {"status": list(LoanStatus.values)}})
            qs = qs.filter(status=status_)
        # the serializer names the staff who approved and disbursed: joined here, not one query per loan and field
        qs = qs.select_related("approved_by", "disbursement_initiated_by", "disbursed_by")
        return paged_response(request, qs.order_by("id"), _loan)

    @extend_schema(request=LoanApplySerializer, responses={201: LoanSerializer})
    @error_responses({404: "No such product or borrower (or not one the caller may lend to)."})
    def post(self, request):
        s = LoanApplySerializer(data=request.data)
        s.is_valid(raise_exception=True)
        v = s.validated_data
        product = selectors.product_get(v["product"])
        if request.user.role == Role.BORROWER:
            borrower = Borrower.objects.filter(user=request.user).first()
            if borrower is None:
                raise NotFound("No borrower profile for this account.")
        elif request.user.role in OFFICERS:
            if "borrower" not in v:
                raise ValidationFailed("Name the borrower.", details={"fields": {"borrower": ["required"]}})
            borrower = access_borrower_by_id(request.user, v["borrower"])
            if product.mfi_id != request.user.mfi_id:
                raise NotFound("No such product.")
        else:
            raise ValidationFailed("Analysts cannot apply for loans.", code="permission_denied")
        loan = services.loan_apply(
            actor=request.user, borrower=borrower, product=product, principal=v["principal"],
            number_of_repayments=v["number_of_repayments"], expected_disbursement_date=v["expected_disbursement_date"],
            purpose=v["purpose"],
        )
        return Response(_loan(loan), status=status.HTTP_201_CREATED)


class LoanDetailApi(APIView):
    @extend_schema(responses=LoanSerializer)
    def get(self, request, loan_id):
        return Response(_loan(selectors.access_loan_by_id(request.user, loan_id)))

    @extend_schema(request=LoanTermsSerializer, responses=LoanSerializer)
    def patch(self, request, loan_id):
        loan = selectors.access_loan_by_id(request.user, loan_id, roles=OWNER_OR_OFFICERS)
        s = LoanTermsSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        return Response(_loan(services.loan_update_terms(actor=request.user, loan=loan, changes=dict(s.validated_data))))


class LoanScheduleApi(APIView):
    """The stored schedule of a disbursed loan, or the schedule its current terms would produce."""

    @extend_schema(responses=schemas.LoanSchedule)
    def get(self, request, loan_id):
        loan = selectors.access_loan_by_id(request.user, loan_id)
        if loan.schedule is not None:
            return Response({"stored": True, **loan.schedule})
        preview = product_services.build_schedule(
            loan.product, principal=loan.principal, number_of_repayments=loan.number_of_repayments,
            annual_interest_rate=loan.annual_interest_rate, disbursement_date=loan.expected_disbursement_date)
        return Response({"stored": False, **preview})


class LoanCreditReportApi(APIView):
    """The network credit report and score for this application, as the loan officer sees it before deciding:
    every loan the borrower holds at any MFI in any district, enquiries, and the grade with its reasons (this
    application scored as the new debt). Logged as a ``loan_application`` enquiry by your MFI."""

    @extend_schema(request=None, responses=CreditAssessment)
    @error_responses(ENQUIRY_LIMIT_ANSWER)
    def post(self, request, loan_id):
        loan = selectors.access_loan_by_id(request.user, loan_id, roles=OFFICERS)
        a = services.loan_credit_assess(actor=request.user, loan=loan)
        return Response(assessment_json(a, purpose="loan_application", monthly_income=loan.borrower.monthly_income))


def _action(service, roles, input_serializer=None, with_idempotency=False, header_kwargs=None):
    """A thin POST view for one lifecycle action; answers the loan the service returns. ``header_kwargs`` maps
    service keyword arguments to request headers (e.g. the step-up token)."""

    class ActionApi(APIView):
        @extend_schema(request=input_serializer, responses=LoanSerializer)
        def post(self, request, loan_id):
            loan = selectors.access_loan_by_id(request.user, loan_id, roles=roles)
            kwargs = {}
            if input_serializer is not None:
                s = input_serializer(data=request.data)
                s.is_valid(raise_exception=True)
                kwargs = dict(s.validated_data)
            for kwarg, header in (header_kwargs or {}).items():
                kwargs[kwarg] = request.headers.get(header)
            return Response(_loan(service(actor=request.user, loan=loan, **kwargs)))

    if with_idempotency:
        ActionApi.post = idempotent(ActionApi.post)
    ActionApi.__name__ = f"Loan{service.__name__.title().replace('_', '')}Api"
    return ActionApi


class RejectSerializer(StrictSerializer):
    reason = serializers.ChoiceField(choices=RejectionReason.values)
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class InitiateSerializer(StrictSerializer):
    channel = serializers.ChoiceField(choices=DisbursementChannel.values)
    reference = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")


class ConfirmSerializer(StrictSerializer):
    disbursement_date = serializers.DateField(required=False)


class WriteOffSerializer(StrictSerializer):
    reason = serializers.CharField(max_length=300)


LoanSubmitApi = _action(services.loan_submit, OWNER_OR_OFFICERS)
LoanReviewApi = _action(services.loan_start_review, OFFICERS)
LoanApproveApi = _action(services.loan_approve, OFFICERS)
LoanRejectApi = _action(services.loan_reject, OFFICERS, RejectSerializer)
LoanWithdrawApi = _action(services.loan_withdraw, OWNER_OR_OFFICERS)
LoanInitiateApi = _action(services.loan_initiate_disbursement, OFFICERS, InitiateSerializer, with_idempotency=True)
LoanConfirmApi = _action(services.loan_confirm_disbursement, OFFICERS, ConfirmSerializer, with_idempotency=True,
                         header_kwargs={"step_up_token": "X-Step-Up-Token"})
LoanWriteOffApi = _action(services.loan_write_off, frozenset({Role.MFI_ADMIN}), WriteOffSerializer, with_idempotency=True)


class RescheduleSerializer(StrictSerializer):
    number_of_repayments = serializers.IntegerField(min_value=1, max_value=600)
    annual_interest_rate = MoneyField(places=6, required=False)
    reschedule_date = serializers.DateField(required=False)
    reason = serializers.CharField(max_length=300)


# Reschedule (MFI admins): the answer is the new loan that carries the outstanding principal.
LoanRescheduleApi = _action(services.loan_reschedule, frozenset({Role.MFI_ADMIN}), RescheduleSerializer,
                            with_idempotency=True)


class StepUpApi(APIView):
    """Re-authenticate with your password; the returned token (5 minutes, single use) goes in
    ``X-Step-Up-Token`` when confirming a disbursement above the MFI's dual-control threshold."""

    class InputSerializer(StrictSerializer):
        password = serializers.CharField(write_only=True)

    @extend_schema(request=InputSerializer, responses={201: inline_serializer("StepUpGrant", {
        "step_up_token": serializers.CharField(), "expires_at": serializers.DateTimeField()})})
    def post(self, request):
        s = self.InputSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        token, grant = services.step_up_grant(user=request.user, password=s.validated_data["password"])
        return Response({"step_up_token": token, "expires_at": grant.expires_at}, status=status.HTTP_201_CREATED)


