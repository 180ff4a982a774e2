"""node.core.money: the one place money is built (pure; no Django, no database)."""

from __future__ import annotations

from decimal import (
    ROUND_DOWN,
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    Decimal,
    getcontext,
    localcontext,
)

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.core.money import (
    ROUNDING,
    allocate,
    div_round,
    exact_add,
    exact_mul,
    quantize,
    round_to_multiple,
    sum_exact,
    to_decimal,
    to_money,
)

D = Decimal


def test_rounding_constant_is_half_even():
    assert ROUNDING == ROUND_HALF_EVEN


@pytest.mark.parametrize(
    "value, decimals, expected",
    [
        ("1.005", 2, "1.00"),  # tie -> even (0)
        ("1.015", 2, "1.02"),  # tie -> even (2)
        ("1.0151", 2, "1.02"),
        ("-1.005", 2, "-1.00"),
        ("2.5", 0, "2"),
        ("3.5", 0, "4"),
        (5, 2, "5.00"),
        (D("7"), 3, "7.000"),
        ("  12.345  ", 2, "12.34"),  # surrounding spaces are tolerated
        ("0.0000005", 6, "0.000000"),
        ("0.0000015", 6, "0.000002"),
    ],
)
def test_to_money_quantizes_half_even(value, decimals, expected):
    result = to_money(value, decimals)
    assert isinstance(result, Decimal)
    assert str(result) == expected


def test_to_money_default_is_two_decimals():
    assert str(to_money("10")) == "10.00"


@pytest.mark.parametrize("value", [1.5, 0.1, float("nan"), True, False])
def test_to_money_rejects_float_and_bool(value):
    with pytest.raises(TypeError):
        to_money(value)


@pytest.mark.parametrize("value", [None, [1], {"a": 1}, b"1"])
def test_to_money_rejects_other_types(value):
    with pytest.raises(TypeError):
        to_money(value)


@pytest.mark.parametrize("value", ["abc", "", "1,5", "NaN", "Infinity", "-inf", D("NaN"), D("Infinity")])
def test_to_money_rejects_malformed_or_non_finite(value):
    with pytest.raises(ValueError):
        to_money(value)


def test_to_decimal_is_exact_for_long_values():
    # 40 significant digits survive (the default context only has 28).
    assert to_decimal("1234567890.123456789012345678901234567890") == D("1234567890.123456789012345678901234567890")


def test_quantize_does_not_depend_on_the_thread_context():
    with localcontext() as ctx:
        ctx.prec = 3
        ctx.rounding = ROUND_DOWN
        assert quantize(D("123456.785"), 2) == D("123456.78")
        assert quantize(D("123456.795"), 2) == D("123456.80")
    assert getcontext().prec == 28


def test_div_round_is_exact_where_a_28_digit_quotient_would_double_round():
    # 0.135 - 1e-40 is just *below* the tie 0.135, so it rounds to 0.13; with the
    # default 28-digit context the subtraction itself already rounds back to
    # 0.135, which HALF_EVEN then rounds to 0.14. (Build it with exact_add.)
    below_tie = exact_add(D("0.135"), D("-1e-40"))
    assert below_tie != D("0.135")
    assert div_round(below_tie, 1, 2) == D("0.13")
    assert quantize(D("0.135") - D("1e-40"), 2) == D("0.14")  # the trap, for the record
    # A quotient: (0.27 - 2e-40) / 2 is below the tie 0.135 as well.
    assert div_round(exact_add(D("0.27"), D("-2e-40")), 2, 2) == D("0.13")
    assert div_round(1, 3, 5) == D("0.33333")
    assert div_round(2, 3, 0) == D("1")
    assert div_round(D("-2.5"), 1, 0) == D("-2")
    assert div_round(D("-3.5"), 1, 0) == D("-4")
    assert div_round(D("2.5"), 1, 0, ROUND_HALF_UP) == D("3")
    with pytest.raises(ZeroDivisionError):
        div_round(1, 0, 2)


def test_exact_mul_and_add_never_round():
    a = D("123456789012345678.123456789")
    b = D("987654321.987654321")
    expected = D(f"{123456789012345678123456789 * 987654321987654321}E-18")
    assert exact_mul(a, b) == expected
    assert a * b != expected  # the default 28-digit context would have rounded
    assert exact_add(D("1E+30"), D("1E-30")) == D("1000000000000000000000000000000.000000000000000000000000000001")
    assert sum_exact([D("0.1"), D("0.2"), 3]) == D("3.3")


@pytest.mark.parametrize(
    "amount, multiple, rounding, expected",
    [
        # Fineract LoanInstallmentMultiplesOfTest: 416.67 -> 417, 12.50 -> 12 (HALF_EVEN)
        ("416.67", 1, ROUND_HALF_EVEN, "417"),
        ("12.50", 1, ROUND_HALF_EVEN, "12"),
        ("13.50", 1, ROUND_HALF_EVEN, "14"),
        # 416.67 / 20 = 20.83 -> 21 -> 420; 12.5 / 20 = 0.625 -> 1 -> 20
        ("416.67", 20, ROUND_HALF_EVEN, "420"),
        ("12.5", 20, ROUND_HALF_EVEN, "20"),
        ("125", 10, ROUND_HALF_EVEN, "120"),  # 12.5 -> 12
        ("125", 10, ROUND_HALF_UP, "130"),  # a tie goes up
        ("1785.26", 10, ROUND_HALF_UP, "1790"),
        ("0.625", "0.05", ROUND_HALF_EVEN, "0.60"),  # 12.5 -> 12 -> 0.60
        ("0", 100, ROUND_HALF_EVEN, "0"),
        ("-12.5", 5, ROUND_HALF_EVEN, "-10"),  # -2.5 -> -2
    ],
)
def test_round_to_multiple(amount, multiple, rounding, expected):
    assert round_to_multiple(D(amount), multiple, rounding) == D(expected)


def test_round_to_multiple_rejects_non_positive_multiple():
    with pytest.raises(ValueError):
        round_to_multiple(D("10"), 0)
    with pytest.raises(ValueError):
        round_to_multiple(D("10"), -5)


def test_allocate_examples():
    assert allocate(D("100.00"), [1, 1, 1]) == [D("33.34"), D("33.33"), D("33.33")]
    # shares 3.333.. and 6.666..: the leftover unit goes to the larger remainder
    assert allocate(D("10"), [1, 2]) == [D("3"), D("7")]
    assert allocate(D("-10"), [1, 2]) == [D("-3"), D("-7")]
    # 5 cents over 6 equal parts: the first five get one cent each (ties -> earlier)
    assert allocate(D("0.05"), [1] * 6) == [D("0.01")] * 5 + [D("0.00")]
    assert allocate(D("10.00"), [0, 3, 1]) == [D("0.00"), D("7.50"), D("2.50")]
    assert allocate(D("1"), [D("0.5"), D("0.25")], decimals=2) == [D("0.67"), D("0.33")]


@pytest.mark.parametrize("ratios", [[], [0, 0], [-1, 2]])
def test_allocate_rejects_bad_ratios(ratios):
    with pytest.raises(ValueError):
        allocate(D("1.00"), ratios)


def test_allocate_rejects_amount_finer_than_unit():
    with pytest.raises(ValueError):
        allocate(D("1.005"), [1, 1], decimals=2)


def test_allocate_rejects_float_ratios():
    with pytest.raises(TypeError):
        allocate(D("1.00"), [0.5, 0.5])


@settings(max_examples=200, deadline=None)
@given(
    units=st.integers(min_value=-10**12, max_value=10**12),
    decimals=st.integers(min_value=0, max_value=4),
    ratios=st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=12).filter(lambda r: sum(r) > 0),
)
def test_allocate_properties(units, decimals, ratios):
    amount = D(units).scaleb(-decimals)
    parts = allocate(amount, ratios, decimals=decimals)
    assert len(parts) == len(ratios)
    assert sum_exact(parts) == amount  # sums exactly
    total_ratio = sum(ratios)
    unit = D(1).scaleb(-decimals)
    for part, ratio in zip(parts, ratios):
        assert part == quantize(part, decimals)  # whole units
        exact_share = amount * ratio / total_ratio
        assert abs(part - exact_share) < unit  # within one unit of the exact share
        if ratio == 0:
            assert part == 0


@settings(max_examples=200, deadline=None)
@given(
    value=st.decimals(min_value=-10**9, max_value=10**9, allow_nan=False, allow_infinity=False, places=6),
    decimals=st.integers(min_value=0, max_value=6),
)
def test_to_money_matches_decimal_quantize_half_even(value, decimals):
    expected = value.quantize(D(1).scaleb(-decimals), rounding=ROUND_HALF_EVEN)
    assert to_money(value, decimals) == expected
    assert to_money(str(value), decimals) == expected
