"""The pure repayment-schedule engine (node.loans.schedule) against Fineract.

Pure tests: no Django, no database. Four kinds of checks:

1. Oracles taken from Apache Fineract's own tests (expected values written by
   the Fineract developers for Fineract's engine): e2e feature
   ``fineract-e2e-tests-runner/.../features/LoanRepayment.feature`` scenarios
   RS01-RS07, ``ProgressiveEMICalculatorTest`` and
   ``integration-tests/.../LoanInstallmentMultiplesOfTest``.
2. Worked examples derived by hand from the rules (the arithmetic is in the
   comment above each one). Notation: mc(x) = x rounded to 12 significant
   digits HALF_EVEN (Fineract's MathContext), r2(x) = x rounded HALF_EVEN to
   2 places, "one_day(365)" = mc(mc(12/365)/100) = 0.000328767123288.
3. Input validation.
4. Hypothesis properties.
"""

from __future__ import annotations

import ast
import dataclasses
import datetime as dt
import json
import pathlib
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.loans.schedule import (
    ScheduleInput,
    ScheduleInputError,
    generate_schedule,
    parse_schedule_input,
    schedule_to_json,
)
from node.loans.schedule.arithmetic import CurrencyMoney
from node.loans.schedule.progressive import progressive_schedule, rate_factor

D = Decimal

BASE = {
    "principal": "1000",
    "annual_interest_rate": "12",
    "number_of_repayments": 3,
    "repayment_frequency": "MONTHS",
    "interest_method": "DECLINING_BALANCE",
    "amortization": "EQUAL_INSTALLMENTS",
    "disbursement_date": "2024-01-15",
}


def schedule(**overrides) -> dict:
    data = {**BASE, **overrides}
    return schedule_to_json(generate_schedule(parse_schedule_input(data)))


def repayments(result: dict) -> list[dict]:
    return [row for row in result["installments"] if row["number"] > 0]


def principal_interest(result: dict) -> list[tuple[str, str]]:
    return [(row["principal"], row["interest"]) for row in repayments(result)]


def errors_of(data) -> dict:
    with pytest.raises(ScheduleInputError) as info:
        parse_schedule_input(data)
    return info.value.errors


# ---------------------------------------------------------------------------
# 1. Oracles from Apache Fineract's own test suite
# ---------------------------------------------------------------------------

# LoanRepayment.feature, product LP1_* = EUR (2 decimals), installment amount in
# multiples of 1, days in year/month ACTUAL; 5000 at 12 % a year, 18 monthly
# repayments, disbursed 1 November 2022. Rows: balance, principal, interest, due.
# (In those scenarios the "interest free period" column is what the step
# definition sends as graceOnInterestPayment - LoanStepDef sets that field twice.)
RS_COMMON = {
    "principal": "5000",
    "annual_interest_rate": "12",
    "number_of_repayments": 18,
    "disbursement_date": "2022-11-01",
    "installment_in_multiples_of": 1,
}
RS_TABLES = {
    "RS01 FLAT same-as-period equal installments": (
        {"interest_method": "FLAT", "amortization": "EQUAL_INSTALLMENTS"},
        [("4722.00", "278.00", "50.00", "328.00")]
        + [(f"{4722 - 278 * k}.00", "278.00", "50.00", "328.00") for k in range(1, 17)]
        + [("0.00", "274.00", "50.00", "324.00")],
        ("5000.00", "900.00"),
    ),
    "RS02 declining same-as-period equal installments": (
        {},
        """4745.00 255.00 50.00 305.00 | 4487.45 257.55 47.45 305.00 | 4227.32 260.13 44.87 305.00 |
        3964.59 262.73 42.27 305.00 | 3699.24 265.35 39.65 305.00 | 3431.23 268.01 36.99 305.00 |
        3160.54 270.69 34.31 305.00 | 2887.15 273.39 31.61 305.00 | 2611.02 276.13 28.87 305.00 |
        2332.13 278.89 26.11 305.00 | 2050.45 281.68 23.32 305.00 | 1765.95 284.50 20.50 305.00 |
        1478.61 287.34 17.66 305.00 | 1188.40 290.21 14.79 305.00 | 895.28 293.12 11.88 305.00 |
        599.23 296.05 8.95 305.00 | 300.22 299.01 5.99 305.00 | 0.00 300.22 3.00 303.22""",
        ("5000.00", "488.22"),
    ),
    "RS03 declining daily equal installments": (
        {"interest_calculation_period": "DAILY"},
        """4744.32 255.68 49.32 305.00 | 4487.67 256.65 48.35 305.00 | 4228.41 259.26 45.74 305.00 |
        3962.33 266.08 38.92 305.00 | 3697.71 264.62 40.38 305.00 | 3429.18 268.53 36.47 305.00 |
        3159.13 270.05 34.95 305.00 | 2885.29 273.84 31.16 305.00 | 2609.70 275.59 29.41 305.00 |
        2331.30 278.40 26.60 305.00 | 2049.29 282.01 22.99 305.00 | 1765.18 284.11 20.89 305.00 |
        1477.59 287.59 17.41 305.00 | 1187.65 289.94 15.06 305.00 | 894.75 292.90 12.10 305.00 |
        598.28 296.47 8.53 305.00 | 299.38 298.90 6.10 305.00 | 0.00 299.38 2.95 302.33""",
        ("5000.00", "487.33"),
    ),
    "RS04 declining same-as-period equal principal": (
        {"amortization": "EQUAL_PRINCIPAL"},
        """4722.22 277.78 50.00 327.78 | 4444.44 277.78 47.22 325.00 | 4166.66 277.78 44.44 322.22 |
        3888.88 277.78 41.67 319.45 | 3611.10 277.78 38.89 316.67 | 3333.32 277.78 36.11 313.89 |
        3055.54 277.78 33.33 311.11 | 2777.76 277.78 30.56 308.34 | 2499.98 277.78 27.78 305.56 |
        2222.20 277.78 25.00 302.78 | 1944.42 277.78 22.22 300.00 | 1666.64 277.78 19.44 297.22 |
        1388.86 277.78 16.67 294.45 | 1111.08 277.78 13.89 291.67 | 833.30 277.78 11.11 288.89 |
        555.52 277.78 8.33 286.11 | 277.74 277.78 5.56 283.34 | 0.00 277.74 2.78 280.52""",
        ("5000.00", "475.00"),
    ),
    "RS05 declining equal installments, 3 periods principal grace": (
        {"grace_on_principal_periods": 3},
        """5000.00 0.00 50.00 50.00 | 5000.00 0.00 50.00 50.00 | 5000.00 0.00 50.00 50.00 |
        4689.00 311.00 50.00 361.00 | 4374.89 314.11 46.89 361.00 | 4057.64 317.25 43.75 361.00 |
        3737.22 320.42 40.58 361.00 | 3413.59 323.63 37.37 361.00 | 3086.73 326.86 34.14 361.00 |
        2756.60 330.13 30.87 361.00 | 2423.17 333.43 27.57 361.00 | 2086.40 336.77 24.23 361.00 |
        1746.26 340.14 20.86 361.00 | 1402.72 343.54 17.46 361.00 | 1055.75 346.97 14.03 361.00 |
        705.31 350.44 10.56 361.00 | 351.36 353.95 7.05 361.00 | 0.00 351.36 3.51 354.87""",
        ("5000.00", "558.87"),
    ),
    "RS06 declining equal installments, 6 periods principal grace": (
        {"grace_on_principal_periods": 6},
        """5000.00 0.00 50.00 50.00 | 5000.00 0.00 50.00 50.00 | 5000.00 0.00 50.00 50.00 |
        5000.00 0.00 50.00 50.00 | 5000.00 0.00 50.00 50.00 | 5000.00 0.00 50.00 50.00 |
        4606.00 394.00 50.00 444.00 | 4208.06 397.94 46.06 444.00 | 3806.14 401.92 42.08 444.00 |
        3400.20 405.94 38.06 444.00 | 2990.20 410.00 34.00 444.00 | 2576.10 414.10 29.90 444.00 |
        2157.86 418.24 25.76 444.00 | 1735.44 422.42 21.58 444.00 | 1308.79 426.65 17.35 444.00 |
        877.88 430.91 13.09 444.00 | 442.66 435.22 8.78 444.00 | 0.00 442.66 4.43 447.09""",
        ("5000.00", "631.09"),
    ),
    "RS07 declining equal installments, 6 principal grace + 3 interest payment grace": (
        {"grace_on_principal_periods": 6, "grace_on_interest_payment_periods": 3},
        """5000.00 0.00 0.00 0.00 | 5000.00 0.00 0.00 0.00 | 5000.00 0.00 0.00 0.00 |
        5000.00 0.00 200.00 200.00 | 5000.00 0.00 50.00 50.00 | 5000.00 0.00 50.00 50.00 |
        4606.00 394.00 50.00 444.00 | 4208.06 397.94 46.06 444.00 | 3806.14 401.92 42.08 444.00 |
        3400.20 405.94 38.06 444.00 | 2990.20 410.00 34.00 444.00 | 2576.10 414.10 29.90 444.00 |
        2157.86 418.24 25.76 444.00 | 1735.44 422.42 21.58 444.00 | 1308.79 426.65 17.35 444.00 |
        877.88 430.91 13.09 444.00 | 442.66 435.22 8.78 444.00 | 0.00 442.66 4.43 447.09""",
        ("5000.00", "631.09"),
    ),
}


def _table_rows(table):
    if isinstance(table, list):
        return table
    return [tuple(cell.split()) for cell in table.replace("\n", " ").split("|")]


@pytest.mark.parametrize("name", sorted(RS_TABLES))
def test_fineract_e2e_repayment_schedules(name):
    overrides, table, (total_principal, total_interest) = RS_TABLES[name]
    result = schedule(**{**RS_COMMON, **overrides})
    expected = _table_rows(table)
    got = [(r["principal_balance"], r["principal"], r["interest"], r["total"]) for r in repayments(result)]
    assert got == expected
    assert [r["due_date"] for r in repayments(result)][:3] == ["2022-12-01", "2023-01-01", "2023-02-01"]
    assert [r["days"] for r in repayments(result)][:4] == [30, 31, 31, 28]
    assert (result["totals"]["principal"], result["totals"]["interest"]) == (total_principal, total_interest)


# LoanInstallmentMultiplesOfTest: 1250, 12 % a year, monthly, installment
# amount in multiples of 1 / 20, FLAT (principal, interest, total per row).
@pytest.mark.parametrize(
    "multiple, expected",
    [
        (1, [("416.50", "12.50", "429.00"), ("416.50", "12.50", "429.00"), ("417.00", "12.50", "429.50")]),
        (20, [("427.50", "12.50", "440.00"), ("427.50", "12.50", "440.00"), ("395.00", "12.50", "407.50")]),
    ],
)
def test_fineract_flat_installment_multiples(multiple, expected):
    # Derivation (multiple 1): principal r2(1250/3) = 416.67, interest
    # 1250*0.01 = 12.50; principal = round1(416.67)=417 + round1(12.50)=12
    # (HALF_EVEN) - 12.50 = 416.50 -> installment 429.00; last 1250-833 = 417.
    # Multiple 20: 416.67/20 = 20.83 -> 21 -> 420; 12.5/20 = 0.625 -> 1 -> 20;
    # 420 + 20 - 12.50 = 427.50 (-> 440.00); last 1250 - 855 = 395.
    result = schedule(
        principal="1250",
        interest_method="FLAT",
        disbursement_date="2023-01-01",
        installment_in_multiples_of=multiple,
    )
    assert [(r["principal"], r["interest"], r["total"]) for r in repayments(result)] == expected


@pytest.mark.parametrize("method", ["FLAT", "DECLINING_BALANCE"])
def test_fineract_zero_interest_installment_multiples(method):
    # LoanInstallmentMultiplesOfTest: 1250 over 4 months, no interest, multiples
    # of 1: 1250/4 = 312.5 -> 312 (HALF_EVEN) three times, last 1250-936 = 314.
    result = schedule(
        principal="1250",
        annual_interest_rate="0",
        number_of_repayments=4,
        interest_method=method,
        disbursement_date="2023-01-01",
        installment_in_multiples_of=1,
    )
    assert [r["total"] for r in repayments(result)] == ["312.00", "312.00", "312.00", "314.00"]


# ProgressiveEMICalculatorTest (100 disbursed on 2024-01-01, 2 decimals):
# (emi, interest, principal, balance) per period.
PROGRESSIVE_ORACLES = {
    "9.4822% 360/30 monthly": (
        {"annual_interest_rate": "9.4822", "days_in_year": "360", "days_in_month": "30"},
        """17.13 0.79 16.34 83.66 | 17.13 0.66 16.47 67.19 | 17.13 0.53 16.60 50.59 |
        17.13 0.40 16.73 33.86 | 17.13 0.27 16.86 17.00 | 17.13 0.13 17.00 0.00""",
    ),
    "15.678% 365/actual monthly (EMI re-adjustment rejected)": (
        {"annual_interest_rate": "15.678", "days_in_year": "365", "days_in_month": "ACTUAL"},
        """17.43 1.33 16.10 83.90 | 17.43 1.05 16.38 67.52 | 17.43 0.90 16.53 50.99 |
        17.43 0.66 16.77 34.22 | 17.43 0.46 16.97 17.25 | 17.47 0.22 17.25 0.00""",
    ),
    "9.4822% 364 weekly": (
        {"annual_interest_rate": "9.4822", "days_in_year": "364", "repayment_frequency": "WEEKS"},
        """16.77 0.18 16.59 83.41 | 16.77 0.15 16.62 66.79 | 16.77 0.12 16.65 50.14 |
        16.77 0.09 16.68 33.46 | 16.77 0.06 16.71 16.75 | 16.78 0.03 16.75 0.00""",
    ),
    "9.4822% 364 every 2 weeks": (
        {
            "annual_interest_rate": "9.4822",
            "days_in_year": "364",
            "repayment_frequency": "WEEKS",
            "repayment_every": 2,
            "number_of_repayments": 3,
        },
        "33.57 0.36 33.21 66.79 | 33.57 0.24 33.33 33.46 | 33.58 0.12 33.46 0.00",
    ),
    "9.4822% 360 every 15 days": (
        {"annual_interest_rate": "9.4822", "days_in_year": "360", "repayment_frequency": "DAYS", "repayment_every": 15},
        """16.90 0.40 16.50 83.50 | 16.90 0.33 16.57 66.93 | 16.90 0.26 16.64 50.29 |
        16.90 0.20 16.70 33.59 | 16.90 0.13 16.77 16.82 | 16.89 0.07 16.82 0.00""",
    ),
    "no interest, 1000 over 4 months": (
        {"annual_interest_rate": "0", "principal": "1000", "number_of_repayments": 4},
        "250.00 0.00 250.00 750.00 | 250.00 0.00 250.00 500.00 | 250.00 0.00 250.00 250.00 | 250.00 0.00 250.00 0.00",
    ),
}


@pytest.mark.parametrize("name", sorted(PROGRESSIVE_ORACLES))
def test_fineract_progressive_emi_calculator(name):
    overrides, table = PROGRESSIVE_ORACLES[name]
    data = {
        "principal": "100",
        "number_of_repayments": 6,
        "disbursement_date": "2024-01-01",
        "schedule_type": "PROGRESSIVE",
        **overrides,
    }
    result = schedule(**data)
    got = [(r["total"], r["interest"], r["principal"], r["principal_balance"]) for r in repayments(result)]
    assert got == _table_rows(table)


def test_fineract_progressive_seven_percent_twelve_months():
    # ProgressiveEMICalculatorTest.testEMICalculation_performance: EMI 8.65 for
    # the first 11 periods, balance 0 at the end.
    result = schedule(
        principal="100",
        annual_interest_rate="7",
        number_of_repayments=12,
        days_in_year="360",
        days_in_month="30",
        disbursement_date="2024-01-01",
        schedule_type="PROGRESSIVE",
    )
    rows = repayments(result)
    assert {r["total"] for r in rows[:-1]} == {"8.65"}
    assert rows[-1]["principal_balance"] == "0.00"


def test_fineract_progressive_actual_actual_irregular_periods():
    # ProgressiveEMICalculatorTest ..._dayInYearsActual_daysInMonthActual_repayEvery1Month,
    # whose periods are irregular (so they are fed straight to the calculator).
    periods = [
        (dt.date(2023, 12, 12), dt.date(2024, 1, 12)),
        (dt.date(2024, 1, 12), dt.date(2024, 2, 12)),
        (dt.date(2024, 2, 12), dt.date(2024, 3, 1)),
        (dt.date(2024, 3, 12), dt.date(2024, 4, 1)),
        (dt.date(2024, 4, 12), dt.date(2024, 5, 1)),
        (dt.date(2024, 5, 12), dt.date(2024, 6, 1)),
    ]
    factors = [rate_factor(D("9.4822"), "MONTHS", 1, "ACTUAL", "ACTUAL", a, b, a, b) for a, b in periods]
    # Fineract's expected factors, setScale(12): the first crosses the year end.
    assert [f.quantize(D("1E-12")) for f in factors] == [
        D("0.008044857759"),
        D("0.008031371585"),
        D("0.007513218579"),
        D("0.008031371585"),
        D("0.007772295082"),
        D("0.008031371585"),
    ]
    rows = progressive_schedule(CurrencyMoney(2), D("100"), factors, None)
    assert [tuple(str(x) for x in row) for row in rows] == [
        ("17.13", "0.80", "16.33", "83.67"),
        ("17.13", "0.67", "16.46", "67.21"),
        ("17.13", "0.50", "16.63", "50.58"),
        ("17.13", "0.41", "16.72", "33.86"),
        ("17.13", "0.26", "16.87", "16.99"),
        ("17.13", "0.14", "16.99", "0.00"),
    ]


# ---------------------------------------------------------------------------
# 2. Hand-derived worked examples
# ---------------------------------------------------------------------------

# Every interest method x amortization x interest period x frequency.
# P = 1000, 12 % a year, 3 repayments, disbursed 2024-01-15.
# Frequencies: MONTHS every 1 (due 02-15, 03-15, 04-15: 31, 29, 31 days),
# WEEKS every 2 (14 days each), DAYS every 30 (30 days each).
# Rows are (principal, interest).
COMBOS = [
    # FLAT, SAME_AS, MONTHS: total = r2(1000 * mc(mc(12/12)/100)=0.01 * 3) = 30.00;
    # per period r2(30/3) = 10.00 (last 30 - 20 = 10.00); principal r2(1000/3)
    # = 333.33, last 1000 - 666.66 = 333.34. Amortization is irrelevant without grace.
    ("FLAT", "EQUAL_INSTALLMENTS", "SAME_AS_REPAYMENT_PERIOD", "MONTHS", 1,
     [("333.33", "10.00"), ("333.33", "10.00"), ("333.34", "10.00")]),
    ("FLAT", "EQUAL_PRINCIPAL", "SAME_AS_REPAYMENT_PERIOD", "MONTHS", 1,
     [("333.33", "10.00"), ("333.33", "10.00"), ("333.34", "10.00")]),
    # FLAT, DAILY, MONTHS: term 91 days (01-15 -> 04-15); one_day(365) x 91 =
    # 0.029917808219208; x1000 = 29.9178.. -> 29.92; r2(29.92/3) = 9.97; last
    # 29.92 - 19.94 = 9.98.
    ("FLAT", "EQUAL_INSTALLMENTS", "DAILY", "MONTHS", 1,
     [("333.33", "9.97"), ("333.33", "9.97"), ("333.34", "9.98")]),
    ("FLAT", "EQUAL_PRINCIPAL", "DAILY", "MONTHS", 1,
     [("333.33", "9.97"), ("333.33", "9.97"), ("333.34", "9.98")]),
    # FLAT, SAME_AS, WEEKS x2: unit = mc(mc(12/52)/100) = 0.00230769230769; term
    # 3 x 2 = 6 weeks; 1000 x 0.00230769230769 x 6 = 13.846.. -> 13.85;
    # r2(13.85/3) = 4.62; last 13.85 - 9.24 = 4.61.
    ("FLAT", "EQUAL_INSTALLMENTS", "SAME_AS_REPAYMENT_PERIOD", "WEEKS", 2,
     [("333.33", "4.62"), ("333.33", "4.62"), ("333.34", "4.61")]),
    ("FLAT", "EQUAL_PRINCIPAL", "SAME_AS_REPAYMENT_PERIOD", "WEEKS", 2,
     [("333.33", "4.62"), ("333.33", "4.62"), ("333.34", "4.61")]),
    # FLAT, DAILY, WEEKS x2: 42 days x one_day(365) = 0.013808219178096 ->
    # 13.81; r2(13.81/3) = 4.60; last 13.81 - 9.20 = 4.61.
    ("FLAT", "EQUAL_INSTALLMENTS", "DAILY", "WEEKS", 2,
     [("333.33", "4.60"), ("333.33", "4.60"), ("333.34", "4.61")]),
    ("FLAT", "EQUAL_PRINCIPAL", "DAILY", "WEEKS", 2,
     [("333.33", "4.60"), ("333.33", "4.60"), ("333.34", "4.61")]),
    # FLAT, SAME_AS, DAYS x30: periods per year 365 (days in year ACTUAL);
    # 0.000328767123288 x 90 days = 0.02958904109592 -> 29.59; r2(29.59/3) =
    # 9.86; last 29.59 - 19.72 = 9.87. DAILY gives the same (90 days, 365).
    ("FLAT", "EQUAL_INSTALLMENTS", "SAME_AS_REPAYMENT_PERIOD", "DAYS", 30,
     [("333.33", "9.86"), ("333.33", "9.86"), ("333.34", "9.87")]),
    ("FLAT", "EQUAL_PRINCIPAL", "SAME_AS_REPAYMENT_PERIOD", "DAYS", 30,
     [("333.33", "9.86"), ("333.33", "9.86"), ("333.34", "9.87")]),
    ("FLAT", "EQUAL_INSTALLMENTS", "DAILY", "DAYS", 30,
     [("333.33", "9.86"), ("333.33", "9.86"), ("333.34", "9.87")]),
    ("FLAT", "EQUAL_PRINCIPAL", "DAILY", "DAYS", 30,
     [("333.33", "9.86"), ("333.33", "9.86"), ("333.34", "9.87")]),
    # DECLINING, EQUAL_INSTALLMENTS, SAME_AS, MONTHS: r = 0.01;
    # EMI = 1000 x 0.01 x 1.01^3 / (1.01^3 - 1) = 10.30301/0.030301 = 340.0221 -> 340.02.
    # 1: 1000 x 0.01 = 10.00, 340.02 - 10 = 330.02, bal 669.98
    # 2: 669.98 x 0.01 = 6.6998 -> 6.70, 333.32, bal 336.66
    # 3: 336.66 x 0.01 = 3.3666 -> 3.37, last principal = 336.66
    ("DECLINING_BALANCE", "EQUAL_INSTALLMENTS", "SAME_AS_REPAYMENT_PERIOD", "MONTHS", 1,
     [("330.02", "10.00"), ("333.32", "6.70"), ("336.66", "3.37")]),
    # DECLINING, EQUAL_PRINCIPAL, SAME_AS, MONTHS: principal r2(1000/3) = 333.33;
    # interest 10.00; 666.67 x 0.01 = 6.6667 -> 6.67; 333.34 x 0.01 -> 3.33.
    ("DECLINING_BALANCE", "EQUAL_PRINCIPAL", "SAME_AS_REPAYMENT_PERIOD", "MONTHS", 1,
     [("333.33", "10.00"), ("333.33", "6.67"), ("333.34", "3.33")]),
    # DECLINING, EQUAL_INSTALLMENTS, DAILY, MONTHS: EMI rate uses 30-day months:
    # one_day(365) x 30 = 0.00986301369864 -> PMT = 339.930187 -> 339.93.
    # Period rates: 31 days -> mc(0.000328767123288 x 31) = 0.0101917808219,
    # 29 days -> 0.00953424657535.
    # 1: 1000 x 0.0101917808219 = 10.1918 -> 10.19, 329.74, bal 670.26
    # 2: 670.26 x 0.00953424657535 = 6.3904 -> 6.39, 333.54, bal 336.72
    # 3: 336.72 x 0.0101917808219 = 3.4318 -> 3.43, last 336.72
    ("DECLINING_BALANCE", "EQUAL_INSTALLMENTS", "DAILY", "MONTHS", 1,
     [("329.74", "10.19"), ("333.54", "6.39"), ("336.72", "3.43")]),
    # DECLINING, EQUAL_PRINCIPAL, DAILY, MONTHS: 10.19; 666.67 x 0.00953424657535
    # = 6.3562 -> 6.36; 333.34 x 0.0101917808219 = 3.3973 -> 3.40.
    ("DECLINING_BALANCE", "EQUAL_PRINCIPAL", "DAILY", "MONTHS", 1,
     [("333.33", "10.19"), ("333.33", "6.36"), ("333.34", "3.40")]),
    # DECLINING, EQUAL_INSTALLMENTS, SAME_AS, WEEKS x2: r = 0.00230769230769 x 2 =
    # 0.00461538461538; PMT = 336.414979 -> 336.41.
    # 1: 4.6154 -> 4.62, 331.79, bal 668.21; 2: 3.0840 -> 3.08, 333.33, bal 334.88;
    # 3: 1.5456 -> 1.55, last 334.88.
    ("DECLINING_BALANCE", "EQUAL_INSTALLMENTS", "SAME_AS_REPAYMENT_PERIOD", "WEEKS", 2,
     [("331.79", "4.62"), ("333.33", "3.08"), ("334.88", "1.55")]),
    # ... EQUAL_PRINCIPAL: 4.62; 666.67 x r = 3.0769 -> 3.08; 333.34 x r = 1.5385 -> 1.54.
    ("DECLINING_BALANCE", "EQUAL_PRINCIPAL", "SAME_AS_REPAYMENT_PERIOD", "WEEKS", 2,
     [("333.33", "4.62"), ("333.33", "3.08"), ("333.34", "1.54")]),
    # DECLINING, EQUAL_INSTALLMENTS, DAILY, WEEKS x2: r = mc(0.000328767123288 x 14)
    # = 0.00460273972603 (also the EMI rate); PMT = 336.406523 -> 336.41.
    # 1: 4.6027 -> 4.60, 331.81, bal 668.19; 2: 3.0755 -> 3.08, 333.33, bal 334.86;
    # 3: 1.5413 -> 1.54, last 334.86.
    ("DECLINING_BALANCE", "EQUAL_INSTALLMENTS", "DAILY", "WEEKS", 2,
     [("331.81", "4.60"), ("333.33", "3.08"), ("334.86", "1.54")]),
    # ... EQUAL_PRINCIPAL: 4.60; 666.67 x r = 3.0685 -> 3.07; 333.34 x r = 1.5343 -> 1.53.
    ("DECLINING_BALANCE", "EQUAL_PRINCIPAL", "DAILY", "WEEKS", 2,
     [("333.33", "4.60"), ("333.33", "3.07"), ("333.34", "1.53")]),
    # DECLINING, EQUAL_INSTALLMENTS, SAME_AS, DAYS x30: 365 periods a year,
    # r = 0.000328767123288 x 30 = 0.00986301369864; PMT = 339.930187 -> 339.93.
    # 1: 9.8630 -> 9.86, 330.07, bal 669.93; 2: 6.6075 -> 6.61, 333.32, bal 336.61;
    # 3: 3.3200 -> 3.32, last 336.61. DAILY: the same rate (30 actual days).
    ("DECLINING_BALANCE", "EQUAL_INSTALLMENTS", "SAME_AS_REPAYMENT_PERIOD", "DAYS", 30,
     [("330.07", "9.86"), ("333.32", "6.61"), ("336.61", "3.32")]),
    ("DECLINING_BALANCE", "EQUAL_INSTALLMENTS", "DAILY", "DAYS", 30,
     [("330.07", "9.86"), ("333.32", "6.61"), ("336.61", "3.32")]),
    # ... EQUAL_PRINCIPAL: 9.86; 666.67 x r = 6.5754 -> 6.58; 333.34 x r = 3.2877 -> 3.29.
    ("DECLINING_BALANCE", "EQUAL_PRINCIPAL", "SAME_AS_REPAYMENT_PERIOD", "DAYS", 30,
     [("333.33", "9.86"), ("333.33", "6.58"), ("333.34", "3.29")]),
    ("DECLINING_BALANCE", "EQUAL_PRINCIPAL", "DAILY", "DAYS", 30,
     [("333.33", "9.86"), ("333.33", "6.58"), ("333.34", "3.29")]),
]


@pytest.mark.parametrize(
    "method, amortization, period, frequency, every, expected",
    COMBOS,
    ids=[f"{c[0][:4]}-{c[1][6:]}-{c[2][:5]}-{c[3]}" for c in COMBOS],
)
def test_method_amortization_period_frequency(method, amortization, period, frequency, every, expected):
    result = schedule(
        interest_method=method,
        amortization=amortization,
        interest_calculation_period=period,
        repayment_frequency=frequency,
        repayment_every=every,
    )
    assert principal_interest(result) == expected
    rows = repayments(result)
    assert rows[-1]["principal_balance"] == "0.00"
    assert result["totals"]["principal"] == "1000.00"


def test_due_dates_and_days_per_frequency():
    monthly = repayments(schedule())
    assert [(r["due_date"], r["days"]) for r in monthly] == [("2024-02-15", 31), ("2024-03-15", 29), ("2024-04-15", 31)]
    weekly = repayments(schedule(repayment_frequency="WEEKS", repayment_every=2))
    assert [(r["due_date"], r["days"]) for r in weekly] == [("2024-01-29", 14), ("2024-02-12", 14), ("2024-02-26", 14)]
    daily = repayments(schedule(repayment_frequency="DAYS", repayment_every=30))
    assert [(r["due_date"], r["days"]) for r in daily] == [("2024-02-14", 30), ("2024-03-15", 30), ("2024-04-14", 30)]


# Grace periods: P = 1000, 12 % a year (r = 0.01 a month), 4 monthly
# repayments from 2023-03-01. Rows are (principal, interest).
GRACES = [
    # FLAT EI, principal grace 1: principal r2(1000/(4-1)) = 333.33 from period 2,
    # last 1000 - 666.66 = 333.34; interest total 1000 x 0.01 x 4 = 40, 10.00 each.
    ("FLAT", "EQUAL_INSTALLMENTS", {"grace_on_principal_periods": 1},
     [("0.00", "10.00"), ("333.33", "10.00"), ("333.33", "10.00"), ("333.34", "10.00")]),
    # FLAT EI, interest payment grace 2: periods 1-2 carry no interest, the 40.00
    # are averaged over the 4 - 2 = 2 others: 20.00 each.
    ("FLAT", "EQUAL_INSTALLMENTS", {"grace_on_interest_payment_periods": 2},
     [("250.00", "0.00"), ("250.00", "0.00"), ("250.00", "20.00"), ("250.00", "20.00")]),
    # FLAT EI, interest charged grace 1: due = 40 - 10 x 1 = 30; 30 / (4 - 1) = 10.00
    # in periods 2-4, period 1 interest free.
    ("FLAT", "EQUAL_INSTALLMENTS", {"grace_on_interest_charged_periods": 1},
     [("250.00", "0.00"), ("250.00", "10.00"), ("250.00", "10.00"), ("250.00", "10.00")]),
    ("FLAT", "EQUAL_PRINCIPAL", {"grace_on_principal_periods": 1},
     [("0.00", "10.00"), ("333.33", "10.00"), ("333.33", "10.00"), ("333.34", "10.00")]),
    # FLAT EP, interest payment grace 2: 10.00 per period; periods 1-2 defer it,
    # period 3 collects 10 + 10 + 10 = 30.00.
    ("FLAT", "EQUAL_PRINCIPAL", {"grace_on_interest_payment_periods": 2},
     [("250.00", "0.00"), ("250.00", "0.00"), ("250.00", "30.00"), ("250.00", "10.00")]),
    ("FLAT", "EQUAL_PRINCIPAL", {"grace_on_interest_charged_periods": 1},
     [("250.00", "0.00"), ("250.00", "10.00"), ("250.00", "10.00"), ("250.00", "10.00")]),
    # FLAT EP, payment grace 2 + charged grace 1 (Fineract quirk kept): due 30;
    # periods 1-2 defer 10 each (payment grace wins over interest-free), period 3
    # collects 30, period 4 (last) is cut to 30 - 30 = 0.
    ("FLAT", "EQUAL_PRINCIPAL", {"grace_on_interest_payment_periods": 2, "grace_on_interest_charged_periods": 1},
     [("250.00", "0.00"), ("250.00", "0.00"), ("250.00", "30.00"), ("250.00", "0.00")]),
    # DECLINING EI, principal grace 1: EMI = PMT(0.01, 4 - 1, 1000) = 340.02;
    # 1: interest only 10.00; 2: 10.00 / 330.02 -> 669.98; 3: 6.70 / 333.32 ->
    # 336.66; 4: 3.37 / 336.66.
    ("DECLINING_BALANCE", "EQUAL_INSTALLMENTS", {"grace_on_principal_periods": 1},
     [("0.00", "10.00"), ("330.02", "10.00"), ("333.32", "6.70"), ("336.66", "3.37")]),
    # DECLINING EI, interest payment grace 2: EMI = PMT(0.01, 4, 1000) = 256.28;
    # 1: interest 10.00 deferred, principal 256.28 - 10 = 246.28 -> 753.72;
    # 2: 7.5372 -> 7.54 deferred, principal 248.74 -> 504.98;
    # 3: 5.0498 -> 5.05 + 17.54 deferred = 22.59, principal 256.28 - 5.05 = 251.23 -> 253.75;
    # 4: 2.5375 -> 2.54, last principal 253.75.
    ("DECLINING_BALANCE", "EQUAL_INSTALLMENTS", {"grace_on_interest_payment_periods": 2},
     [("246.28", "0.00"), ("248.74", "0.00"), ("251.23", "22.59"), ("253.75", "2.54")]),
    # DECLINING EI, interest charged grace 1: EMI 256.28; 1: no interest, principal
    # 256.28 -> 743.72; 2: 7.4372 -> 7.44, 248.84 -> 494.88; 3: 4.9488 -> 4.95,
    # 251.33 -> 243.55; 4: 2.4355 -> 2.44, EMI - 2.44 = 253.84 overpays by 10.29
    # and is cut to the outstanding 243.55.
    ("DECLINING_BALANCE", "EQUAL_INSTALLMENTS", {"grace_on_interest_charged_periods": 1},
     [("256.28", "0.00"), ("248.84", "7.44"), ("251.33", "4.95"), ("243.55", "2.44")]),
    # DECLINING EP, principal grace 1: principal r2(1000/3) = 333.33; interest
    # 10.00, 10.00, 666.67 x 0.01 -> 6.67, 333.34 x 0.01 -> 3.33.
    ("DECLINING_BALANCE", "EQUAL_PRINCIPAL", {"grace_on_principal_periods": 1},
     [("0.00", "10.00"), ("333.33", "10.00"), ("333.33", "6.67"), ("333.34", "3.33")]),
    # DECLINING EP, interest payment grace 2: 10.00 and 7.50 deferred; period 3:
    # 5.00 + 17.50 = 22.50; period 4: 2.50.
    ("DECLINING_BALANCE", "EQUAL_PRINCIPAL", {"grace_on_interest_payment_periods": 2},
     [("250.00", "0.00"), ("250.00", "0.00"), ("250.00", "22.50"), ("250.00", "2.50")]),
    # DECLINING EP, interest charged grace 1: period 1 interest free; 7.50, 5.00, 2.50.
    ("DECLINING_BALANCE", "EQUAL_PRINCIPAL", {"grace_on_interest_charged_periods": 1},
     [("250.00", "0.00"), ("250.00", "7.50"), ("250.00", "5.00"), ("250.00", "2.50")]),
]


@pytest.mark.parametrize(
    "method, amortization, graces, expected",
    GRACES,
    ids=[f"{g[0][:4]}-{g[1][6:]}-{'+'.join(k[9:-8] for k in g[2])}" for g in GRACES],
)
def test_graces(method, amortization, graces, expected):
    result = schedule(
        interest_method=method,
        amortization=amortization,
        number_of_repayments=4,
        disbursement_date="2023-03-01",
        **graces,
    )
    assert principal_interest(result) == expected
    assert repayments(result)[-1]["principal_balance"] == "0.00"


def test_installment_multiple_rounds_the_emi():
    # EMI = PMT(0.01, 4, 1000) = 256.28; /100 = 2.5628 -> 3 (HALF_EVEN) -> 300.00.
    # 1: 10.00 / 290.00 -> 710.00; 2: 7.10 / 292.90 -> 417.10;
    # 3: 4.171 -> 4.17 / 295.83 -> 121.27; 4: 1.2127 -> 1.21 / last 121.27 (122.48).
    result = schedule(number_of_repayments=4, disbursement_date="2023-03-01", installment_in_multiples_of=100)
    assert [(r["principal"], r["interest"], r["total"]) for r in repayments(result)] == [
        ("290.00", "10.00", "300.00"),
        ("292.90", "7.10", "300.00"),
        ("295.83", "4.17", "300.00"),
        ("121.27", "1.21", "122.48"),
    ]


def test_installment_multiple_does_not_touch_equal_principal():
    # Equal-principal principal is not rounded to the multiple: 250.00 each,
    # interest 10.00, 7.50, 5.00, 2.50 exactly as without a multiple.
    plain = schedule(number_of_repayments=4, amortization="EQUAL_PRINCIPAL")
    rounded = schedule(number_of_repayments=4, amortization="EQUAL_PRINCIPAL", installment_in_multiples_of=100)
    assert principal_interest(rounded) == principal_interest(plain)


def test_installment_multiple_too_large_is_refused():
    # EMI 256.28 / 1000 = 0.256 -> 0: an installment of 0 cannot pay the interest
    # (Fineract: "EMI amount must be greater than ...").
    with pytest.raises(ScheduleInputError) as info:
        schedule(number_of_repayments=4, installment_in_multiples_of=1000)
    assert "non_field_errors" in info.value.errors


def test_zero_decimal_currency_without_multiple():
    # LSL-like amounts in whole units: 10000 at 24 % (r = 0.02), 3 months.
    # EMI = PMT(0.02, 3, 10000) = 3467.5467 -> 3468. 1: 200 / 3268 -> 6732;
    # 2: 134.64 -> 135 / 3333 -> 3399; 3: 67.98 -> 68 / last 3399 (3467).
    result = schedule(principal="10000", annual_interest_rate="24", disbursement_date="2023-03-01", currency_decimals=0)
    assert [(r["principal"], r["interest"], r["total"], r["principal_balance"]) for r in repayments(result)] == [
        ("3268", "200", "3468", "6732"),
        ("3333", "135", "3468", "3399"),
        ("3399", "68", "3467", "0"),
    ]
    assert result["totals"] == {"principal": "10000", "interest": "403", "fees": "0", "penalties": "0", "total": "10403"}


def test_zero_decimal_currency_in_multiples_of_ten_declining():
    # 10000 at 24 % (0.02), 6 months, currency in multiples of 10 (0 decimals):
    # every Money is rounded to the nearest 10, a tie going up.
    # EMI raw 1785.258 -> nearest 10 = 1790 (5.26 below vs 4.74 above).
    # 1: 200 -> 200; principal 1590; bal 8410
    # 2: 8410 x 0.02 = 168.2 -> 168 (0 dp) -> 170; principal 1620; bal 6790
    # 3: 135.8 -> 136 -> 140; 1650; bal 5140
    # 4: 102.8 -> 103 -> 100; 1690; bal 3450
    # 5: 69 -> 70; 1720; bal 1730
    # 6: 34.6 -> 35 -> 40; last principal 1730 (total 1770)
    result = schedule(
        principal="10000",
        annual_interest_rate="24",
        number_of_repayments=6,
        disbursement_date="2023-01-01",
        currency_decimals=0,
        currency_in_multiples_of=10,
    )
    assert [(r["principal"], r["interest"], r["total"]) for r in repayments(result)] == [
        ("1590", "200", "1790"),
        ("1620", "170", "1790"),
        ("1650", "140", "1790"),
        ("1690", "100", "1790"),
        ("1720", "70", "1790"),
        ("1730", "40", "1770"),
    ]


def test_zero_decimal_currency_in_multiples_of_ten_flat():
    # FLAT 25 %: unit = mc(mc(25/12)/100) = 0.0208333333333; x 3 = 0.0624999999999;
    # 10000 x that = 624.999999999 -> 625 (0 dp) -> 630 (tie goes up);
    # per period 630/3 = 210; principal 10000/3 = 3333.33 -> 3333 -> 3330;
    # last principal 10000 - 6660 = 3340.
    result = schedule(
        principal="10000",
        annual_interest_rate="25",
        interest_method="FLAT",
        disbursement_date="2023-03-01",
        currency_decimals=0,
        currency_in_multiples_of=10,
    )
    assert [(r["principal"], r["interest"]) for r in repayments(result)] == [
        ("3330", "210"),
        ("3330", "210"),
        ("3340", "210"),
    ]


def test_currency_multiple_ignored_with_decimals():
    # Fineract applies inMultiplesOf only to 0-decimal currencies.
    assert schedule(currency_in_multiples_of=10) == schedule()


@pytest.mark.parametrize(
    "disbursed, expected",
    [
        ("2024-01-31", ["2024-02-29", "2024-03-31", "2024-04-30", "2024-05-31"]),
        ("2023-01-31", ["2023-02-28", "2023-03-31", "2023-04-30", "2023-05-31"]),
        ("2023-01-30", ["2023-02-28", "2023-03-30", "2023-04-30", "2023-05-30"]),
        ("2024-02-29", ["2024-03-29", "2024-04-29", "2024-05-29", "2024-06-29"]),
        ("2023-12-31", ["2024-01-31", "2024-02-29", "2024-03-31", "2024-04-30"]),
    ],
)
def test_month_end_due_dates_are_clamped_from_the_disbursement_date(disbursed, expected):
    result = schedule(disbursement_date=disbursed, number_of_repayments=4)
    assert [r["due_date"] for r in repayments(result)] == expected


def test_month_end_every_two_months():
    result = schedule(disbursement_date="2023-12-31", number_of_repayments=3, repayment_every=2)
    assert [(r["due_date"], r["days"]) for r in repayments(result)] == [
        ("2024-02-29", 60),
        ("2024-04-30", 61),
        ("2024-06-30", 61),
    ]


@pytest.mark.parametrize(
    "days_in_year, expected",
    [
        # 1000, 12 %, DAILY, 2 monthly periods from 2023-03-01 (31 and 30 days), EP:
        # 360: one_day = mc(mc(12/360)/100) = 0.000333333333333;
        #      x31 -> 0.0103333333333 x 1000 = 10.33; x30 -> 0.00999999999999 x 500 = 4.999.. -> 5.00
        ("360", [("500.00", "10.33"), ("500.00", "5.00")]),
        # 364: one_day = 0.00032967032967; x31 -> 0.0102197802198 -> 10.22;
        #      x30 -> 0.0098901098901 x 500 = 4.945 -> 4.95
        ("364", [("500.00", "10.22"), ("500.00", "4.95")]),
        # 365: one_day = 0.000328767123288; x31 -> 0.0101917808219 -> 10.19;
        #      x30 -> 0.00986301369864 x 500 = 4.9315 -> 4.93
        ("365", [("500.00", "10.19"), ("500.00", "4.93")]),
        # ACTUAL is 365 in the cumulative engine (leap years ignored).
        ("ACTUAL", [("500.00", "10.19"), ("500.00", "4.93")]),
    ],
)
def test_days_in_year_daily(days_in_year, expected):
    result = schedule(
        number_of_repayments=2,
        amortization="EQUAL_PRINCIPAL",
        interest_calculation_period="DAILY",
        disbursement_date="2023-03-01",
        days_in_year=days_in_year,
    )
    assert principal_interest(result) == expected


def test_days_in_year_ignored_for_same_as_repayment_period_months():
    assert schedule(days_in_year="360") == schedule(days_in_year="365") == schedule()


def test_days_in_year_for_same_as_repayment_period_days():
    # DAYS frequency, SAME_AS: periods a year = days in year (360 here):
    # mc(mc(12/360)/100) = 0.000333333333333 x 30 = 0.00999999999999;
    # EP: 1000 x r = 9.99999999999 -> 10.00; 500 x r = 4.999.. -> 5.00.
    result = schedule(
        number_of_repayments=2,
        amortization="EQUAL_PRINCIPAL",
        repayment_frequency="DAYS",
        repayment_every=30,
        days_in_year="360",
    )
    assert principal_interest(result) == [("500.00", "10.00"), ("500.00", "5.00")]


def test_days_in_month_30_daily():
    # 2023-01-15 -> 02-15 (31 days) -> 03-15 (28 days), DAILY, 365, EP.
    # 30-day months: both periods count 1 month x 30 days: rate 0.00986301369864;
    # 1000 x r = 9.863 -> 9.86; 500 x r = 4.9315 -> 4.93.
    thirty = schedule(
        number_of_repayments=2,
        amortization="EQUAL_PRINCIPAL",
        interest_calculation_period="DAILY",
        disbursement_date="2023-01-15",
        days_in_month="30",
    )
    assert principal_interest(thirty) == [("500.00", "9.86"), ("500.00", "4.93")]
    # ACTUAL: 31 days -> 0.0101917808219 -> 10.19; 28 days -> 0.00920547945206 x 500 = 4.6027 -> 4.60.
    actual = schedule(
        number_of_repayments=2,
        amortization="EQUAL_PRINCIPAL",
        interest_calculation_period="DAILY",
        disbursement_date="2023-01-15",
    )
    assert principal_interest(actual) == [("500.00", "10.19"), ("500.00", "4.60")]


def test_daily_first_period_starts_at_the_ideal_disbursement_date():
    # Disbursed 2023-01-31, first due 2023-02-28: Fineract starts the first
    # period's DAILY interest at the "ideal disbursement date" 2023-02-28 minus
    # one month = 2023-01-28, i.e. 31 days (the row still shows 28 days).
    # 1000 x mc(0.000328767123288 x 31) = 10.19; period 2 (02-28 -> 03-31, 31 days):
    # 500 x 0.0101917808219 = 5.0959 -> 5.10.
    result = schedule(
        number_of_repayments=2,
        amortization="EQUAL_PRINCIPAL",
        interest_calculation_period="DAILY",
        disbursement_date="2023-01-31",
    )
    assert [(r["days"], r["interest"]) for r in repayments(result)] == [(28, "10.19"), (31, "5.10")]


def test_progressive_hand_example_360_30():
    # 1000, 12 %, 360/30, monthly, 3 periods. Rate factor: mc(30 x 1 / 360) =
    # 0.0833333333333; mc(0.12 x that) = mc(0.009999999999996) = 0.0100000000000;
    # x 31 / 31 -> 0.01. EMI = 1000 x 1.01^3 / (1 + 1.01 + 1.01^2) =
    # 1030.301 / 3.0301 = 340.0221 -> 340.02. Interest 10.00, 6.70, 3.37 (as in the
    # cumulative example). Last EMI = 340.02 + (1000 + 20.07 - 3 x 340.02) = 340.03;
    # the 0.01 difference x 100 = 1 is not > floor(3/2) = 1, so no re-spreading.
    result = schedule(
        schedule_type="PROGRESSIVE", days_in_year="360", days_in_month="30", disbursement_date="2023-03-01"
    )
    assert [(r["principal"], r["interest"], r["total"]) for r in repayments(result)] == [
        ("330.02", "10.00", "340.02"),
        ("333.32", "6.70", "340.02"),
        ("336.66", "3.37", "340.03"),
    ]


def test_progressive_actual_actual_period_crossing_the_year_end():
    # 1000, 12 %, ACTUAL/ACTUAL, 2 monthly periods from 2023-12-15.
    # Period 1 crosses the year end: 1 x (mc(16/365) + mc(15/366)) =
    # 0.0438356164384 + 0.0409836065574 = 0.0848192229958; x 0.12 -> 0.0101783067595.
    # Period 2 (2024-01-15, January 31 days, 2024 has 366): mc(31/366) =
    # 0.0846994535519; x 0.12 -> 0.0101639344262 (x 31 / 31 unchanged).
    # prod = mc(1.0101783067595 x 1.0101639344262) = 1.02044569283;
    # fn = 1 + mc(1.0101639344262) = 2.01016393443; EMI = mc(1020.44569283 /
    # 2.01016393443) = 507.643 -> 507.64. Interest 1: 10.178 -> 10.18, principal
    # 497.46, balance 502.54; 2: 502.54 x 0.0101639344262 = 5.1078 -> 5.11;
    # last EMI = 507.64 + (1000 + 15.29 - 1015.28) = 507.65.
    result = schedule(schedule_type="PROGRESSIVE", number_of_repayments=2, disbursement_date="2023-12-15")
    assert [(r["principal"], r["interest"], r["total"]) for r in repayments(result)] == [
        ("497.46", "10.18", "507.64"),
        ("502.54", "5.11", "507.65"),
    ]


def test_progressive_actual_month_length_is_the_month_the_period_starts_in():
    # 1000, 12 %, ACTUAL/ACTUAL, from 2023-01-31: period 1 (-> 02-28) uses January's
    # 31 days: 0.12 x mc(31/365) = 0.0101917808219 (x 28 / 28); period 2 (-> 03-31)
    # uses February's 28: 0.12 x mc(28/365) = 0.00920547945206. prod =
    # 1.01949108050, fn = 2.00920547945, EMI = 507.410 -> 507.41. Interest 10.19,
    # principal 497.22, balance 502.78; interest 502.78 x 0.00920547945206 = 4.628 -> 4.63;
    # last EMI 507.41 + (1000 + 14.82 - 1014.82) = 507.41.
    result = schedule(schedule_type="PROGRESSIVE", number_of_repayments=2, disbursement_date="2023-01-31")
    assert [(r["due_date"], r["principal"], r["interest"], r["total"]) for r in repayments(result)] == [
        ("2023-02-28", "497.22", "10.19", "507.41"),
        ("2023-03-31", "502.78", "4.63", "507.41"),
    ]


def test_progressive_quarterly_period_crossing_the_year_end_uses_real_days():
    # 1000, 12 %, ACTUAL/ACTUAL, every 3 months, 2 periods from 2023-10-15.
    # Period 1 (-> 2024-01-15) crosses the year end: mc(77/365) + mc(15/366) =
    # 0.210958904110 + 0.0409836065574 = 0.251942510667 (its 92 real days; NOT
    # multiplied by every = 3 again - the one deliberate deviation from the
    # Oct-2024 Fineract snapshot, fixed upstream later); x 0.12 -> 0.0302331012800.
    # Period 2 (-> 2024-04-15, same year): January's 31 days x 3 / 366 =
    # 0.254098360656; x 0.12 = 0.0304918032787; x 91 / 91 unchanged.
    # prod = mc(1.03023310128 x 1.0304918032787) = 1.06164676634; fn =
    # 2.03049180328; EMI = 1061.64676634 / 2.03049180328 = 522.852 -> 522.85.
    # 1: 30.233 -> 30.23 interest, 492.62 principal, balance 507.38;
    # 2: 507.38 x 0.0304918032787 = 15.4709 -> 15.47; residue 1000 + 45.70 - 1045.70 = 0.
    result = schedule(
        schedule_type="PROGRESSIVE",
        number_of_repayments=2,
        repayment_every=3,
        disbursement_date="2023-10-15",
    )
    assert [(r["due_date"], r["principal"], r["interest"], r["total"]) for r in repayments(result)] == [
        ("2024-01-15", "492.62", "30.23", "522.85"),
        ("2024-04-15", "507.38", "15.47", "522.85"),
    ]


def test_progressive_installment_multiple():
    # Same as test_progressive_hand_example_360_30 with multiples of 10: EMI
    # 340.02 -> 34.002 -> 34 -> 340.00. Interest 10.00 / principal 330.00 -> 670.00;
    # 6.70 / 333.30 -> 336.70; 3.367 -> 3.37; residue 1000 + 20.07 - 1020 = 0.07 ->
    # last EMI 340.07 (principal 336.70). 0.07 x 100 = 7 > 1: spreading 0.07/3 =
    # 0.02 gives 340.02 -> 340 again (multiple of 10), unchanged, so kept.
    result = schedule(
        schedule_type="PROGRESSIVE",
        days_in_year="360",
        days_in_month="30",
        disbursement_date="2023-03-01",
        installment_in_multiples_of=10,
    )
    assert [(r["principal"], r["interest"], r["total"]) for r in repayments(result)] == [
        ("330.00", "10.00", "340.00"),
        ("333.30", "6.70", "340.00"),
        ("336.70", "3.37", "340.07"),
    ]


def test_fees():
    # 1250 FLAT 12 % 3 months (principal 416.67, 416.67, 416.66; interest 12.50).
    # Disbursement 2.5 %: mc(1250 x mc(2.5/100)) = 31.25 -> row 0.
    # Installment 1 % of the installment's principal: 416.67 x 1 / 100 = 4.1667 ->
    # running total 4.17, then + 5.00 flat = 9.17 (416.66 gives 4.1666 -> 4.17 too).
    result = schedule(
        principal="1250",
        interest_method="FLAT",
        disbursement_date="2023-01-01",
        fees=[
            {"name": "Processing", "amount": "2.5", "calculation": "PERCENT_OF_PRINCIPAL", "charge_time": "DISBURSEMENT"},
            {"name": "Insurance", "amount": "1", "calculation": "PERCENT_OF_PRINCIPAL", "charge_time": "INSTALLMENT"},
            {"name": "SMS", "amount": "5.00", "calculation": "FLAT", "charge_time": "INSTALLMENT"},
        ],
    )
    rows = result["installments"]
    assert rows[0] == {
        "number": 0,
        "due_date": "2023-01-01",
        "days": 0,
        "principal": "0.00",
        "interest": "0.00",
        "fees": "31.25",
        "penalties": "0.00",
        "total": "31.25",
        "principal_balance": "1250.00",
    }
    assert [(r["principal"], r["interest"], r["fees"], r["total"]) for r in rows[1:]] == [
        ("416.67", "12.50", "9.17", "438.34"),
        ("416.67", "12.50", "9.17", "438.34"),
        ("416.66", "12.50", "9.17", "438.33"),
    ]
    assert result["totals"] == {
        "principal": "1250.00",
        "interest": "37.50",
        "fees": "58.76",
        "penalties": "0.00",
        "total": "1346.26",
    }


def test_fee_flat_disbursement_and_zero_in_principal_grace():
    # Flat 50.00 at disbursement; 2 % installment fee is 0 during principal grace:
    # DB EP, grace 1, principal r2(1000/2) = 500.00 -> fee 500 x 2 / 100 = 10.00.
    result = schedule(
        amortization="EQUAL_PRINCIPAL",
        grace_on_principal_periods=1,
        fees=[
            {"name": "Admin", "amount": "50.00", "calculation": "FLAT", "charge_time": "DISBURSEMENT"},
            {"name": "Ins", "amount": "2", "calculation": "PERCENT_OF_PRINCIPAL", "charge_time": "INSTALLMENT"},
        ],
    )
    assert [(r["number"], r["principal"], r["fees"]) for r in result["installments"]] == [
        (0, "0.00", "50.00"),
        (1, "0.00", "0.00"),
        (2, "500.00", "10.00"),
        (3, "500.00", "10.00"),
    ]


def test_no_row_zero_without_disbursement_fees():
    result = schedule(fees=[{"name": "SMS", "amount": "1.00", "calculation": "FLAT", "charge_time": "INSTALLMENT"}])
    assert [r["number"] for r in result["installments"]] == [1, 2, 3]


def test_json_shape_and_decimal_places():
    for decimals in (0, 1, 2, 3, 6):
        result = schedule(currency_decimals=decimals)
        assert set(result) == {"currency_decimals", "installments", "totals"}
        assert result["currency_decimals"] == decimals
        for row in result["installments"]:
            assert set(row) == {
                "number", "due_date", "days", "principal", "interest", "fees", "penalties", "total", "principal_balance"
            }
            for key in ("principal", "interest", "fees", "penalties", "total", "principal_balance"):
                value = row[key]
                assert isinstance(value, str) and "e" not in value.lower() and not value.startswith("-")
                assert (len(value.split(".")[1]) if "." in value else 0) == decimals
        json.dumps(result)  # serialisable as is


def test_generate_schedule_requires_parsed_input():
    with pytest.raises(TypeError):
        generate_schedule(BASE)  # type: ignore[arg-type]


def test_parse_applies_documented_defaults():
    inp = parse_schedule_input(BASE)
    assert isinstance(inp, ScheduleInput)
    assert (inp.repayment_every, inp.interest_calculation_period, inp.schedule_type) == (
        1,
        "SAME_AS_REPAYMENT_PERIOD",
        "CUMULATIVE",
    )
    assert (inp.days_in_year, inp.days_in_month, inp.currency_decimals) == ("ACTUAL", "ACTUAL", 2)
    assert (inp.grace_on_principal_periods, inp.grace_on_interest_payment_periods) == (0, 0)
    assert (inp.grace_on_interest_charged_periods, inp.currency_in_multiples_of) == (0, 0)
    assert inp.installment_in_multiples_of is None and inp.fees == ()
    assert inp.principal == D("1000") and inp.disbursement_date == dt.date(2024, 1, 15)
    # null means "default" for optional fields; numbers are accepted for days_in_*
    same = parse_schedule_input({**BASE, "repayment_every": None, "fees": None, "days_in_year": 360, "days_in_month": 30})
    assert (same.repayment_every, same.fees, same.days_in_year, same.days_in_month) == (1, (), "360", "30")
    with pytest.raises(dataclasses.FrozenInstanceError):
        inp.principal = D("1")  # type: ignore[misc]  # frozen


# ---------------------------------------------------------------------------
# 3. Input validation
# ---------------------------------------------------------------------------

MONEY_TYPE = "Must be a decimal string (JSON numbers are not accepted for amounts and rates)."


def test_missing_required_fields():
    errors = errors_of({})
    for field in (
        "principal",
        "annual_interest_rate",
        "number_of_repayments",
        "repayment_frequency",
        "interest_method",
        "amortization",
        "disbursement_date",
    ):
        assert errors[field] == ["This field is required."]
    assert "repayment_every" not in errors


def test_not_an_object():
    assert errors_of([1, 2]) == {"non_field_errors": ["Expected a JSON object."]}


@pytest.mark.parametrize(
    "overrides, field, message",
    [
        ({"principal": 1000.0}, "principal", MONEY_TYPE),
        ({"principal": 1000}, "principal", MONEY_TYPE),
        ({"principal": True}, "principal", MONEY_TYPE),
        ({"principal": "abc"}, "principal", 'Must be a plain decimal string such as "1500.00".'),
        ({"principal": "1e3"}, "principal", 'Must be a plain decimal string such as "1500.00".'),
        ({"principal": " 100"}, "principal", 'Must be a plain decimal string such as "1500.00".'),
        ({"principal": "0"}, "principal", "Must be greater than 0."),
        ({"principal": "-5.00"}, "principal", "Must be greater than 0."),
        ({"principal": "100.001"}, "principal", "Must have at most 2 decimal places (currency_decimals)."),
        ({"principal": None}, "principal", "This field may not be null."),
        ({"annual_interest_rate": 12.5}, "annual_interest_rate", MONEY_TYPE),
        ({"annual_interest_rate": "-0.5"}, "annual_interest_rate", "Must be greater than or equal to 0."),
        ({"annual_interest_rate": "1000.5"}, "annual_interest_rate", "Must be at most 1000."),
        ({"annual_interest_rate": "1.1234567"}, "annual_interest_rate", "Must have at most 6 decimal places."),
        ({"number_of_repayments": 0}, "number_of_repayments", "Must be between 1 and 600."),
        ({"number_of_repayments": 601}, "number_of_repayments", "Must be between 1 and 600."),
        ({"number_of_repayments": "12"}, "number_of_repayments", "Must be an integer."),
        ({"number_of_repayments": 12.0}, "number_of_repayments", "Must be an integer."),
        ({"number_of_repayments": True}, "number_of_repayments", "Must be an integer."),
        ({"repayment_every": 0}, "repayment_every", "Must be between 1 and 120."),
        ({"repayment_frequency": "YEARS"}, "repayment_frequency", "Must be one of: DAYS, WEEKS, MONTHS."),
        ({"repayment_frequency": "months"}, "repayment_frequency", "Must be one of: DAYS, WEEKS, MONTHS."),
        ({"interest_method": "COMPOUND"}, "interest_method", "Must be one of: FLAT, DECLINING_BALANCE."),
        ({"amortization": 1}, "amortization", "Must be one of: EQUAL_INSTALLMENTS, EQUAL_PRINCIPAL."),
        ({"interest_calculation_period": "WEEKLY"}, "interest_calculation_period",
         "Must be one of: SAME_AS_REPAYMENT_PERIOD, DAILY."),
        ({"schedule_type": "X"}, "schedule_type", "Must be one of: CUMULATIVE, PROGRESSIVE."),
        ({"days_in_year": 366}, "days_in_year", "Must be one of: ACTUAL, 360, 364, 365."),
        ({"days_in_month": "31"}, "days_in_month", "Must be one of: ACTUAL, 30."),
        ({"grace_on_principal_periods": -1}, "grace_on_principal_periods", "Must be greater than or equal to 0."),
        ({"grace_on_principal_periods": 3}, "grace_on_principal_periods", "Must be less than number_of_repayments."),
        ({"grace_on_interest_payment_periods": 5}, "grace_on_interest_payment_periods",
         "Must be less than number_of_repayments."),
        ({"grace_on_interest_charged_periods": 3}, "grace_on_interest_charged_periods",
         "Must be less than number_of_repayments."),
        ({"currency_decimals": 7}, "currency_decimals", "Must be between 0 and 6."),
        ({"currency_decimals": -1}, "currency_decimals", "Must be between 0 and 6."),
        ({"currency_in_multiples_of": -10}, "currency_in_multiples_of", "Must be greater than or equal to 0."),
        ({"installment_in_multiples_of": 0}, "installment_in_multiples_of", "Must be greater than or equal to 1."),
        ({"installment_in_multiples_of": "10"}, "installment_in_multiples_of", "Must be an integer."),
        ({"disbursement_date": "2024-02-30"}, "disbursement_date", "Must be an ISO date (YYYY-MM-DD)."),
        ({"disbursement_date": "15/01/2024"}, "disbursement_date", "Must be an ISO date (YYYY-MM-DD)."),
        ({"disbursement_date": "20240115"}, "disbursement_date", "Must be an ISO date (YYYY-MM-DD)."),
        ({"disbursement_date": 20240115}, "disbursement_date", "Must be an ISO date (YYYY-MM-DD)."),
        ({"disbursement_date": "9999-12-01"}, "disbursement_date", "Must be between 1900-01-01 and 2999-12-31."),
        ({"colour": "red"}, "colour", "Unknown field."),
        ({"fees": {}}, "fees", "Must be a list."),
        ({"fees": ["x"]}, "fees[0]", "Must be an object."),
        ({"fees": [{"name": "a", "amount": 5, "calculation": "FLAT", "charge_time": "INSTALLMENT"}]},
         "fees[0].amount", MONEY_TYPE),
        ({"fees": [{"name": "a", "amount": "1.005", "calculation": "FLAT", "charge_time": "INSTALLMENT"}]},
         "fees[0].amount", "Must have at most 2 decimal places (currency_decimals)."),
        ({"fees": [{"name": "a", "amount": "101", "calculation": "PERCENT_OF_PRINCIPAL", "charge_time": "INSTALLMENT"}]},
         "fees[0].amount", "A percentage must be at most 100."),
        ({"fees": [{"name": "a", "amount": "-1", "calculation": "FLAT", "charge_time": "INSTALLMENT"}]},
         "fees[0].amount", "Must be greater than or equal to 0."),
        ({"fees": [{"name": "a", "amount": "1", "calculation": "FLAT", "charge_time": "LATE"}]},
         "fees[0].charge_time", "Must be one of: DISBURSEMENT, INSTALLMENT."),
        ({"fees": [{"name": "a", "amount": "1", "calculation": "PERCENT", "charge_time": "INSTALLMENT"}]},
         "fees[0].calculation", "Must be one of: FLAT, PERCENT_OF_PRINCIPAL."),
        ({"fees": [{"name": " ", "amount": "1", "calculation": "FLAT", "charge_time": "INSTALLMENT"}]},
         "fees[0].name", "Must be a non-empty string."),
        ({"fees": [{"amount": "1", "calculation": "FLAT", "charge_time": "INSTALLMENT"}]},
         "fees[0].name", "This field is required."),
        ({"fees": [{"name": "a", "amount": "1", "calculation": "FLAT", "charge_time": "INSTALLMENT", "x": 1}]},
         "fees[0].x", "Unknown field."),
        ({"schedule_type": "PROGRESSIVE", "interest_method": "FLAT"}, "interest_method",
         "PROGRESSIVE schedules support only DECLINING_BALANCE."),
        ({"schedule_type": "PROGRESSIVE", "amortization": "EQUAL_PRINCIPAL"}, "amortization",
         "PROGRESSIVE schedules support only EQUAL_INSTALLMENTS."),
        ({"schedule_type": "PROGRESSIVE", "grace_on_principal_periods": 1}, "grace_on_principal_periods",
         "Grace periods are not supported with PROGRESSIVE schedules."),
        ({"currency_decimals": 0, "currency_in_multiples_of": 10, "principal": "1005"}, "principal",
         "Must be a multiple of currency_in_multiples_of (10)."),
        ({"number_of_repayments": 600, "repayment_every": 120}, "number_of_repayments",
         "The loan term (repayments x repayment_every) is too long (max ~100 years)."),
    ],
)
def test_field_errors(overrides, field, message):
    errors = errors_of({**BASE, **overrides})
    assert message in errors.get(field, []), errors


def test_flat_equal_installments_needs_a_period_that_charges_interest():
    errors = errors_of(
        {
            **BASE,
            "interest_method": "FLAT",
            "grace_on_interest_payment_periods": 2,
            "grace_on_interest_charged_periods": 1,
        }
    )
    assert list(errors) == ["grace_on_interest_charged_periods"]


def test_all_errors_are_reported_at_once():
    errors = errors_of({**BASE, "principal": 1.5, "number_of_repayments": 0, "x": 1, "days_in_month": "29"})
    assert set(errors) == {"principal", "number_of_repayments", "x", "days_in_month"}


def test_error_is_a_value_error_with_a_readable_message():
    with pytest.raises(ValueError) as info:
        parse_schedule_input({**BASE, "principal": "0"})
    assert "principal: Must be greater than 0." in str(info.value)


def test_trailing_zeros_do_not_count_as_decimal_places():
    assert parse_schedule_input({**BASE, "principal": "1000.000"}).principal == D("1000.000")
    assert parse_schedule_input({**BASE, "currency_decimals": 0, "principal": "1000.00"}).principal == D("1000")


# ---------------------------------------------------------------------------
# 4. Properties
# ---------------------------------------------------------------------------

KNOWN_REFUSALS = (
    "do not amortize",
    "must be greater than the interest due",
    "produce a negative amount",
)


@st.composite
def schedule_inputs(draw, safe: bool = True, zero_rate: bool = False):
    decimals = draw(st.integers(min_value=0, max_value=3))
    currency_multiple = draw(st.sampled_from([0, 1, 5, 10])) if decimals == 0 else draw(st.sampled_from([0, 10]))
    unit = currency_multiple if decimals == 0 and currency_multiple else 1
    n = draw(st.integers(min_value=1, max_value=48))
    progressive = draw(st.booleans())
    method = "DECLINING_BALANCE" if progressive else draw(st.sampled_from(["FLAT", "DECLINING_BALANCE"]))
    amortization = "EQUAL_INSTALLMENTS" if progressive else draw(st.sampled_from(["EQUAL_INSTALLMENTS", "EQUAL_PRINCIPAL"]))
    # PROGRESSIVE with a tiny principal in whole units: the rounded EMI can be 0
    # (1 unit over 2 periods: Fineract sees every period as "fully paid") or
    # overshoot by more than one EMI (11 units over 7: EMI 2, Fineract would
    # collect 12); both are refused. Keep the safe strategy clear of them.
    units = draw(st.integers(min_value=n * n if (progressive and safe) else 1, max_value=10**8))
    principal = D(units * unit).scaleb(-decimals) if unit == 1 else D(units * unit)
    if zero_rate:
        rate = D(0)
    else:
        rate = D(draw(st.integers(min_value=0, max_value=3600 if safe else 20000))).scaleb(-2)
    frequency = draw(st.sampled_from(["DAYS", "WEEKS", "MONTHS"]))
    every = draw(st.integers(min_value=1, max_value={"DAYS": 31, "WEEKS": 4, "MONTHS": 3}[frequency]))
    graces = {}
    if not progressive and n > 1:
        graces["grace_on_principal_periods"] = draw(st.integers(min_value=0, max_value=n - 1))
        if not safe:
            graces["grace_on_interest_payment_periods"] = draw(st.integers(min_value=0, max_value=n - 1))
        if safe and method == "FLAT":
            # FLAT + interest-free grace: total - round(total/n) x grace can turn
            # negative for tiny interest amounts (refused; see the unsafe property).
            graces["grace_on_interest_charged_periods"] = 0
        else:
            graces["grace_on_interest_charged_periods"] = draw(st.integers(min_value=0, max_value=n - 1))
        if method == "FLAT" and amortization == "EQUAL_INSTALLMENTS":
            payment = graces.get("grace_on_interest_payment_periods", 0)
            graces["grace_on_interest_charged_periods"] = min(graces["grace_on_interest_charged_periods"], n - 1 - payment)
    installment_multiple = draw(st.sampled_from([None, 1, 5, 10, 100]))
    # keep the multiple small against the installment (an installment rounded to
    # 0 cannot amortize anything; Fineract refuses or loops)
    if installment_multiple is not None and safe and installment_multiple * n * 20 > principal:
        installment_multiple = None
    fees = []
    for index in range(draw(st.integers(min_value=0, max_value=3))):
        calculation = draw(st.sampled_from(["FLAT", "PERCENT_OF_PRINCIPAL"]))
        if calculation == "FLAT":
            amount = D(draw(st.integers(min_value=0, max_value=10**5)) * unit).scaleb(-decimals if unit == 1 else 0)
        else:
            amount = D(draw(st.integers(min_value=0, max_value=500))).scaleb(-2)
        fees.append(
            {
                "name": f"fee {index}",
                "amount": str(amount),
                "calculation": calculation,
                "charge_time": draw(st.sampled_from(["DISBURSEMENT", "INSTALLMENT"])),
            }
        )
    day = draw(st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2060, 12, 31)))
    return {
        "principal": str(principal),
        "annual_interest_rate": str(rate),
        "number_of_repayments": n,
        "repayment_frequency": frequency,
        "repayment_every": every,
        "interest_method": method,
        "amortization": amortization,
        "interest_calculation_period": draw(st.sampled_from(["SAME_AS_REPAYMENT_PERIOD", "DAILY"])),
        "schedule_type": "PROGRESSIVE" if progressive else "CUMULATIVE",
        "days_in_year": draw(st.sampled_from(["ACTUAL", "360", "364", "365"])),
        "days_in_month": draw(st.sampled_from(["ACTUAL", "30"])),
        "currency_decimals": decimals,
        "currency_in_multiples_of": currency_multiple,
        "installment_in_multiples_of": installment_multiple,
        "disbursement_date": day.isoformat(),
        "fees": fees,
        **graces,
    }


def check_invariants(data: dict, result: dict) -> None:
    decimals = data["currency_decimals"]
    principal = D(data["principal"])
    rows = result["installments"]
    repay = [r for r in rows if r["number"] > 0]
    assert 1 <= len(repay) <= data["number_of_repayments"]
    assert [r["number"] for r in repay] == list(range(1, len(repay) + 1))
    amount_keys = ("principal", "interest", "fees", "penalties", "total", "principal_balance")
    for row in rows:
        for key in amount_keys:
            text = row[key]
            assert (len(text.split(".")[1]) if "." in text else 0) == decimals
            assert D(text) >= 0, (key, row)  # no negative amount
        assert D(row["total"]) == D(row["principal"]) + D(row["interest"]) + D(row["fees"]) + D(row["penalties"])
    # principal parts sum exactly to the principal; the balance runs down to 0
    assert sum(D(r["principal"]) for r in repay) == principal
    balance = principal
    previous = dt.date.fromisoformat(data["disbursement_date"])
    for row in repay:
        balance -= D(row["principal"])
        assert D(row["principal_balance"]) == balance
        due = dt.date.fromisoformat(row["due_date"])
        assert due > previous and (due - previous).days == row["days"]
        previous = due
    assert D(repay[-1]["principal_balance"]) == 0
    for key in ("principal", "interest", "fees", "penalties", "total"):
        assert D(result["totals"][key]) == sum(D(r[key]) for r in rows)
    if D(data["annual_interest_rate"]) == 0:
        assert all(D(r["interest"]) == 0 for r in rows)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=schedule_inputs(safe=True))
def test_property_invariants(data):
    inp = parse_schedule_input(data)  # the strategy only builds valid input
    result = schedule_to_json(generate_schedule(inp))
    check_invariants(data, result)
    assert schedule_to_json(generate_schedule(parse_schedule_input(data))) == result  # deterministic


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=schedule_inputs(safe=False))
def test_property_invariants_or_known_refusal(data):
    # With interest payment grace, large rates and large installment multiples a
    # schedule may be refused (as Fineract refuses or cannot amortize it), but
    # never with anything else than a ScheduleInputError that says why.
    inp = parse_schedule_input(data)
    try:
        result = schedule_to_json(generate_schedule(inp))
    except ScheduleInputError as error:
        assert list(error.errors) == ["non_field_errors"]
        assert all(any(known in message for known in KNOWN_REFUSALS) for message in error.errors["non_field_errors"])
        return
    check_invariants(data, result)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=schedule_inputs(safe=True, zero_rate=True))
def test_property_zero_rate_gives_zero_interest(data):
    result = schedule_to_json(generate_schedule(parse_schedule_input(data)))
    decimals = data["currency_decimals"]
    zero = "0." + "0" * decimals if decimals else "0"
    assert all(row["interest"] == zero for row in result["installments"])
    assert D(result["totals"]["interest"]) == 0
    check_invariants(data, result)


# ---------------------------------------------------------------------------
# 5. Purity guards: no Django, no float in the engine
# ---------------------------------------------------------------------------

ROOT = pathlib.Path(__file__).resolve().parents[2]
ENGINE_FILES = sorted((ROOT / "node" / "loans" / "schedule").glob("*.py")) + [ROOT / "node" / "core" / "money.py"]


@pytest.mark.parametrize("path", ENGINE_FILES, ids=lambda p: p.name)
def test_engine_is_pure_and_float_free(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [alias.name for alias in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            assert not any(name and name.split(".")[0] in {"django", "rest_framework"} for name in names), path
        if isinstance(node, ast.Constant):
            assert not isinstance(node.value, float), f"float literal in {path.name}:{node.lineno}"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id != "float", f"float() call in {path.name}:{node.lineno}"
