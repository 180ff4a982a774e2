"""Schedule input: the validated, immutable parameters of one schedule.

``parse_schedule_input`` turns a JSON object (a ``dict`` as produced by
``json.loads``) into a ``ScheduleInput`` or raises ``ScheduleInputError`` whose
``errors`` maps a field name to a list of messages (``non_field_errors`` for
problems that belong to no single field).

JSON fields (R = required, otherwise the default is shown):

===================================  ====  =====================================
field                                req.  values / default
===================================  ====  =====================================
principal                            R     decimal *string* > 0, at most
                                           ``currency_decimals`` places
annual_interest_rate                 R     decimal *string* >= 0 (percent per
                                           year, "12.5" = 12.5 %), <= 1000,
                                           at most 6 places
number_of_repayments                 R     integer 1..600
repayment_frequency                  R     DAYS | WEEKS | MONTHS
interest_method                      R     FLAT | DECLINING_BALANCE
amortization                         R     EQUAL_INSTALLMENTS | EQUAL_PRINCIPAL
disbursement_date                    R     ISO date "YYYY-MM-DD",
                                           1900-01-01..2999-12-31
repayment_every                            integer 1..120, default 1
interest_calculation_period                SAME_AS_REPAYMENT_PERIOD (default)
                                           | DAILY
schedule_type                              CUMULATIVE (default) | PROGRESSIVE
days_in_year                               ACTUAL (default) | 360 | 364 | 365
days_in_month                              ACTUAL (default) | 30
grace_on_principal_periods                 integer >= 0, < repayments; 0
grace_on_interest_payment_periods          integer >= 0, < repayments; 0
grace_on_interest_charged_periods          integer >= 0, < repayments; 0
currency_decimals                          integer 0..6, default 2
currency_in_multiples_of                   integer >= 0, default 0 (= none);
                                           only used when currency_decimals
                                           is 0 (Fineract rule)
installment_in_multiples_of                integer >= 1 or null (default null
                                           = none)
fees                                       list (default []) of
                                           {"name", "amount" (decimal string),
                                           "calculation": FLAT |
                                           PERCENT_OF_PRINCIPAL,
                                           "charge_time": DISBURSEMENT |
                                           INSTALLMENT}
===================================  ====  =====================================

Money amounts and rates must be JSON *strings*: a JSON number (float or int)
is rejected for them, so that no binary floating point value ever reaches the
engine. ``days_in_year``/``days_in_month`` accept the numbers 360/364/365/30 as
well as the strings. Unknown fields are rejected. An explicit ``null`` for an
optional field means "use the default".

Combinations refused because Fineract cannot produce them (or would fail):

* PROGRESSIVE needs DECLINING_BALANCE + EQUAL_INSTALLMENTS and no grace (the
  Fineract EMI calculator ignores graces and interest method).
* FLAT + EQUAL_INSTALLMENTS needs grace_on_interest_payment_periods +
  grace_on_interest_charged_periods < number_of_repayments (otherwise Fineract
  divides by zero).
* With currency_decimals = 0 and a currency multiple, the principal and flat fee
  amounts must already be multiples of it (Fineract would silently round them).
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

__all__ = [
    "ACTUAL",
    "CUMULATIVE",
    "DAILY",
    "DAYS",
    "DECLINING_BALANCE",
    "DISBURSEMENT",
    "EQUAL_INSTALLMENTS",
    "EQUAL_PRINCIPAL",
    "FLAT",
    "INSTALLMENT",
    "MONTHS",
    "NON_FIELD_ERRORS",
    "PERCENT_OF_PRINCIPAL",
    "PROGRESSIVE",
    "SAME_AS_REPAYMENT_PERIOD",
    "WEEKS",
    "Fee",
    "ScheduleInput",
    "ScheduleInputError",
    "parse_schedule_input",
]

# Enumerations (the JSON values are the names).
DAYS, WEEKS, MONTHS = "DAYS", "WEEKS", "MONTHS"
FLAT, DECLINING_BALANCE = "FLAT", "DECLINING_BALANCE"
EQUAL_INSTALLMENTS, EQUAL_PRINCIPAL = "EQUAL_INSTALLMENTS", "EQUAL_PRINCIPAL"
SAME_AS_REPAYMENT_PERIOD, DAILY = "SAME_AS_REPAYMENT_PERIOD", "DAILY"
CUMULATIVE, PROGRESSIVE = "CUMULATIVE", "PROGRESSIVE"
ACTUAL = "ACTUAL"
PERCENT_OF_PRINCIPAL = "PERCENT_OF_PRINCIPAL"
DISBURSEMENT, INSTALLMENT = "DISBURSEMENT", "INSTALLMENT"

FREQUENCIES = (DAYS, WEEKS, MONTHS)
INTEREST_METHODS = (FLAT, DECLINING_BALANCE)
AMORTIZATIONS = (EQUAL_INSTALLMENTS, EQUAL_PRINCIPAL)
INTEREST_PERIODS = (SAME_AS_REPAYMENT_PERIOD, DAILY)
SCHEDULE_TYPES = (CUMULATIVE, PROGRESSIVE)
DAYS_IN_YEAR = (ACTUAL, "360", "364", "365")
DAYS_IN_MONTH = (ACTUAL, "30")
FEE_CALCULATIONS = (FLAT, PERCENT_OF_PRINCIPAL)
FEE_CHARGE_TIMES = (DISBURSEMENT, INSTALLMENT)

NON_FIELD_ERRORS = "non_field_errors"

MAX_REPAYMENTS = 600
MAX_REPAYMENT_EVERY = 120
MAX_CURRENCY_DECIMALS = 6
MAX_RATE = Decimal(1000)
MAX_RATE_PLACES = 6
MAX_PRINCIPAL = Decimal(1000000000000)  # 10^12 (exclusive)
MAX_FEES = 20
MAX_FEE_NAME = 100
MAX_TERM_DAYS = 100 * 366
MAX_DECIMAL_STRING = 40
MIN_DATE = _dt.date(1900, 1, 1)
MAX_DATE = _dt.date(2999, 12, 31)  # a loan term longer than ~100 years is refused

_DECIMAL_RE = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")
_DATE_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")

REQUIRED_FIELDS = (
    "principal",
    "annual_interest_rate",
    "number_of_repayments",
    "repayment_frequency",
    "interest_method",
    "amortization",
    "disbursement_date",
)
OPTIONAL_FIELDS = (
    "repayment_every",
    "interest_calculation_period",
    "schedule_type",
    "days_in_year",
    "days_in_month",
    "grace_on_principal_periods",
    "grace_on_interest_payment_periods",
    "grace_on_interest_charged_periods",
    "currency_decimals",
    "currency_in_multiples_of",
    "installment_in_multiples_of",
    "fees",
)
ALL_FIELDS = REQUIRED_FIELDS + OPTIONAL_FIELDS
FEE_FIELDS = ("name", "amount", "calculation", "charge_time")


class ScheduleInputError(ValueError):
    """Invalid schedule input; ``errors`` maps field -> list of messages."""

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = {field: list(messages) for field, messages in errors.items()}
        super().__init__("; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in self.errors.items()))


@dataclass(frozen=True)
class Fee:
    """A charge. ``amount`` is money (FLAT) or a percentage (PERCENT_OF_PRINCIPAL)."""

    name: str
    amount: Decimal
    calculation: str  # FLAT | PERCENT_OF_PRINCIPAL
    charge_time: str  # DISBURSEMENT | INSTALLMENT


@dataclass(frozen=True)
class ScheduleInput:
    principal: Decimal
    annual_interest_rate: Decimal  # percent per year
    number_of_repayments: int
    repayment_frequency: str
    interest_method: str
    amortization: str
    disbursement_date: _dt.date
    repayment_every: int = 1
    interest_calculation_period: str = SAME_AS_REPAYMENT_PERIOD
    schedule_type: str = CUMULATIVE
    days_in_year: str = ACTUAL  # "ACTUAL" | "360" | "364" | "365"
    days_in_month: str = ACTUAL  # "ACTUAL" | "30"
    grace_on_principal_periods: int = 0
    grace_on_interest_payment_periods: int = 0
    grace_on_interest_charged_periods: int = 0
    currency_decimals: int = 2
    currency_in_multiples_of: int = 0
    installment_in_multiples_of: int | None = None
    fees: tuple[Fee, ...] = ()


_DEFAULTS: dict[str, Any] = {
    "repayment_every": 1,
    "interest_calculation_period": SAME_AS_REPAYMENT_PERIOD,
    "schedule_type": CUMULATIVE,
    "days_in_year": ACTUAL,
    "days_in_month": ACTUAL,
    "grace_on_principal_periods": 0,
    "grace_on_interest_payment_periods": 0,
    "grace_on_interest_charged_periods": 0,
    "currency_decimals": 2,
    "currency_in_multiples_of": 0,
    "installment_in_multiples_of": None,
    "fees": [],
}


class _Errors:
    def __init__(self) -> None:
        self.by_field: dict[str, list[str]] = {}

    def add(self, field: str, message: str) -> None:
        self.by_field.setdefault(field, []).append(message)

    def has(self, field: str) -> bool:
        return field in self.by_field


def _places(value: Decimal) -> int:
    """Significant decimal places ("1500.000" has 0, "0.50" has 1)."""
    if value == 0:
        return 0
    _sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    digit_list = list(digits)
    while exponent < 0 and digit_list and digit_list[-1] == 0:
        digit_list.pop()
        exponent += 1
    return -exponent if exponent < 0 else 0


def _parse_decimal_string(errors: _Errors, field: str, value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, str):
        errors.add(field, "Must be a decimal string (JSON numbers are not accepted for amounts and rates).")
        return None
    if len(value) > MAX_DECIMAL_STRING or not _DECIMAL_RE.match(value):
        errors.add(field, 'Must be a plain decimal string such as "1500.00".')
        return None
    return Decimal(value)


def _parse_int(errors: _Errors, field: str, value: Any, low: int, high: int | None) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        errors.add(field, "Must be an integer.")
        return None
    if value < low or (high is not None and value > high):
        if high is None:
            errors.add(field, f"Must be greater than or equal to {low}.")
        else:
            errors.add(field, f"Must be between {low} and {high}.")
        return None
    return value


def _parse_choice(errors: _Errors, field: str, value: Any, choices: tuple[str, ...]) -> str | None:
    if isinstance(value, str) and value in choices:
        return value
    errors.add(field, f"Must be one of: {', '.join(choices)}.")
    return None


def _parse_days_choice(errors: _Errors, field: str, value: Any, choices: tuple[str, ...]) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool) and str(value) in choices:
        return str(value)
    return _parse_choice(errors, field, value, choices)


def _parse_date(errors: _Errors, field: str, value: Any) -> _dt.date | None:
    if isinstance(value, str) and _DATE_RE.match(value):
        try:
            day = _dt.date.fromisoformat(value)
        except ValueError:
            pass
        else:
            if MIN_DATE <= day <= MAX_DATE:
                return day
            errors.add(field, f"Must be between {MIN_DATE.isoformat()} and {MAX_DATE.isoformat()}.")
            return None
    errors.add(field, "Must be an ISO date (YYYY-MM-DD).")
    return None


def _parse_fees(errors: _Errors, value: Any) -> list[dict[str, Any]] | None:
    """Shape/type checks of the fee list; amount limits are checked later."""
    if not isinstance(value, list):
        errors.add("fees", "Must be a list.")
        return None
    if len(value) > MAX_FEES:
        errors.add("fees", f"At most {MAX_FEES} fees are allowed.")
        return None
    parsed: list[dict[str, Any]] = []
    ok = True
    for index, item in enumerate(value):
        prefix = f"fees[{index}]"
        if not isinstance(item, dict):
            errors.add(prefix, "Must be an object.")
            ok = False
            continue
        for key in item:
            if key not in FEE_FIELDS:
                errors.add(f"{prefix}.{key}", "Unknown field.")
                ok = False
        fee: dict[str, Any] = {}
        for key in FEE_FIELDS:
            field = f"{prefix}.{key}"
            if key not in item:
                errors.add(field, "This field is required.")
                ok = False
                continue
            raw = item[key]
            if key == "name":
                if not isinstance(raw, str) or not raw.strip():
                    errors.add(field, "Must be a non-empty string.")
                    ok = False
                elif len(raw) > MAX_FEE_NAME:
                    errors.add(field, f"Must be at most {MAX_FEE_NAME} characters.")
                    ok = False
                else:
                    fee[key] = raw
            elif key == "amount":
                amount = _parse_decimal_string(errors, field, raw)
                if amount is None:
                    ok = False
                elif amount < 0:
                    errors.add(field, "Must be greater than or equal to 0.")
                    ok = False
                else:
                    fee[key] = amount
            elif key == "calculation":
                choice = _parse_choice(errors, field, raw, FEE_CALCULATIONS)
                ok = ok and choice is not None
                fee[key] = choice
            else:
                choice = _parse_choice(errors, field, raw, FEE_CHARGE_TIMES)
                ok = ok and choice is not None
                fee[key] = choice
        parsed.append(fee)
    return parsed if ok else None


def parse_schedule_input(data: Any) -> ScheduleInput:
    """Validate a JSON object and build a ``ScheduleInput`` (see module doc)."""
    errors = _Errors()
    if not isinstance(data, dict):
        raise ScheduleInputError({NON_FIELD_ERRORS: ["Expected a JSON object."]})

    for key in data:
        if key not in ALL_FIELDS:
            errors.add(str(key), "Unknown field.")

    raw: dict[str, Any] = {}
    for field in REQUIRED_FIELDS:
        if field not in data:
            errors.add(field, "This field is required.")
        elif data[field] is None:
            errors.add(field, "This field may not be null.")
        else:
            raw[field] = data[field]
    for field in OPTIONAL_FIELDS:
        value = data.get(field)
        raw[field] = _DEFAULTS[field] if value is None else value

    v: dict[str, Any] = {}

    # --- independent field checks -----------------------------------------
    if "principal" in raw:
        principal = _parse_decimal_string(errors, "principal", raw["principal"])
        if principal is not None:
            if principal <= 0:
                errors.add("principal", "Must be greater than 0.")
            elif principal >= MAX_PRINCIPAL:
                errors.add("principal", f"Must be less than {MAX_PRINCIPAL}.")
            else:
                v["principal"] = principal
    if "annual_interest_rate" in raw:
        rate = _parse_decimal_string(errors, "annual_interest_rate", raw["annual_interest_rate"])
        if rate is not None:
            if rate < 0:
                errors.add("annual_interest_rate", "Must be greater than or equal to 0.")
            elif rate > MAX_RATE:
                errors.add("annual_interest_rate", f"Must be at most {MAX_RATE}.")
            elif _places(rate) > MAX_RATE_PLACES:
                errors.add("annual_interest_rate", f"Must have at most {MAX_RATE_PLACES} decimal places.")
            else:
                v["annual_interest_rate"] = rate
    if "number_of_repayments" in raw:
        n = _parse_int(errors, "number_of_repayments", raw["number_of_repayments"], 1, MAX_REPAYMENTS)
        if n is not None:
            v["number_of_repayments"] = n
    if "repayment_frequency" in raw:
        choice = _parse_choice(errors, "repayment_frequency", raw["repayment_frequency"], FREQUENCIES)
        if choice is not None:
            v["repayment_frequency"] = choice
    if "interest_method" in raw:
        choice = _parse_choice(errors, "interest_method", raw["interest_method"], INTEREST_METHODS)
        if choice is not None:
            v["interest_method"] = choice
    if "amortization" in raw:
        choice = _parse_choice(errors, "amortization", raw["amortization"], AMORTIZATIONS)
        if choice is not None:
            v["amortization"] = choice
    if "disbursement_date" in raw:
        day = _parse_date(errors, "disbursement_date", raw["disbursement_date"])
        if day is not None:
            v["disbursement_date"] = day

    every = _parse_int(errors, "repayment_every", raw["repayment_every"], 1, MAX_REPAYMENT_EVERY)
    if every is not None:
        v["repayment_every"] = every
    for field, choices in (
        ("interest_calculation_period", INTEREST_PERIODS),
        ("schedule_type", SCHEDULE_TYPES),
    ):
        choice = _parse_choice(errors, field, raw[field], choices)
        if choice is not None:
            v[field] = choice
    for field, choices in (("days_in_year", DAYS_IN_YEAR), ("days_in_month", DAYS_IN_MONTH)):
        choice = _parse_days_choice(errors, field, raw[field], choices)
        if choice is not None:
            v[field] = choice
    for field in (
        "grace_on_principal_periods",
        "grace_on_interest_payment_periods",
        "grace_on_interest_charged_periods",
    ):
        grace = _parse_int(errors, field, raw[field], 0, None)
        if grace is not None:
            v[field] = grace
    decimals = _parse_int(errors, "currency_decimals", raw["currency_decimals"], 0, MAX_CURRENCY_DECIMALS)
    if decimals is not None:
        v["currency_decimals"] = decimals
    currency_multiple = _parse_int(errors, "currency_in_multiples_of", raw["currency_in_multiples_of"], 0, None)
    if currency_multiple is not None:
        v["currency_in_multiples_of"] = currency_multiple
    if raw["installment_in_multiples_of"] is not None:
        installment_multiple = _parse_int(
            errors, "installment_in_multiples_of", raw["installment_in_multiples_of"], 1, None
        )
        if installment_multiple is not None:
            v["installment_in_multiples_of"] = installment_multiple
    else:
        v["installment_in_multiples_of"] = None
    fee_dicts = _parse_fees(errors, raw["fees"])

    # --- cross-field checks (only with the fields they need parsed) --------
    n = v.get("number_of_repayments")
    if n is not None:
        for field in (
            "grace_on_principal_periods",
            "grace_on_interest_payment_periods",
            "grace_on_interest_charged_periods",
        ):
            if field in v and v[field] >= n:
                errors.add(field, "Must be less than number_of_repayments.")
        if (
            v.get("interest_method") == FLAT
            and v.get("amortization") == EQUAL_INSTALLMENTS
            and "grace_on_interest_payment_periods" in v
            and "grace_on_interest_charged_periods" in v
            and v["grace_on_interest_payment_periods"] + v["grace_on_interest_charged_periods"] >= n
            and not errors.has("grace_on_interest_payment_periods")
            and not errors.has("grace_on_interest_charged_periods")
        ):
            errors.add(
                "grace_on_interest_charged_periods",
                "With FLAT interest and EQUAL_INSTALLMENTS, grace_on_interest_payment_periods + "
                "grace_on_interest_charged_periods must be less than number_of_repayments.",
            )
        if "repayment_every" in v and "repayment_frequency" in v:
            unit_days = {DAYS: 1, WEEKS: 7, MONTHS: 31}[v["repayment_frequency"]]
            if n * v["repayment_every"] * unit_days > MAX_TERM_DAYS:
                errors.add("number_of_repayments", "The loan term (repayments x repayment_every) is too long (max ~100 years).")

    if v.get("schedule_type") == PROGRESSIVE:
        if v.get("interest_method") == FLAT:
            errors.add("interest_method", "PROGRESSIVE schedules support only DECLINING_BALANCE.")
        if v.get("amortization") == EQUAL_PRINCIPAL:
            errors.add("amortization", "PROGRESSIVE schedules support only EQUAL_INSTALLMENTS.")
        for field in (
            "grace_on_principal_periods",
            "grace_on_interest_payment_periods",
            "grace_on_interest_charged_periods",
        ):
            if v.get(field):
                errors.add(field, "Grace periods are not supported with PROGRESSIVE schedules.")

    decimals = v.get("currency_decimals")
    currency_multiple = v.get("currency_in_multiples_of")
    applies_multiple = decimals == 0 and currency_multiple is not None and currency_multiple > 0
    if decimals is not None and "principal" in v:
        if _places(v["principal"]) > decimals:
            errors.add("principal", f"Must have at most {decimals} decimal places (currency_decimals).")
        elif applies_multiple and v["principal"] % currency_multiple != 0:
            errors.add("principal", f"Must be a multiple of currency_in_multiples_of ({currency_multiple}).")

    fees: list[Fee] = []
    if fee_dicts is not None:
        for index, fee in enumerate(fee_dicts):
            field = f"fees[{index}].amount"
            amount = fee["amount"]
            if fee["calculation"] == PERCENT_OF_PRINCIPAL:
                if amount > 100:
                    errors.add(field, "A percentage must be at most 100.")
                elif _places(amount) > MAX_RATE_PLACES:
                    errors.add(field, f"A percentage must have at most {MAX_RATE_PLACES} decimal places.")
            elif decimals is not None:
                if _places(amount) > decimals:
                    errors.add(field, f"Must have at most {decimals} decimal places (currency_decimals).")
                elif amount >= MAX_PRINCIPAL:
                    errors.add(field, f"Must be less than {MAX_PRINCIPAL}.")
                elif applies_multiple and amount % currency_multiple != 0:
                    errors.add(field, f"Must be a multiple of currency_in_multiples_of ({currency_multiple}).")
            fees.append(Fee(fee["name"], amount, fee["calculation"], fee["charge_time"]))

    if errors.by_field:
        raise ScheduleInputError(errors.by_field)

    return ScheduleInput(
        principal=v["principal"],
        annual_interest_rate=v["annual_interest_rate"],
        number_of_repayments=v["number_of_repayments"],
        repayment_frequency=v["repayment_frequency"],
        interest_method=v["interest_method"],
        amortization=v["amortization"],
        disbursement_date=v["disbursement_date"],
        repayment_every=v["repayment_every"],
        interest_calculation_period=v["interest_calculation_period"],
        schedule_type=v["schedule_type"],
        days_in_year=v["days_in_year"],
        days_in_month=v["days_in_month"],
        grace_on_principal_periods=v["grace_on_principal_periods"],
        grace_on_interest_payment_periods=v["grace_on_interest_payment_periods"],
        grace_on_interest_charged_periods=v["grace_on_interest_charged_periods"],
        currency_decimals=v["currency_decimals"],
        currency_in_multiples_of=v["currency_in_multiples_of"],
        installment_in_multiples_of=v["installment_in_multiples_of"],
        fees=tuple(fees),
    )
