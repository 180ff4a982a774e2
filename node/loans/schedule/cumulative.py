"""CUMULATIVE schedules: Fineract's AbstractCumulativeLoanScheduleGenerator with
the flat and declining-balance period calculators (LoanApplicationTerms),
restricted to one disbursement, no interest recalculation, no term variations,
no holidays, no down payment.

Per period (numbers are 1-based, ``n`` repayments, graces ``pg`` principal,
``ipg`` interest payment, ``icg`` interest charged):

FLAT
  total = round(P * (rate / periodsPerYear / 100) * term); term = n * every
  (SAME_AS_REPAYMENT_PERIOD) or the loan's days (DAILY, periodsPerYear = days in
  year, 365 for ACTUAL). perInstallment = round(total / n).
  Interest due for the loan = total - perInstallment * icg.
  EQUAL_INSTALLMENTS: periods 1..ipg and 1..icg get 0, the others
  round(due / (n - ipg - icg)). EQUAL_PRINCIPAL: every period perInstallment,
  periods 1..ipg defer it to period ipg+1, periods 1..icg get 0.
  The last period's interest is whatever makes the interest sum equal the due.
  Principal = round(P / (n - pg)) (0 in principal grace); with an installment
  multiple m: roundHalfEven_m(principal) + roundHalfEven_m(interest) - interest.
DECLINING_BALANCE
  interest = round(balance * periodicRate); SAME_AS_REPAYMENT_PERIOD rate =
  rate / periodsPerYear / 100 * every; DAILY rate = rate / daysInYear / 100 *
  days (days = 30 * every for monthly 30-day months; ACTUAL uses 365).
  Interest payment grace defers interest to the first later period that
  charges interest; interest charged grace makes it 0.
  EQUAL_INSTALLMENTS: EMI = round(PMT(rate for one regular period with 30-day
  months, n - pg, P)) (rounded HALF_EVEN to the installment multiple first);
  principal = EMI - interest of the period (0 in principal grace).
  EQUAL_PRINCIPAL: principal = round(P / (n - pg)) (0 in principal grace).
The last period takes all the principal still outstanding (and an overpaying
period is cut to the outstanding balance, which ends the schedule early).
"""

from __future__ import annotations

import calendar
import datetime as _dt
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal

from node.core.money import exact_mul, round_to_multiple

from .arithmetic import HUNDRED, CurrencyMoney, mc_div, mc_mul, pmt
from .dates import add_months, due_date, ideal_disbursement_date, months_between
from .inputs import (
    ACTUAL,
    DAILY,
    DAYS,
    DECLINING_BALANCE,
    EQUAL_INSTALLMENTS,
    FLAT,
    MONTHS,
    NON_FIELD_ERRORS,
    WEEKS,
    ScheduleInput,
    ScheduleInputError,
)

__all__ = ["PeriodAmounts", "generate_cumulative", "periods_in_one_year"]

# Fineract's DefaultPaymentPeriodsInOneYearCalculator.
_PERIODS_PER_YEAR = {DAYS: 365, WEEKS: 52, MONTHS: 12}
_SEVENTEEN_DIGITS = Context(prec=17, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True)
class PeriodAmounts:
    number: int
    start: _dt.date
    due: _dt.date
    principal: Decimal
    interest: Decimal
    balance: Decimal


def periods_in_one_year(inp: ScheduleInput) -> int:
    """``LoanApplicationTerms.calculatePeriodsInOneYear``."""
    if inp.repayment_frequency == DAYS and inp.days_in_year != ACTUAL:
        periods = int(inp.days_in_year)
    else:
        periods = _PERIODS_PER_YEAR[inp.repayment_frequency]
    if inp.interest_calculation_period == DAILY:
        periods = int(inp.days_in_year) if inp.days_in_year != ACTUAL else 365
    return periods


def _adjust_to_seed(day: _dt.date, seed: _dt.date) -> _dt.date:
    """``CalendarUtils.adjustDate`` for monthly periods."""
    if seed.day > 28 and day.day >= 28:
        return day.replace(day=min(calendar.monthrange(day.year, day.month)[1], seed.day))
    return day


def _months_in_period(start: _dt.date, end: _dt.date, seed: _dt.date) -> Decimal:
    """``calculatePeriodsBetweenDates`` for MONTHS (no loan calendar): whole
    months plus the fraction of the next month. For the schedule's own periods
    the fraction is always 0 or 1."""
    months = months_between(start, end)
    after = _adjust_to_seed(add_months(start, months), seed)
    next_after = _adjust_to_seed(add_months(start, months + 1), seed)
    days_left = (end - after).days
    days_in = (next_after - after).days
    if days_left == 0:
        return Decimal(months)
    # Fineract uses the double days_left / days_in here; 17 digits approximate it.
    return Decimal(months) + _SEVENTEEN_DIGITS.divide(Decimal(days_left), Decimal(days_in))


class _Terms:
    """The parts of LoanApplicationTerms the cumulative generator needs."""

    def __init__(self, inp: ScheduleInput, money: CurrencyMoney):
        self.inp = inp
        self.money = money
        self.n = inp.number_of_repayments
        self.every = inp.repayment_every
        self.principal = money.of(inp.principal)
        self.principal_grace = set(range(1, inp.grace_on_principal_periods + 1))
        self.interest_grace = set(range(1, inp.grace_on_interest_payment_periods + 1))
        self.icg = inp.grace_on_interest_charged_periods
        self.periods_per_year = periods_in_one_year(inp)
        self.first_due = due_date(inp.disbursement_date, inp.repayment_frequency, self.every, 1)
        self.ideal_disbursement = ideal_disbursement_date(self.first_due, inp.repayment_frequency, self.every)
        self.loan_end = due_date(inp.disbursement_date, inp.repayment_frequency, self.every, self.n)

    # -- rates ------------------------------------------------------------------
    def _rate_per_period_unit(self) -> Decimal:
        """annual rate / periods per year / 100, 12 significant digits."""
        return mc_div(mc_div(self.inp.annual_interest_rate, Decimal(self.periods_per_year)), HUNDRED)

    def periodic_rate(self, start: _dt.date, end: _dt.date, for_pmt: bool = False) -> Decimal:
        """``LoanApplicationTerms.periodicInterestRate``."""
        inp = self.inp
        unit_rate = self._rate_per_period_unit()
        if inp.interest_calculation_period != DAILY:
            # SAME_AS_REPAYMENT_PERIOD: the period count is repayment_every.
            return exact_mul(unit_rate, Decimal(self.every))
        days = Decimal((end - start).days)
        if inp.repayment_frequency == MONTHS:
            thirty_day_months = for_pmt or inp.days_in_month == "30"
            if thirty_day_months:
                months = Decimal(self.every) if for_pmt else _months_in_period(start, end, inp.disbursement_date)
                days = mc_mul(months, Decimal(30))
        return mc_mul(unit_rate, days)

    def pmt_rate(self) -> Decimal:
        """``pmtForInstallment``: one regular period from the 1st of the
        disbursement month, 30-day months."""
        start = self.inp.disbursement_date.replace(day=1)
        end = due_date(start, self.inp.repayment_frequency, self.every, 1)
        return self.periodic_rate(start, end, for_pmt=True)


def generate_cumulative(inp: ScheduleInput, money: CurrencyMoney) -> list[PeriodAmounts]:
    terms = _Terms(inp, money)
    m = money
    n = terms.n
    principal_total = terms.principal
    multiple = inp.installment_in_multiples_of
    flat = inp.interest_method == FLAT
    equal_installments = inp.amortization == EQUAL_INSTALLMENTS

    # FLAT totals (calculateTotalInterestCharged).
    total_interest_due = m.zero()
    flat_total = per_installment = m.zero()
    if flat:
        term = (terms.loan_end - inp.disbursement_date).days if inp.interest_calculation_period == DAILY else n * terms.every
        rate_for_term = exact_mul(terms._rate_per_period_unit(), Decimal(term))
        flat_total = m.multiply_retain_scale(principal_total, rate_for_term)
        per_installment = m.divided_by(flat_total, n)
        total_interest_due = m.minus(flat_total, m.multiply_retain_scale(per_installment, Decimal(terms.icg)))

    # Amortization constants (updateAmortization).
    fixed_emi = None
    fixed_principal = m.divided_by(principal_total, n - len(terms.principal_grace))
    if inp.interest_method == DECLINING_BALANCE and equal_installments:
        raw = pmt(terms.pmt_rate(), n - len(terms.principal_grace), principal_total)
        if multiple is not None:
            # Money.roundToMultiplesOf(BigDecimal, m) on the raw payment, before
            # it becomes Money: HALF_EVEN to the installment multiple.
            raw = round_to_multiple(raw, multiple, ROUND_HALF_EVEN)
        fixed_emi = m.of(raw)

    def adjust_principal(principal: Decimal, cumulative_to_date: Decimal, number: int) -> Decimal:
        remaining = m.minus(principal_total, cumulative_to_date)
        if remaining < 0:
            return m.minus(principal, m.abs(remaining))
        if number == n:
            difference = m.minus(cumulative_to_date, principal_total)
            if difference < 0:
                return m.plus(principal, m.abs(difference))
            if difference > 0:
                return m.minus(principal, m.abs(difference))
        return principal

    def adjust_interest(interest: Decimal, cumulative_to_date: Decimal, number: int) -> Decimal:
        adjusted = interest
        remaining = m.minus(total_interest_due, cumulative_to_date)
        if remaining < 0:
            adjusted = m.minus(interest, m.abs(remaining))
        elif number == n:
            difference = m.minus(cumulative_to_date, total_interest_due)
            if difference < 0:
                adjusted = m.plus(interest, m.abs(difference))
            elif difference > 0:
                adjusted = m.minus(interest, m.abs(difference))
        if adjusted < 0:  # Fineract doubles a negative adjustment (never reached in practice)
            adjusted = m.plus(adjusted, adjusted)
        return adjusted

    def flat_interest(number: int, carried: Decimal) -> tuple[Decimal, Decimal]:
        if equal_installments:
            # calculateTotalFlatInterestForInstallmentAveragingOutGracePeriods
            if number in terms.interest_grace or number <= terms.icg:
                return m.zero(), carried
            real_total = m.minus(flat_total, m.multiplied_by(per_installment, Decimal(terms.icg)))
            due_periods = n - len(terms.interest_grace) - terms.icg
            interest = m.divided_by(real_total, due_periods)
            elapsed = max((g for g in terms.interest_grace if g < number), default=0)
            if elapsed > 0:
                later_grace = sum(1 for g in terms.interest_grace if g > elapsed)
                interest = m.divided_by(total_interest_due, n - elapsed - later_grace - terms.icg)
            return interest, carried
        # EQUAL_PRINCIPAL: calculateTotalFlatInterestForPeriod
        interest = per_installment
        if number in terms.interest_grace:
            return m.zero(), m.plus(carried, interest)
        if number <= terms.icg:
            return m.zero(), carried
        if number == len(terms.interest_grace) + 1:
            return m.plus(carried, interest), m.zero()
        return interest, carried

    def flat_principal(number: int, interest: Decimal) -> Decimal:
        # calculateTotalPrincipalPerPeriodWithoutGrace
        principal = m.divided_by(principal_total, n - len(terms.principal_grace))
        if number in terms.principal_grace:
            principal = m.zero()
        if multiple is not None:
            rounded_principal = m.round_to_multiple(principal, multiple)
            rounded_interest = m.round_to_multiple(interest, multiple)
            principal = m.minus(m.plus(rounded_principal, rounded_interest), interest)
        return principal

    def declining_interest(number: int, start: _dt.date, due: _dt.date, balance: Decimal, carried: Decimal):
        # calculateTotalInterestForPeriod (DECLINING_BALANCE branch)
        rate = terms.periodic_rate(start, due)
        before_grace = m.multiply_retain_scale(balance, rate)
        after_grace = before_grace
        interest_free = number <= terms.icg
        if number in terms.interest_grace or interest_free:
            after_grace = m.zero()
        if after_grace > 0:
            return m.plus(carried, after_grace), m.zero()
        if interest_free:
            return m.zero(), carried
        return after_grace, m.plus(carried, before_grace)

    periods: list[PeriodAmounts] = []
    outstanding = principal_total
    cumulative_principal = m.zero()
    cumulative_interest = m.zero()
    carried_interest = m.zero()  # interest deferred by interest payment grace
    reduce_principal = m.zero()  # negative principal carried forward (FLAT multiples)
    number = 1
    start = inp.disbursement_date
    while outstanding != 0:
        # Period n takes all the outstanding principal, so a balance left after
        # it means an installment rounded to 0 (Fineract would loop for ever).
        if number > n:
            raise ScheduleInputError(
                {
                    NON_FIELD_ERRORS: [
                        (
                            "These parameters do not amortize the principal (an installment rounds to 0 with this "
                            "principal, installment_in_multiples_of and currency)."
                        )
                    ]
                }
            )
        due = due_date(inp.disbursement_date, inp.repayment_frequency, terms.every, number)
        # calculateInterestStartDateForPeriod: the first period's interest runs
        # from the ideal disbursement date.
        interest_start = terms.ideal_disbursement if (start < terms.first_due and start == inp.disbursement_date) else start
        cumulative_for_calc = m.minus(cumulative_principal, reduce_principal)

        if flat:
            interest, carried_out = flat_interest(number, carried_interest)
            principal = flat_principal(number, interest)
            principal = adjust_principal(principal, m.plus(cumulative_for_calc, principal), number)
            interest = adjust_interest(interest, m.plus(cumulative_interest, interest), number)
        else:
            interest, carried_out = declining_interest(number, interest_start, due, outstanding, carried_interest)
            if interest > 0:
                interest_for_principal = m.minus(interest, carried_interest)
            else:
                interest_for_principal = m.minus(carried_out, carried_interest)
            if equal_installments:
                principal = m.minus(fixed_emi, interest_for_principal)
            else:
                principal = fixed_principal
            if number in terms.principal_grace:
                principal = m.zero()
            principal = adjust_principal(principal, m.plus(cumulative_for_calc, principal), number)

        if fixed_emi is not None and fixed_emi < interest:
            raise ScheduleInputError(
                {NON_FIELD_ERRORS: [f"The installment ({fixed_emi}) must be greater than the interest due ({interest})."]}
            )
        carried_interest = carried_out

        # updatePrincipalPortionBasedOnPreviousEarlyPayments
        if principal > reduce_principal:
            principal = m.minus(principal, reduce_principal)
            reduce_principal = m.zero()
        else:
            reduce_principal = m.minus(reduce_principal, principal)
            principal = m.zero()
        outstanding = m.minus(outstanding, principal)
        if outstanding < 0:
            principal = m.plus(principal, outstanding)
            outstanding = m.zero()

        periods.append(PeriodAmounts(number, start, due, principal, interest, outstanding))
        cumulative_principal = m.plus(cumulative_principal, principal)
        cumulative_interest = m.plus(cumulative_interest, interest)
        start = due
        number += 1

    if carried_interest > 0:  # deferred interest never collected: add it to the last period
        last = periods[-1]
        periods[-1] = PeriodAmounts(
            last.number, last.start, last.due, last.principal, m.plus(last.interest, carried_interest), last.balance
        )
    return periods

