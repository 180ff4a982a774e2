"""PROGRESSIVE schedules: Fineract's ProgressiveLoanScheduleGenerator +
ProgressiveEMICalculator for a single disbursement on the disbursement date
(DECLINING_BALANCE, EQUAL_INSTALLMENTS, no grace, no repayments yet). Like
Fineract's calculator it ignores interest_calculation_period: the rate factor
below is always used.

Rate factor of a period (12 significant digits at every step):

    r = annualRate/100 * (unitDays * every / daysInYear) * actualDays / periodDays

with unitDays 1 (DAYS), 7 (WEEKS) or the days in month (MONTHS: 30, or the
length of the month the period *starts* in for ACTUAL); daysInYear 360/364/365,
or for ACTUAL the length of the year the period starts in. With ACTUAL days in
year a period crossing a year end uses ``sum(days in year i / length of year i)``
(its real days) instead.

Deliberate deviation: the Fineract snapshot followed here (develop, Oct 2024)
multiplies that year-crossing fraction by ``repaymentEvery`` once more, so a
quarterly period across 31 December got about three times its interest (the
schedule then hides interest and over-collects principal). Later upstream
Fineract passes ``ONE`` there, which is what we do; for repayment_every = 1 the
two are identical. Everything else follows the snapshot.

EMI = P * prod(1 + r_k) / fn with fn = 1 + fn_prev * (1 + r_k) over periods
2..n (fn_1 = 1), rounded to the currency (then HALF_EVEN to the installment
multiple). Interest_k = round(balance_k * r_k); principal_k = EMI - interest_k.
The last EMI absorbs the residue (P + sum(interest) - sum(EMI)); if that makes
the last EMI differ from the others by more than floor(n/2) cents, every EMI is
moved by residue / n once, when that lowers the difference (Fineract's
checkAndAdjustEmiIfNeededOnRelatedRepaymentPeriods).
"""

from __future__ import annotations

import calendar
import datetime as _dt
from dataclasses import dataclass
from decimal import Decimal

from node.core.money import exact_add, exact_mul

from .arithmetic import HUNDRED, ONE, CurrencyMoney, mc_add, mc_div, mc_mul
from .inputs import ACTUAL, DAYS, MONTHS, WEEKS, ScheduleInput

__all__ = ["ProgressivePeriod", "generate_progressive", "progressive_schedule", "rate_factor"]


@dataclass(frozen=True)
class ProgressivePeriod:
    start: _dt.date
    due: _dt.date
    emi: Decimal
    principal: Decimal
    interest: Decimal
    balance: Decimal


def _days_in_year(days_in_year: str, day: _dt.date) -> int:
    if days_in_year == ACTUAL:
        return 366 if _is_leap(day.year) else 365
    return int(days_in_year)


def _days_in_month(days_in_month: str, day: _dt.date) -> int:
    if days_in_month == ACTUAL:
        return calendar.monthrange(day.year, day.month)[1]
    return int(days_in_month)


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def rate_factor(
    annual_rate: Decimal,
    frequency: str,
    every: int,
    days_in_year: str,
    days_in_month: str,
    interest_from: _dt.date,
    interest_to: _dt.date,
    period_from: _dt.date,
    period_to: _dt.date,
) -> Decimal:
    """``ProgressiveEMICalculator.calculateRateFactorPerPeriod`` (without +1)."""
    rate = mc_div(annual_rate, HUNDRED)
    every_d = Decimal(every)
    if days_in_year == ACTUAL and interest_to.year - interest_from.year > 0:
        # calculatePeriodFractions: days in each calendar year / that year's length
        cumulated = Decimal(0)
        current = interest_from
        for year in range(interest_from.year, interest_to.year + 1):
            year_end = interest_to if year == interest_to.year else _dt.date(year, 12, 31)
            fraction = mc_div(Decimal((year_end - current).days), Decimal(366 if _is_leap(year) else 365))
            cumulated = mc_add(cumulated, fraction)
            current = year_end
        # rateFactorByRepaymentPartialPeriod(rate, ONE, cumulated, ONE, ONE): the
        # multiplier is ONE, not repaymentEvery (see the module docstring).
        fraction_per_period = exact_mul(ONE, cumulated)
        return mc_div(mc_mul(mc_mul(rate, fraction_per_period), ONE), ONE)
    if frequency == DAYS:
        unit = Decimal(1)
    elif frequency == WEEKS:
        unit = Decimal(7)
    elif frequency == MONTHS:
        unit = Decimal(_days_in_month(days_in_month, interest_from))
    else:  # pragma: no cover - validated earlier
        raise ValueError(frequency)
    fraction_per_period = mc_div(mc_mul(unit, every_d), Decimal(_days_in_year(days_in_year, interest_from)))
    actual_days = Decimal((interest_to - interest_from).days)
    period_days = Decimal((period_to - period_from).days)
    return mc_div(mc_mul(mc_mul(rate, fraction_per_period), actual_days), period_days)


def _evaluate(
    money: CurrencyMoney, principal: Decimal, factors: list[Decimal], emis: list[Decimal]
) -> list[tuple[Decimal, Decimal, Decimal, Decimal]]:
    """Interest, principal and balance of every period for the given EMIs.

    Returns (due interest, due principal, balance shown, balance carried).
    Mirrors RepaymentPeriod/InterestPeriod with nothing paid.
    """
    m = money
    rows = []
    balance = principal
    unrecognized = m.zero()
    for index, (factor, emi) in enumerate(zip(factors, emis)):
        calculated_interest = m.multiplied_by(balance, factor)
        if index > 0:
            calculated_interest = m.plus(calculated_interest, unrecognized)
        calculated_principal = m.minus(emi, calculated_interest)
        due_interest = m.zero() if calculated_principal < 0 else calculated_interest
        if not due_interest > 0:
            due_interest = m.zero()
        due_principal = m.minus(emi, due_interest)
        if not due_principal > 0:
            due_principal = m.zero()
        unrecognized = m.minus(calculated_interest, due_interest)
        next_balance = m.minus(balance, due_principal)
        shown = next_balance if next_balance > 0 else m.zero()
        rows.append((due_interest, due_principal, shown, next_balance))
        balance = next_balance
    return rows


def _adjust_last_emi(money: CurrencyMoney, principal: Decimal, factors: list[Decimal], emis: list[Decimal]) -> list[Decimal]:
    """``calculateLastUnpaidRepaymentPeriodEMI``."""
    m = money
    rows = _evaluate(m, principal, factors, emis)
    total_interest = m.zero()
    for row in rows:
        total_interest = m.plus(total_interest, row[0])
    total_emi = m.zero()
    for emi in emis:
        total_emi = m.plus(total_emi, emi)
    difference = m.minus(m.plus(principal, total_interest), total_emi)
    unpaid = [i for i, emi in enumerate(emis) if emi != 0]  # a zero EMI counts as "fully paid"
    if not unpaid:
        return list(emis)
    adjusted = list(emis)
    adjusted[unpaid[-1]] = m.plus(adjusted[unpaid[-1]], difference)
    return adjusted


def progressive_schedule(
    money: CurrencyMoney,
    principal: Decimal,
    factors: list[Decimal],
    installment_multiple: int | None,
) -> list[tuple[Decimal, Decimal, Decimal, Decimal]]:
    """EMI, interest, principal and balance of each period, given rate factors.

    ``factors[k]`` is the rate factor of period k (the first period's zero-length
    disbursement interest period contributes a factor of 0).
    """
    m = money
    n = len(factors)
    # calculateEMIOnPeriods
    product = ONE
    for factor in factors:
        product = mc_mul(product, exact_add(ONE, factor))
    fn = ONE
    for factor in factors[1:]:
        fn = mc_add(ONE, mc_mul(fn, exact_add(ONE, factor)))
    emi = m.of(mc_div(mc_mul(product, principal), fn))
    if installment_multiple is not None:
        emi = m.round_to_multiple(emi, installment_multiple)
    emis = _adjust_last_emi(m, principal, factors, [emi] * n)

    # checkAndAdjustEmiIfNeededOnRelatedRepaymentPeriods
    if n >= 2:
        difference = m.minus(emis[-1], emis[-2])
        lower_half = n // 2
        if difference != 0 and lower_half > 0:
            original = emis[-2]
            if m.multiplied_by(m.abs(difference), HUNDRED) > m.of(Decimal(lower_half)):
                adjustment = m.divided_by(difference, n)
                candidate = m.plus(original, adjustment)
                if installment_multiple is not None:
                    candidate = m.round_to_multiple(candidate, installment_multiple)
                if candidate != original:
                    new_emis = _adjust_last_emi(m, principal, factors, [candidate] * n)
                    new_difference = m.minus(new_emis[-1], new_emis[-2])
                    if m.abs(new_difference) < m.abs(difference):
                        emis = new_emis

    rows = _evaluate(m, principal, factors, emis)
    return [(emis[k], rows[k][0], rows[k][1], rows[k][2]) for k in range(n)]


def generate_progressive(
    inp: ScheduleInput, money: CurrencyMoney, dates: list[tuple[_dt.date, _dt.date]]
) -> list[ProgressivePeriod]:
    factors = []
    for start, due in dates:
        factors.append(
            rate_factor(
                inp.annual_interest_rate,
                inp.repayment_frequency,
                inp.repayment_every,
                inp.days_in_year,
                inp.days_in_month,
                start,
                due,
                start,
                due,
            )
        )
    # The first period also holds the disbursement's zero-length interest period
    # [D, D]; its factor is 0, so 1 + 0 + r_1 = 1 + r_1 exactly.
    results = progressive_schedule(money, money.of(inp.principal), factors, inp.installment_in_multiples_of)
    return [
        ProgressivePeriod(start, due, emi, principal, interest, balance)
        for (start, due), (emi, interest, principal, balance) in zip(dates, results)
    ]
