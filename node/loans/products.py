"""Loan products: creation (validated against the schedule engine and the MFI's rate cap) and the binding of a
product plus loan terms to a schedule input."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.db import transaction

from node.core.money import plain
from node.audit.services import audit_record
from node.core.errors import Conflict, ValidationFailed
from node.ledger.services import ledger_ensure_chart
from node.loans.errors import OutsideProductLimits, RateAboveCap
from node.loans.models import LoanProduct
from node.loans.schedule import ScheduleInputError, generate_schedule, parse_schedule_input
from node.mfis.models import Mfi
from node.users.models import User

PRODUCT_FIELDS = (
    "code", "name", "currency", "currency_decimals", "currency_in_multiples_of", "installment_in_multiples_of",
    "annual_interest_rate", "interest_method", "amortization", "interest_calculation_period", "schedule_type",
    "repayment_every", "repayment_frequency", "days_in_year", "days_in_month", "grace_on_principal_periods",
    "grace_on_interest_payment_periods", "grace_on_interest_charged_periods", "min_principal", "max_principal",
    "min_repayments", "max_repayments", "fees", "overdue_penalty",
)
CURRENCIES = {"LSL": 2, "ZMW": 2}
PENALTY_CALCULATIONS = ("FLAT", "PERCENT_OF_OVERDUE")


def check_rate_cap(mfi: Mfi, rate: Decimal) -> None:
    if mfi.interest_rate_cap is not None and rate > mfi.interest_rate_cap:
        raise RateAboveCap(
            f"The annual interest rate {plain(rate)}% is above {mfi.name}'s regulatory cap of "
            f"{plain(mfi.interest_rate_cap)}%.",
            details={"annual_interest_rate": str(rate), "cap": str(mfi.interest_rate_cap)},
        )


def schedule_input_dict(product: LoanProduct, *, principal: Decimal, number_of_repayments: int,
                        annual_interest_rate: Decimal, disbursement_date: date, fees: list | None = None) -> dict:
    return {
        "principal": str(principal),
        "annual_interest_rate": plain(annual_interest_rate),
        "number_of_repayments": number_of_repayments,
        "repayment_every": product.repayment_every,
        "repayment_frequency": product.repayment_frequency,
        "interest_method": product.interest_method,
        "amortization": product.amortization,
        "interest_calculation_period": product.interest_calculation_period,
        "schedule_type": product.schedule_type,
        "days_in_year": product.days_in_year,
        "days_in_month": product.days_in_month,
        "grace_on_principal_periods": product.grace_on_principal_periods,
        "grace_on_interest_payment_periods": product.grace_on_interest_payment_periods,
        "grace_on_interest_charged_periods": product.grace_on_interest_charged_periods,
        "currency_decimals": product.currency_decimals,
        "currency_in_multiples_of": product.currency_in_multiples_of,
        "installment_in_multiples_of": product.installment_in_multiples_of,
        "disbursement_date": disbursement_date.isoformat(),
        "fees": (product.fees or []) if fees is None else fees,
    }


def check_terms(product: LoanProduct, *, principal: Decimal, number_of_repayments: int) -> None:
    problems = {}
    if not product.min_principal <= principal <= product.max_principal:
        problems["principal"] = [f"must be between {product.min_principal} and {product.max_principal}"]
    if not product.min_repayments <= number_of_repayments <= product.max_repayments:
        problems["number_of_repayments"] = [f"must be between {product.min_repayments} and {product.max_repayments}"]
    if problems:
        raise OutsideProductLimits("The loan terms are outside the product's limits.", details={"fields": problems})


def build_schedule(product: LoanProduct, *, principal: Decimal, number_of_repayments: int,
                   annual_interest_rate: Decimal, disbursement_date: date, fees: list | None = None) -> dict:
    from node.loans.schedule import schedule_to_json

    data = schedule_input_dict(product, principal=principal, number_of_repayments=number_of_repayments,
                               annual_interest_rate=annual_interest_rate, disbursement_date=disbursement_date,
                               fees=fees)
    try:
        return schedule_to_json(generate_schedule(parse_schedule_input(data)))
    except ScheduleInputError as exc:
        raise ValidationFailed("These loan terms cannot produce a schedule.", details={"fields": exc.errors}) from None


def validate_overdue_penalty(spec) -> dict | None:
    """The product's ``overdue_penalty``: {"calculation": FLAT | PERCENT_OF_OVERDUE, "amount": "50.00" or a percent,
    "grace_days": 0..90}. Raises ValidationFailed naming the field."""
    if spec in (None, {}):
        return None
    errors = {}
    if not isinstance(spec, dict) or set(spec) - {"calculation", "amount", "grace_days"}:
        raise ValidationFailed("overdue_penalty takes calculation, amount and grace_days.",
                               details={"fields": {"overdue_penalty": ["unknown keys"]}})
    if spec.get("calculation") not in PENALTY_CALCULATIONS:
        errors["overdue_penalty.calculation"] = [f"one of {', '.join(PENALTY_CALCULATIONS)}"]
    try:
        amount = Decimal(str(spec.get("amount")))
        if not amount.is_finite() or amount <= 0 or amount.as_tuple().exponent < -2 or isinstance(spec.get("amount"), float):
            raise ValueError
        if spec.get("calculation") == "PERCENT_OF_OVERDUE" and amount > 100:
            raise ValueError
    except (ArithmeticError, ValueError, TypeError):
        errors["overdue_penalty.amount"] = ["a positive amount with at most 2 decimals, as a string (percent <= 100)"]
    grace = spec.get("grace_days", 0)
    if not isinstance(grace, int) or isinstance(grace, bool) or not 0 <= grace <= 90:
        errors["overdue_penalty.grace_days"] = ["a whole number of days, 0 to 90"]
    if errors:
        raise ValidationFailed("The overdue penalty is invalid.", details={"fields": errors})
    return {"calculation": spec["calculation"], "amount": str(Decimal(str(spec["amount"]))), "grace_days": grace}


@transaction.atomic
def product_create(*, actor: User, mfi: Mfi, data: dict) -> LoanProduct:
    unknown = set(data) - set(PRODUCT_FIELDS)
    if unknown:
        raise ValidationFailed("Unknown product fields.", details={"fields": {f: ["Unknown field."] for f in unknown}})
    if data.get("currency", "LSL") not in CURRENCIES:
        raise ValidationFailed("Unsupported currency.", details={"fields": {"currency": list(CURRENCIES)}})
    if LoanProduct.objects.filter(mfi=mfi, code=data["code"]).exists():
        raise Conflict("A product with this code exists.", code="product_exists", details={"code": data["code"]})
    data["overdue_penalty"] = validate_overdue_penalty(data.get("overdue_penalty"))
    product = LoanProduct(mfi=mfi, **data)
    check_rate_cap(mfi, product.annual_interest_rate)
    errors = {}
    if product.min_principal <= 0 or product.max_principal < product.min_principal:
        errors["max_principal"] = ["min_principal must be > 0 and <= max_principal"]
    if product.min_repayments < 1 or product.max_repayments < product.min_repayments:
        errors["max_repayments"] = ["min_repayments must be >= 1 and <= max_repayments"]
    if errors:
        raise ValidationFailed("The product's limits are inconsistent.", details={"fields": errors})
    # the engine must accept the product at both ends of its limits
    for principal, n in ((product.min_principal, product.min_repayments), (product.max_principal, product.max_repayments)):
        build_schedule(product, principal=principal, number_of_repayments=n,
                       annual_interest_rate=product.annual_interest_rate, disbursement_date=date(2026, 1, 31))
    product.save()
    ledger_ensure_chart(mfi=mfi, actor=actor)
    audit_record(actor=actor, action="product.create", target_type="loan_product", target_id=product.pk, mfi=mfi,
                 after={k: (str(v) if isinstance(v, Decimal) else v) for k, v in data.items()})
    return product
