"""The one place where money values are built and rounded.

Rules (Letsema-wide):

* Money is ``decimal.Decimal``, never ``float``. ``to_money`` refuses floats
  (and bools, which are ints in Python) so that a binary floating point value
  can never sneak into an amount.
* Rounding is banker's rounding, ``ROUND_HALF_EVEN`` (Apache Fineract's
  default rounding mode), at the currency's number of decimals.
* Every operation in this module is *exact*: results never depend on the
  thread-local ``decimal`` context (whose default precision of 28 digits could
  otherwise silently round a product or a quotient before it is quantized).

Pure Python: no Django import, safe to use from pure engines and tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import (
    ROUND_05UP,
    ROUND_CEILING,
    ROUND_DOWN,
    ROUND_FLOOR,
    ROUND_HALF_DOWN,
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    ROUND_UP,
    Context,
    Decimal,
    Inexact,
    InvalidOperation,
    Rounded,
)

__all__ = [
    "MAX_DECIMALS",
    "ROUNDING",
    "allocate",
    "div_round",
    "exact_add",
    "exact_mul",
    "quantize",
    "round_to_multiple",
    "sum_exact",
    "to_decimal",
    "to_money",
]

#: The rounding mode for every money value in Letsema (Fineract's default).
ROUNDING = ROUND_HALF_EVEN

#: Largest number of decimals a Letsema currency may have.
MAX_DECIMALS = 6

# Exponent limits wide enough for any amount we will ever see.
MAX_EMAX = 999_999
MIN_EMIN = -999_999

DecimalLike = str | int | Decimal


def to_decimal(value: DecimalLike) -> Decimal:
    """Convert ``value`` (str, int or Decimal) to a finite Decimal, exactly.

    Floats are refused with ``TypeError`` (their binary value is not the decimal
    the user typed); so are bools. Strings must parse as a finite decimal
    number, otherwise ``ValueError``.
    """
    if isinstance(value, bool):
        raise TypeError("money/decimal values must not be bool")
    if isinstance(value, float):
        raise TypeError("money/decimal values must not be float; pass a str, int or Decimal")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"not a decimal number: {value!r}") from None
    else:
        raise TypeError(f"unsupported type for a decimal value: {type(value).__name__}")
    if not result.is_finite():
        raise ValueError(f"not a finite decimal number: {value!r}")
    return result


def _check_decimals(decimals: int) -> None:
    if isinstance(decimals, bool) or not isinstance(decimals, int):
        raise TypeError("decimals must be an int")
    if decimals < 0 or decimals > 18:
        raise ValueError("decimals must be between 0 and 18")


def _round_fraction(numerator: int, denominator: int, rounding: str) -> int:
    """Round the rational ``numerator/denominator`` to an integer, exactly."""
    if denominator == 0:
        raise ZeroDivisionError("division by zero")
    if denominator < 0:
        numerator, denominator = -numerator, -denominator
    floor_q, remainder = divmod(numerator, denominator)  # remainder >= 0
    if remainder == 0:
        return floor_q
    ceil_q = floor_q + 1
    positive = numerator > 0
    if rounding == ROUND_FLOOR:
        return floor_q
    if rounding == ROUND_CEILING:
        return ceil_q
    if rounding == ROUND_DOWN:  # towards zero
        return floor_q if positive else ceil_q
    if rounding == ROUND_UP:  # away from zero
        return ceil_q if positive else floor_q
    if rounding in (ROUND_HALF_EVEN, ROUND_HALF_UP, ROUND_HALF_DOWN):
        twice = 2 * remainder
        if twice < denominator:
            return floor_q
        if twice > denominator:
            return ceil_q
        if rounding == ROUND_HALF_UP:  # tie away from zero
            return ceil_q if positive else floor_q
        if rounding == ROUND_HALF_DOWN:  # tie towards zero
            return floor_q if positive else ceil_q
        return floor_q if floor_q % 2 == 0 else ceil_q
    if rounding == ROUND_05UP:
        raise ValueError("ROUND_05UP is not supported")
    raise ValueError(f"unknown rounding mode: {rounding!r}")


def _from_scaled_int(units: int, decimals: int) -> Decimal:
    # Building from a string is exact (no context rounding, unlike scaleb()).
    return Decimal(f"{units}E-{decimals}") if decimals else Decimal(units)


def div_round(numerator: DecimalLike, denominator: DecimalLike, decimals: int, rounding: str = ROUNDING) -> Decimal:
    """``numerator / denominator`` rounded to ``decimals`` places, exactly.

    This is Java's ``BigDecimal.divide(divisor, scale, roundingMode)``: the true
    quotient (even a non-terminating one) is rounded once.
    """
    _check_decimals(decimals)
    n_num, n_den = to_decimal(numerator).as_integer_ratio()
    d_num, d_den = to_decimal(denominator).as_integer_ratio()
    if d_num == 0:
        raise ZeroDivisionError("division by zero")
    units = _round_fraction(n_num * d_den * 10**decimals, n_den * d_num, rounding)
    return _from_scaled_int(units, decimals)


def quantize(value: DecimalLike, decimals: int, rounding: str = ROUNDING) -> Decimal:
    """Round ``value`` to ``decimals`` places (exact, context independent)."""
    return div_round(value, 1, decimals, rounding)


def to_money(value: DecimalLike, decimals: int = 2) -> Decimal:
    """Build a money amount: str/int/Decimal -> Decimal with exactly ``decimals``
    places, rounded HALF_EVEN. Floats and bools raise ``TypeError``; malformed or
    non-finite strings raise ``ValueError``."""
    return quantize(to_decimal(value), decimals, ROUNDING)


def exact_mul(a: DecimalLike, b: DecimalLike) -> Decimal:
    """Exact product of two decimals (a context wide enough never to round)."""
    a_d, b_d = to_decimal(a), to_decimal(b)
    digits = len(a_d.as_tuple().digits) + len(b_d.as_tuple().digits) + 2
    context = Context(prec=max(digits, 28), rounding=ROUNDING, Emax=MAX_EMAX, Emin=MIN_EMIN, traps=[Inexact, Rounded])
    return context.multiply(a_d, b_d)


def exact_add(a: DecimalLike, b: DecimalLike) -> Decimal:
    """Exact sum of two decimals (a context wide enough never to round)."""
    a_d, b_d = to_decimal(a), to_decimal(b)
    a_t, b_t = a_d.as_tuple(), b_d.as_tuple()
    low = min(a_t.exponent, b_t.exponent)
    high = max(len(a_t.digits) + a_t.exponent, len(b_t.digits) + b_t.exponent)
    context = Context(prec=max(high - low + 2, 28), rounding=ROUNDING, Emax=MAX_EMAX, Emin=MIN_EMIN, traps=[Inexact, Rounded])
    return context.add(a_d, b_d)


def round_to_multiple(amount: DecimalLike, multiple: DecimalLike, rounding: str = ROUNDING) -> Decimal:
    """Round ``amount`` to a multiple of ``multiple`` (> 0) with ``rounding``.

    ``round_to_multiple(Decimal("416.67"), 1)`` -> ``417``;
    ``round_to_multiple(Decimal("12.5"), 1)`` -> ``12`` (HALF_EVEN);
    ``round_to_multiple(Decimal("125"), 10, ROUND_HALF_UP)`` -> ``130``.
    This is Java's ``amount.divide(multiple, 0, rounding).multiply(multiple)``.
    """
    amount_d = to_decimal(amount)
    multiple_d = to_decimal(multiple)
    if multiple_d <= 0:
        raise ValueError("multiple must be greater than 0")
    count = div_round(amount_d, multiple_d, 0, rounding)
    return exact_mul(count, multiple_d)


def allocate(amount: DecimalLike, ratios: Sequence[DecimalLike], decimals: int | None = None) -> list[Decimal]:
    """Split ``amount`` into parts proportional to ``ratios`` (largest remainder).

    The parts are multiples of the smallest unit at ``decimals`` places (default:
    the number of places ``amount`` carries), they sum *exactly* to ``amount``,
    and each part is within one unit of its exact share. Units left after taking
    the floor of every share go to the parts with the largest remainders; ties go
    to the earlier part. A negative amount is split like its absolute value and
    every part negated.
    """
    amount_d = to_decimal(amount)
    if decimals is None:
        exponent = amount_d.as_tuple().exponent
        decimals = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    _check_decimals(decimals)
    ratio_list = [to_decimal(r) for r in ratios]
    if not ratio_list:
        raise ValueError("ratios must not be empty")
    if any(r < 0 for r in ratio_list):
        raise ValueError("ratios must not be negative")
    t_num, t_den = sum_exact(ratio_list).as_integer_ratio()
    if t_num == 0:
        raise ValueError("ratios must not all be zero")

    sign = -1 if amount_d < 0 else 1
    a_num, a_den = abs(amount_d).as_integer_ratio()
    scaled_num = a_num * 10**decimals
    if scaled_num % a_den:
        raise ValueError(f"amount {amount_d} has more than {decimals} decimal places")
    units_total = scaled_num // a_den

    floors: list[int] = []
    remainders: list[tuple[int, int]] = []
    for ratio in ratio_list:
        r_num, r_den = ratio.as_integer_ratio()
        # exact share in units = units_total * ratio / total_ratio
        num = units_total * r_num * t_den
        den = r_den * t_num
        quotient, remainder = divmod(num, den)
        floors.append(quotient)
        remainders.append((remainder, den))
    leftover = units_total - sum(floors)
    order = sorted(range(len(ratio_list)), key=_RemainderKey.factory(remainders))
    for index in order[:leftover]:
        floors[index] += 1
    return [_from_scaled_int(sign * units, decimals) for units in floors]


class _RemainderKey:
    """Sort key: larger fractional remainder first, then lower index."""

    __slots__ = ("den", "index", "rem")

    def __init__(self, rem: int, den: int, index: int) -> None:
        self.rem, self.den, self.index = rem, den, index

    @staticmethod
    def factory(remainders: list[tuple[int, int]]):
        return lambda index: _RemainderKey(remainders[index][0], remainders[index][1], index)

    def __lt__(self, other: _RemainderKey) -> bool:
        left = self.rem * other.den
        right = other.rem * self.den
        if left != right:
            return left > right
        return self.index < other.index


def sum_exact(values: Iterable[DecimalLike]) -> Decimal:
    """Exact sum of decimals (independent of the decimal context precision)."""
    total = Decimal(0)
    for value in values:
        total = exact_add(total, value)
    return total


def plain(value: Decimal) -> str:
    """The shortest plain decimal string: 30.000000 -> "30", 36.5000 -> "36.5" (never "3E+1", which
    ``str(d.normalize())`` gives for round tens)."""
    return format(value.normalize(), "f")
