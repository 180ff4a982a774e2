"""The schedule calculator's input and every schedule answer, described for the OpenAPI document.

The input itself is validated by ``node.loans.schedule.inputs.parse_schedule_input`` (the one validator the API, the
``preview_schedule`` command and loans share); the serializers here only describe it, field for field, so that a
client generator — and schemathesis — sees what the validator takes."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from node.loans.schedule import inputs as I

DECIMAL_STRING = r"^-?[0-9]+(\.[0-9]+)?$"


def _amount(help_text: str = "") -> serializers.RegexField:
    """An amount in an answer: a non-negative decimal string (schedules can exceed MoneyField's 15 digits)."""
    return serializers.RegexField(r"^[0-9]+(\.[0-9]+)?$", help_text=help_text)


def _decimal(help_text: str, **kwargs) -> serializers.RegexField:
    return serializers.RegexField(DECIMAL_STRING, max_length=I.MAX_DECIMAL_STRING, help_text=help_text, **kwargs)


@extend_schema_field({"oneOf": [{"type": "string", "enum": list(I.DAYS_IN_YEAR)},
                                {"type": "integer", "enum": [int(x) for x in I.DAYS_IN_YEAR if x.isdigit()]}],
                      "nullable": True, "description": 'ACTUAL (default), or 360, 364, 365 (a string or a number)'})
class _DaysInYear(serializers.Field):
    pass


@extend_schema_field({"oneOf": [{"type": "string", "enum": list(I.DAYS_IN_MONTH)}, {"type": "integer", "enum": [30]}],
                      "nullable": True, "description": 'ACTUAL (default) or 30 (a string or a number)'})
class _DaysInMonth(serializers.Field):
    pass


class ScheduleFeeInput(serializers.Serializer):
    name = serializers.CharField(max_length=I.MAX_FEE_NAME)
    amount = _decimal("money (FLAT) or a percentage of the principal (PERCENT_OF_PRINCIPAL), a decimal string")
    calculation = serializers.ChoiceField(choices=I.FEE_CALCULATIONS)
    charge_time = serializers.ChoiceField(choices=I.FEE_CHARGE_TIMES)


class ScheduleInput(serializers.Serializer):
    """Loan terms. Amounts and rates are decimal strings (JSON numbers are refused for them); an explicit null for an
    optional field means its default; unknown fields are refused."""

    principal = _decimal("greater than 0, at most currency_decimals places")
    annual_interest_rate = _decimal('percent per year ("12.5" = 12.5 %), 0..1000, at most 6 places')
    number_of_repayments = serializers.IntegerField(min_value=1, max_value=I.MAX_REPAYMENTS)
    repayment_frequency = serializers.ChoiceField(choices=I.FREQUENCIES)
    interest_method = serializers.ChoiceField(choices=I.INTEREST_METHODS)
    amortization = serializers.ChoiceField(choices=I.AMORTIZATIONS)
    disbursement_date = serializers.DateField(help_text="1900-01-01..2999-12-31")
    repayment_every = serializers.IntegerField(min_value=1, max_value=I.MAX_REPAYMENT_EVERY, required=False,
                                               allow_null=True, help_text="default 1")
    interest_calculation_period = serializers.ChoiceField(choices=I.INTEREST_PERIODS, required=False, allow_null=True)
    schedule_type = serializers.ChoiceField(choices=I.SCHEDULE_TYPES, required=False, allow_null=True,
                                            help_text="PROGRESSIVE needs DECLINING_BALANCE, EQUAL_INSTALLMENTS, no grace")
    days_in_year = _DaysInYear(required=False)
    days_in_month = _DaysInMonth(required=False)
    grace_on_principal_periods = serializers.IntegerField(min_value=0, required=False, allow_null=True)
    grace_on_interest_payment_periods = serializers.IntegerField(min_value=0, required=False, allow_null=True)
    grace_on_interest_charged_periods = serializers.IntegerField(min_value=0, required=False, allow_null=True)
    currency_decimals = serializers.IntegerField(min_value=0, max_value=I.MAX_CURRENCY_DECIMALS, required=False,
                                                 allow_null=True, help_text="default 2")
    currency_in_multiples_of = serializers.IntegerField(min_value=0, required=False, allow_null=True,
                                                        help_text="only with currency_decimals 0")
    installment_in_multiples_of = serializers.IntegerField(min_value=1, required=False, allow_null=True)
    fees = serializers.ListField(child=ScheduleFeeInput(), max_length=I.MAX_FEES, required=False, allow_null=True)


class ScheduleRow(serializers.Serializer):
    number = serializers.IntegerField(help_text="0 = the disbursement-fee row, 1.. = repayments")
    due_date = serializers.DateField()
    days = serializers.IntegerField(help_text="days since the previous due date (or the disbursement)")
    principal = _amount()
    interest = _amount()
    fees = _amount()
    penalties = _amount()
    total = _amount()
    principal_balance = _amount("outstanding principal after this row")


class ScheduleTotals(serializers.Serializer):
    principal = _amount()
    interest = _amount()
    fees = _amount()
    penalties = _amount()
    total = _amount()


class Schedule(serializers.Serializer):
    """Every amount is a string with exactly ``currency_decimals`` places."""

    currency_decimals = serializers.IntegerField()
    installments = ScheduleRow(many=True)
    totals = ScheduleTotals()


class LoanSchedule(Schedule):
    stored = serializers.BooleanField(help_text="true: the schedule fixed at disbursement; false: what the loan's "
                                                "current terms would give")
