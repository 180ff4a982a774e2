"""Fineract's arithmetic, reproduced with Decimal (never float).

Apache Fineract computes schedules with two kinds of arithmetic:

* ``MathContext(12, HALF_EVEN)`` (``MoneyHelper.getMathContext()``) for rates
  and factors: every ``divide``/``multiply``/``add`` "with mc" rounds its
  *result* to 12 significant digits. Python's ``decimal`` operations are
  correctly rounded too, so ``Context(prec=12, HALF_EVEN)`` gives the same digits.
* ``Money`` for amounts: every ``Money`` built (``Money.of``) is rounded
  HALF_EVEN to the currency's decimals, and when the currency has **0 decimals
  and a positive ``inMultiplesOf``** a positive amount is first rounded to the
  *nearest* multiple, a tie going up (``Money.roundToMultiplesOf(double, ...)``).
  ``CurrencyMoney.of`` below is that constructor; the other methods mirror the
  ``Money`` operations the schedule generators use, so that the rounding happens
  at exactly the same points as in Fineract.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Context, Decimal

from node.core.money import (
    ROUNDING,
    div_round,
    exact_add,
    exact_mul,
    quantize,
    round_to_multiple,
    to_decimal,
)

__all__ = ["HUNDRED", "MC", "ONE", "ZERO", "CurrencyMoney", "mc_add", "mc_div", "mc_mul", "pmt"]

ZERO = Decimal(0)
ONE = Decimal(1)
HUNDRED = Decimal(100)

#: Fineract's MoneyHelper.getMathContext(): 12 significant digits, HALF_EVEN.
MC = Context(prec=12, rounding=ROUND_HALF_EVEN, Emax=999_999, Emin=-999_999)

# Wide context used only for the annuity (PMT) formula, see ``pmt``.
_PMT_CONTEXT = Context(prec=60, rounding=ROUND_HALF_EVEN, Emax=999_999, Emin=-999_999)


def mc_div(a: Decimal, b: Decimal) -> Decimal:
    """``a.divide(b, mc)``"""
    return MC.divide(a, b)


def mc_mul(a: Decimal, b: Decimal) -> Decimal:
    """``a.multiply(b, mc)``"""
    return MC.multiply(a, b)


def mc_add(a: Decimal, b: Decimal) -> Decimal:
    """``a.add(b, mc)``"""
    return MC.add(a, b)


@dataclass(frozen=True)
class CurrencyMoney:
    """The ``Money`` semantics of one currency (decimals + inMultiplesOf)."""

    decimals: int
    in_multiples_of: int = 0  # applied only when decimals == 0 (Fineract rule)

    def of(self, amount: Decimal) -> Decimal:
        """``Money.of(currency, amount)``: nearest currency multiple (tie up) for a
        positive amount of a 0-decimal currency with a multiple, then HALF_EVEN at
        the currency decimals."""
        amount = to_decimal(amount)
        if self.decimals == 0 and self.in_multiples_of > 0 and amount > 0:
            amount = round_to_multiple(amount, self.in_multiples_of, ROUND_HALF_UP)
        return quantize(amount, self.decimals, ROUNDING)

    def zero(self) -> Decimal:
        return self.of(ZERO)

    def plus(self, a: Decimal, b: Decimal) -> Decimal:
        """``a.plus(b)`` (also ``add``); the exact sum, re-built as Money."""
        return self.of(exact_add(a, b))

    def minus(self, a: Decimal, b: Decimal) -> Decimal:
        return self.of(exact_add(a, -b))

    def abs(self, a: Decimal) -> Decimal:
        """``Money.abs()``: a negative amount is negated and re-built as Money."""
        return a if a >= 0 else self.of(-a)

    def multiplied_by(self, a: Decimal, factor: Decimal) -> Decimal:
        """``Money.multipliedBy(x)``: exact product re-built as Money."""
        if factor == 1:
            return a
        return self.of(exact_mul(a, factor))

    def multiply_retain_scale(self, a: Decimal, factor: Decimal) -> Decimal:
        """``Money.multiplyRetainScale(x, HALF_EVEN)``: the exact product is first
        rounded to the currency decimals, then re-built as Money (so a currency
        multiple is applied to the *rounded* product)."""
        if factor == 1:
            return a
        return self.of(quantize(exact_mul(a, factor), self.decimals, ROUNDING))

    def divided_by(self, a: Decimal, divisor: int | Decimal) -> Decimal:
        """``Money.dividedBy(n, HALF_EVEN)``: Java divides keeping the amount's
        scale (the currency decimals), rounding once, then re-builds Money."""
        if divisor == 1:
            return a
        return self.of(div_round(a, divisor, self.decimals, ROUNDING))

    def round_to_multiple(self, a: Decimal, multiple: int) -> Decimal:
        """``Money.roundToMultiplesOf(money, m)``: HALF_EVEN to the multiple."""
        return self.of(round_to_multiple(a, multiple, ROUNDING))


def pmt(rate: Decimal, periods: int, principal: Decimal) -> Decimal:
    """The annuity payment ``principal * r * (1+r)^N / ((1+r)^N - 1)``.

    Fineract's ``FinanicalFunctions.pmt`` evaluates this formula in IEEE
    ``double``; here it is evaluated with 60 significant digits and the caller
    rounds the result exactly like Fineract rounds the double. The two can only
    differ when the true payment lies within ~1e-10 of a rounding boundary.
    With a zero rate the payment is ``principal / N``.
    """
    if periods <= 0:
        raise ValueError("the number of periods must be positive")
    ctx = _PMT_CONTEXT
    if rate == 0:
        return ctx.divide(principal, Decimal(periods))
    growth = ctx.power(ctx.add(ONE, rate), periods)
    return ctx.divide(ctx.multiply(ctx.multiply(principal, rate), growth), ctx.subtract(growth, ONE))
