"""``generate_schedule``: dispatch to the CUMULATIVE or PROGRESSIVE engine, add
the fees, and build the result; ``schedule_to_json`` serialises it.

Fees (Fineract loan charges, see LoanCharge and the generators'
``cumulativeFeeChargesDueWithin``):

* DISBURSEMENT fees are due on the disbursement date. They appear in an extra
  row number 0 (due_date = disbursement date, days 0, principal 0,
  principal_balance = principal), present only when the input has at least one
  DISBURSEMENT fee. FLAT: the amount. PERCENT_OF_PRINCIPAL: principal x
  (percent / 100), each step at 12 significant digits, then rounded to the
  currency (Fineract's "% Amount" disbursement charge).
* INSTALLMENT fees are added to the ``fees`` column of *every* installment.
  FLAT: the amount per installment. PERCENT_OF_PRINCIPAL: percent of *that
  installment's principal* (Fineract's "% Amount" installment fee: the
  installment principal x percent / 100 at 12 significant digits), so it is 0
  in principal-grace periods and follows the principal of each installment.
  Several fees of one row are summed in input order, the running total being
  re-rounded to the currency after each fee, as Fineract does.
* Penalties are always 0 (no penalty charges at schedule time).

Each row's ``total`` = principal + interest + fees + penalties.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from decimal import Decimal

from node.core.money import exact_add, exact_mul, quantize

from .arithmetic import HUNDRED, CurrencyMoney, mc_div, mc_mul
from .cumulative import generate_cumulative
from .dates import due_date
from .inputs import (
    DISBURSEMENT,
    FLAT,
    INSTALLMENT,
    NON_FIELD_ERRORS,
    PROGRESSIVE,
    ScheduleInput,
    ScheduleInputError,
)
from .progressive import generate_progressive

__all__ = ["Installment", "Schedule", "Totals", "generate_schedule", "schedule_to_json"]


@dataclass(frozen=True)
class Installment:
    number: int  # 0 = disbursement-fee row, 1.. = repayments
    due_date: _dt.date
    days: int  # days since the previous due date (or the disbursement)
    principal: Decimal
    interest: Decimal
    fees: Decimal
    penalties: Decimal
    total: Decimal
    principal_balance: Decimal  # outstanding principal after this row


@dataclass(frozen=True)
class Totals:
    principal: Decimal
    interest: Decimal
    fees: Decimal
    penalties: Decimal
    total: Decimal


@dataclass(frozen=True)
class Schedule:
    currency_decimals: int
    installments: tuple[Installment, ...]
    totals: Totals


def _money_for(inp: ScheduleInput) -> CurrencyMoney:
    return CurrencyMoney(inp.currency_decimals, inp.currency_in_multiples_of)


def _disbursement_fees(inp: ScheduleInput, money: CurrencyMoney, principal: Decimal) -> Decimal:
    total = Decimal(0)  # exact BigDecimal sum of the charges' amounts
    for fee in inp.fees:
        if fee.charge_time != DISBURSEMENT:
            continue
        if fee.calculation == FLAT:
            amount = fee.amount
        else:
            # LoanCharge.percentageOf: value.multiply(percentage.divide(100, mc), mc)
            amount = money.of(mc_mul(principal, mc_div(fee.amount, HUNDRED)))
        total = exact_add(total, amount)
    return money.of(total)


def _installment_fees(inp: ScheduleInput, money: CurrencyMoney, principal: Decimal) -> Decimal:
    cumulative = money.zero()
    for fee in inp.fees:
        if fee.charge_time != INSTALLMENT:
            continue
        if fee.calculation == FLAT:
            amount = fee.amount
        else:
            # calculateInstallmentCharge: amount.multiply(percentage).divide(100, mc)
            amount = mc_div(exact_mul(principal, fee.amount), HUNDRED)
        if amount != 0:
            cumulative = money.plus(cumulative, amount)
    return cumulative


def generate_schedule(inp: ScheduleInput) -> Schedule:
    """Compute the repayment schedule of ``inp`` (pure, deterministic)."""
    if not isinstance(inp, ScheduleInput):
        raise TypeError("generate_schedule expects a ScheduleInput (use parse_schedule_input)")
    money = _money_for(inp)
    principal = money.of(inp.principal)
    zero = money.zero()

    rows: list[tuple[int, _dt.date, _dt.date, Decimal, Decimal, Decimal]] = []
    if inp.schedule_type == PROGRESSIVE:
        dates = []
        start = inp.disbursement_date
        for number in range(1, inp.number_of_repayments + 1):
            due = due_date(inp.disbursement_date, inp.repayment_frequency, inp.repayment_every, number)
            dates.append((start, due))
            start = due
        for number, period in enumerate(generate_progressive(inp, money, dates), start=1):
            rows.append((number, period.start, period.due, period.principal, period.interest, period.balance))
    else:
        for period in generate_cumulative(inp, money):
            rows.append((period.number, period.start, period.due, period.principal, period.interest, period.balance))

    installments: list[Installment] = []
    if any(fee.charge_time == DISBURSEMENT for fee in inp.fees):
        fees = _disbursement_fees(inp, money, principal)
        installments.append(Installment(0, inp.disbursement_date, 0, zero, zero, fees, zero, fees, principal))
    for number, start, due, row_principal, interest, balance in rows:
        fees = _installment_fees(inp, money, row_principal)
        total = money.plus(money.plus(money.plus(row_principal, interest), fees), zero)
        installments.append(
            Installment(number, due, (due - start).days, row_principal, interest, fees, zero, total, balance)
        )

    totals = Totals(
        principal=_sum(money, (i.principal for i in installments)),
        interest=_sum(money, (i.interest for i in installments)),
        fees=_sum(money, (i.fees for i in installments)),
        penalties=_sum(money, (i.penalties for i in installments)),
        total=_sum(money, (i.total for i in installments)),
    )
    _check_invariants(inp, principal, installments, totals)
    return Schedule(inp.currency_decimals, tuple(installments), totals)


def _sum(money: CurrencyMoney, values) -> Decimal:
    total = money.zero()
    for value in values:
        total = money.plus(total, value)
    return total


def _check_invariants(inp: ScheduleInput, principal: Decimal, installments: list[Installment], totals: Totals) -> None:
    """Refuse (as bad input) parameters for which Fineract's rules do not yield a
    sane schedule: an installment rounded to 0 (by installment_in_multiples_of or
    the currency) never amortizes the principal, and rounding the per-period
    flat interest up can make the interest due after an interest-free grace
    negative (Fineract would then show negative interest)."""
    problems = []
    if totals.principal != principal or installments[-1].principal_balance != 0:
        problems.append(
            "These parameters do not amortize the principal (an installment rounds to 0 with this "
            "principal, installment_in_multiples_of and currency)."
        )
    amounts = [(i.principal, i.interest, i.fees, i.total, i.principal_balance) for i in installments]
    if any(value < 0 for row in amounts for value in row):
        problems.append(
            "These parameters produce a negative amount (rounding artefact, e.g. interest-free grace on a "
            "very small interest amount or a large installment_in_multiples_of)."
        )
    if problems:
        raise ScheduleInputError({NON_FIELD_ERRORS: problems})


def _format(value: Decimal, decimals: int) -> str:
    value = quantize(value, decimals)
    if value == 0:
        value = abs(value)
    return format(value, "f")


def schedule_to_json(schedule: Schedule) -> dict:
    """JSON-ready dict; every amount is a string with exactly currency_decimals
    places, dates are ISO strings."""
    d = schedule.currency_decimals
    return {
        "currency_decimals": d,
        "installments": [
            {
                "number": i.number,
                "due_date": i.due_date.isoformat(),
                "days": i.days,
                "principal": _format(i.principal, d),
                "interest": _format(i.interest, d),
                "fees": _format(i.fees, d),
                "penalties": _format(i.penalties, d),
                "total": _format(i.total, d),
                "principal_balance": _format(i.principal_balance, d),
            }
            for i in schedule.installments
        ],
        "totals": {
            "principal": _format(schedule.totals.principal, d),
            "interest": _format(schedule.totals.interest, d),
            "fees": _format(schedule.totals.fees, d),
            "penalties": _format(schedule.totals.penalties, d),
            "total": _format(schedule.totals.total, d),
        },
    }
