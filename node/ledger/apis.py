"""Read-only ledger API for an MFI's own administrators and analysts. The MFI is always ``request.user.mfi``:
no URL names an MFI, so another MFI's ledger cannot even be asked for. Amounts are decimal strings."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from node.core.fields import MoneyField, StrictSerializer
from node.ledger.selectors import access_account_by_code, account_list, account_statement, trial_balance
from node.users.models import Role
from node.users.permissions import role_required

LEDGER_ROLES = (Role.MFI_ADMIN, Role.ANALYST)


@extend_schema_field({"type": "string", "format": "decimal", "example": "1500.00"})
class AmountField(MoneyField):
    """An amount in the response: a decimal string with 2 places, may be negative (a balance)."""

    def __init__(self, **kwargs):
        super().__init__(allow_negative=True, **kwargs)


def _amount():
    return AmountField()


# --- serializers -----------------------------------------------------------------------------------------------

class AccountOutputSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    type = serializers.CharField()
    normal_balance = serializers.CharField()
    is_contra = serializers.BooleanField()
    is_active = serializers.BooleanField()


class TrialBalanceQuerySerializer(StrictSerializer):
    as_of = serializers.DateField(required=False, help_text="YYYY-MM-DD; default: today")


class TrialBalanceRowSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    type = serializers.CharField()
    normal_balance = serializers.CharField()
    debit = _amount()
    credit = _amount()
    balance = _amount()
    debit_balance = _amount()
    credit_balance = _amount()


class TrialBalanceOutputSerializer(serializers.Serializer):
    mfi = serializers.CharField(source="mfi_code")
    as_of = serializers.DateField()
    currency = serializers.CharField()
    accounts = TrialBalanceRowSerializer(source="rows", many=True)
    total_debit = _amount()
    total_credit = _amount()
    balanced = serializers.BooleanField()


class StatementQuerySerializer(StrictSerializer):
    """``from`` and ``to`` are Python keywords, hence declared in ``get_fields``."""

    def get_fields(self):
        return {
            "from": serializers.DateField(required=False, help_text="YYYY-MM-DD; default: first day of 'to''s month"),
            "to": serializers.DateField(required=False, help_text="YYYY-MM-DD; default: today"),
        }


class StatementLineSerializer(serializers.Serializer):
    entry_id = serializers.IntegerField()
    entry_date = serializers.DateField()
    description = serializers.CharField()
    reference_type = serializers.CharField()
    reference_id = serializers.CharField()
    memo = serializers.CharField()
    debit = _amount()
    credit = _amount()
    balance = _amount()


class StatementOutputSerializer(serializers.Serializer):
    account = AccountOutputSerializer()
    date_from = serializers.DateField()
    date_to = serializers.DateField()
    opening_balance = _amount()
    lines = StatementLineSerializer(many=True)
    total_debit = _amount()
    total_credit = _amount()
    closing_balance = _amount()


def _query(serializer_class, request) -> dict:
    s = serializer_class(data=request.query_params)
    s.is_valid(raise_exception=True)
    return s.validated_data


# --- views -----------------------------------------------------------------------------------------------------

class AccountListApi(APIView):
    """The chart of accounts of the caller's MFI."""

    permission_classes = [role_required(*LEDGER_ROLES)]

    @extend_schema(responses=AccountOutputSerializer(many=True))
    def get(self, request):
        return Response(AccountOutputSerializer(account_list(mfi=request.user.mfi), many=True).data)


class TrialBalanceApi(APIView):
    """Trial balance of the caller's MFI over entries dated up to ``as_of``."""

    permission_classes = [role_required(*LEDGER_ROLES)]

    @extend_schema(
        parameters=[OpenApiParameter("as_of", OpenApiTypes.DATE, description="YYYY-MM-DD; default: today")],
        responses=TrialBalanceOutputSerializer,
    )
    def get(self, request):
        q = _query(TrialBalanceQuerySerializer, request)
        tb = trial_balance(mfi=request.user.mfi, as_of=q.get("as_of") or timezone.localdate())
        return Response(TrialBalanceOutputSerializer(tb).data)


class AccountStatementApi(APIView):
    """Statement of one account of the caller's MFI: opening balance, lines with a running balance, closing
    balance. An unknown code (or one only another MFI has) is a 404."""

    permission_classes = [role_required(*LEDGER_ROLES)]

    @extend_schema(
        parameters=[
            OpenApiParameter("from", OpenApiTypes.DATE, description="YYYY-MM-DD; default: first day of 'to''s month"),
            OpenApiParameter("to", OpenApiTypes.DATE, description="YYYY-MM-DD; default: today"),
        ],
        responses=StatementOutputSerializer,
    )
    def get(self, request, code: str):
        account = access_account_by_code(actor=request.user, code=code)
        q = _query(StatementQuerySerializer, request)
        date_to: dt.date = q.get("to") or timezone.localdate()
        date_from: dt.date = q.get("from") or date_to.replace(day=1)
        statement = account_statement(mfi=request.user.mfi, account_code=account.code, date_from=date_from,
                                      date_to=date_to)
        return Response(StatementOutputSerializer(statement).data)
