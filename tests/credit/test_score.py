"""The credit scorecard (node.credit.score) and the report fold it reads (node.credit.report).

Pure tests: no database, no ring, no cluster. Reports are folded from hand-made ``RingRow``s, exactly what the ring
would return for one borrower's partition.
"""

from __future__ import annotations

import ast
import copy
import itertools
import json
import os
import pathlib
import random
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from node.credit.report import RingRow, fold
from node.credit.score import (
    DEFAULT_SCORECARD,
    Reason,
    Score,
    card_version,
    money,
    score_report,
    scorecard,
    scorecard_from_settings,
)

ROOT = pathlib.Path(__file__).resolve().parents[2]
NOW = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)
_ids = itertools.count()


def ev(at, event_type: str, ref: str, *, mfi: str = "SEBO", district: str = "maseru", **payload) -> RingRow:
    """A loan event ``at`` (a datetime, or days before NOW)."""
    when = at if isinstance(at, datetime) else NOW - timedelta(days=at)
    body = {"mfi": mfi, "district": district, "loan_ref": ref, "currency": "LSL"}
    body.update({k: str(v) if isinstance(v, Decimal) else v for k, v in payload.items()})
    return RingRow(when, f"ev-{next(_ids):06d}", event_type, district, body)


def enquiry(at, *, mfi: str = "LENDER", district: str = "leribe") -> RingRow:
    when = at if isinstance(at, datetime) else NOW - timedelta(days=at)
    return RingRow(when, f"eq-{next(_ids):06d}", "enquiry", district,
                   {"mfi": mfi, "district": district, "purpose": "loan_application"})


def disbursed(at, ref: str, principal: str, installment: str, **kw) -> RingRow:
    return ev(at, "loan.disbursed", ref, principal=principal, outstanding_principal=principal,
              monthly_installment=installment, disbursement_date=(NOW - timedelta(days=at)).date().isoformat()
              if not isinstance(at, datetime) else at.date().isoformat(), **kw)


def closed(at, ref: str) -> RingRow:
    return ev(at, "loan.closed", ref, outstanding_principal="0.00", days_past_due=0)


def report(rows, *, exclude=None):
    return fold("bk-test", rows, as_of=NOW, exclude_loan_key=exclude)


def codes(score: Score) -> dict[str, int]:
    return {r.code: r.points for r in score.reasons}


def reason(score: Score, code: str) -> Reason:
    return next(r for r in score.reasons if r.code == code)


# --- the score --------------------------------------------------------------------------------------------------------


def clean_history() -> list[RingRow]:
    """Two loans repaid in full since 30 months ago, one active and up to date (M800.00 a month)."""
    return [
        ev(915, "loan.applied", "L-1", principal="3000.00", monthly_installment="300.00"),
        disbursed(910, "L-1", "3000.00", "300.00"),
        closed(600, "L-1"),
        disbursed(500, "L-2", "5000.00", "450.00"),
        ev(400, "loan.repaid", "L-2", outstanding_principal="2500.00", days_past_due=0),
        closed(200, "L-2"),
        disbursed(90, "L-3", "8000.00", "800.00"),
        ev(30, "loan.repaid", "L-3", outstanding_principal="6000.00", days_past_due=0),
    ]


def test_clean_borrower_with_history_scores_a_with_positive_reasons():
    s = score_report(report(clean_history()), monthly_income=Decimal("6000.00"),
                     new_monthly_installment=Decimal("600.00"))
    # 600 + history 30 months (+40) + 2 repaid (+40) + DTI 1400/6000 = 0.2333 (+40) + never late (+30)
    assert codes(s) == {"history_length": 40, "loans_repaid_in_full": 40, "dti_low": 40, "never_late": 30}
    assert (s.points, s.grade) == (750, "A")
    assert s.dti == Decimal("0.2333")
    assert all(r.points > 0 for r in s.reasons)
    assert reason(s, "dti_low").text == ("Repayments on all loans would take 23.33% of declared monthly income "
                                         "(M1,400.00 of M6,000.00).")
    assert reason(s, "never_late").text == "No repayment has ever been late on the 3 loans on file."


def test_shorter_clean_history_scores_b():
    rows = [disbursed(300, "L-1", "2000.00", "250.00"), closed(100, "L-1")]
    s = score_report(report(rows), monthly_income=Decimal(3000), new_monthly_installment=Decimal(500))
    # 600 + 9 months (+10) + 1 repaid (+20) + DTI 0.1667 (+40) + never late (+30)
    assert (s.points, s.grade) == (700, "B")
    assert all(r.points > 0 for r in s.reasons)


def test_write_off_caps_the_grade_at_d_even_with_an_otherwise_perfect_file():
    rows = [*clean_history(), disbursed(400, "L-9", "5000.00", "500.00"), closed(380, "L-9"),
            disbursed(350, "L-8", "4500.00", "450.00", mfi="KHOTSO"),
            ev(100, "loan.written_off", "L-8", mfi="KHOTSO", outstanding_principal="4500.00")]
    s = score_report(report(rows), monthly_income=Decimal(10000))
    # never_late is not given with a write-off on file; repaid in full is capped at +60
    assert codes(s) == {"write_off_on_file": -200, "history_length": 40, "loans_repaid_in_full": 60, "dti_low": 40}
    assert (s.points, s.grade) == (540, "D")
    r = reason(s, "write_off_on_file")
    assert "M4,500.00" in r.text
    assert r.text == "A loan was written off with M4,500.00 unpaid (loan L-8 at KHOTSO)."
    assert s.reasons[0] == r


def test_write_off_after_arrears_is_grade_e():
    rows = [disbursed(400, "L-1", "12345.67", "1200.00"),
            ev(200, "loan.dpd_changed", "L-1", days_past_due=45),
            ev(150, "loan.dpd_changed", "L-1", days_past_due=120, outstanding_principal="11000.50"),
            ev(100, "loan.written_off", "L-1", outstanding_principal="11000.50"),
            disbursed(380, "L-2", "2000.00", "200.00"),
            ev(100, "loan.written_off", "L-2", outstanding_principal="1999.50")]
    s = score_report(report(rows), monthly_income=Decimal(5000))
    assert s.grade == "E"
    assert codes(s)["write_off_on_file"] == -400
    assert codes(s)["was_late_over_90"] == -150
    assert "M13,000.00" in reason(s, "write_off_on_file").text  # 11,000.50 + 1,999.50
    assert "2 loans were written off" in reason(s, "write_off_on_file").text
    assert "120 days past due" in reason(s, "was_late_over_90").text


@pytest.mark.parametrize(("new_installment", "dti", "code", "points"), [
    ("0.00", "0.0000", "dti_low", 40),
    ("3000.00", "0.3000", "dti_low", 40),  # the upper bound is inclusive
    ("3000.49", "0.3000", "dti_low", 40),  # 0.300049 rounds to 0.3000 before banding
    ("3000.50", "0.3001", "dti_low", 15),  # 0.30005 rounds half-up to 0.3001: the next band
    ("3001.00", "0.3001", "dti_low", 15),
    ("4000.00", "0.4000", "dti_low", 15),
    ("5000.00", "0.5000", None, 0),  # the 0.40-0.50 band is worth 0 points: no reason
    ("5001.00", "0.5001", "dti_high", -50),
    ("7000.00", "0.7000", "dti_high", -50),
    ("7001.00", "0.7001", "dti_very_high", -100),
    ("25000.00", "2.5000", "dti_very_high", -100),
])
def test_dti_bands_and_boundaries(new_installment, dti, code, points):
    s = score_report(report([]), monthly_income=Decimal("10000.00"), new_monthly_installment=Decimal(new_installment))
    assert s.dti == Decimal(dti)
    assert isinstance(s.dti, Decimal)
    dti_reasons = {c: p for c, p in codes(s).items() if c.startswith("dti_")}
    assert dti_reasons == ({} if code is None else {code: points})
    assert s.points == 600 - 40 + points  # thin file (-40) plus the DTI band


def test_dti_counts_active_loans_but_not_ended_or_pending_ones():
    rows = [disbursed(100, "L-1", "9000.00", "1500.00"),  # active: counts
            disbursed(300, "L-2", "4000.00", "700.00"), closed(50, "L-2"),  # closed: nothing due
            ev(10, "loan.applied", "L-3", monthly_installment="999.00")]  # pending: not debt yet
    r = report(rows)
    assert r.monthly_debt_service == Decimal("1500.00")
    s = score_report(r, monthly_income=Decimal("5000.00"), new_monthly_installment=Decimal("1600.00"))
    assert s.dti == Decimal("0.6200")
    assert reason(s, "dti_high") == Reason(
        "dti_high", -50,
        "Repayments on all loans would take 62% of declared monthly income (M3,100.00 of M5,000.00).")


@pytest.mark.parametrize(("income", "declared"), [
    (None, "No monthly income is declared"),
    (Decimal(0), "Declared monthly income is M0.00"),
    (Decimal("0.00"), "Declared monthly income is M0.00"),
])
def test_missing_or_zero_income_is_its_own_band(income, declared):
    rows = [disbursed(100, "L-1", "9000.00", "1250.50")]
    s = score_report(report(rows), monthly_income=income, new_monthly_installment=Decimal(1000))
    assert s.dti is None
    r = reason(s, "income_missing")
    assert r.points == DEFAULT_SCORECARD["debt_to_income"]["income_missing"] == -60
    assert r.text == f"{declared}, so affordability of repayments of M2,250.50 a month could not be checked."
    assert not [c for c in codes(s) if c.startswith("dti_")]
    assert s.to_json()["dti"] is None


def test_enquiries_across_the_30_and_90_day_boundaries():
    second = timedelta(seconds=1)
    rows = [
        enquiry(NOW - timedelta(days=1)),
        enquiry(NOW - timedelta(days=20)),
        enquiry(NOW - timedelta(days=30)),  # exactly 30 days: still "last 30 days"
        enquiry(NOW - timedelta(days=30) - second),  # just over: 31 to 90 days
        enquiry(NOW - timedelta(days=60)),
        enquiry(NOW - timedelta(days=90)),  # exactly 90 days: still counted
        enquiry(NOW - timedelta(days=90) - second),  # just over 90 days: not counted
        enquiry(NOW - timedelta(days=400)),
    ]
    r = report(rows)
    assert (r.enquiries_within(30), r.enquiries_within(90)) == (3, 6)
    s = score_report(r, monthly_income=Decimal(5000))
    # last 30 days: 3, one free -> 2 x -15; 31-90 days: 3, two free -> 1 x -5
    assert codes(s)["enquiries_last_30_days"] == -30
    assert codes(s)["enquiries_days_31_to_90"] == -5
    assert reason(s, "enquiries_last_30_days").text == "Lenders checked this credit record 3 times in the last 30 days."
    assert reason(s, "enquiries_days_31_to_90").text == (
        "Lenders checked this credit record 3 times between 31 and 90 days ago.")


def test_enquiries_free_allowance_and_floor():
    assert "enquiries_last_30_days" not in codes(score_report(report([enquiry(3)]), monthly_income=Decimal(1)))
    many = score_report(report([enquiry(d) for d in range(1, 11)]), monthly_income=Decimal(1))
    assert codes(many)["enquiries_last_30_days"] == -60  # 9 x -15 = -135, floored at -60


def test_enquiries_only_is_still_a_thin_file():
    s = score_report(report([enquiry(5), enquiry(6)]), monthly_income=Decimal(4000))
    assert codes(s)["thin_file"] == -40
    assert reason(s, "thin_file").text == "No earlier loans on the network: there is no credit history to go on."


def test_the_application_being_assessed_is_not_counted():
    rows = [disbursed(200, "L-1", "5000.00", "500.00"),
            disbursed(100, "L-2", "3000.00", "300.00", district="leribe", mfi="KHOTSO"),
            ev(2, "loan.applied", "APP-7", principal="4000.00", monthly_installment="400.00"),
            ev(1, "loan.approved", "APP-7", principal="4000.00", monthly_installment="400.00")]
    with_app = report(rows)
    assert (with_app.active_loans, with_app.pending_applications) == (2, 1)
    assessed = report(rows, exclude="maseru/APP-7")
    assert (assessed.active_loans, assessed.pending_applications) == (2, 0)
    s = score_report(assessed, monthly_income=Decimal(4000), new_monthly_installment=Decimal("400.00"))
    assert "pending_applications" not in codes(s)
    assert codes(s)["many_active_loans"] == -35  # two other active loans, one free
    assert reason(s, "many_active_loans").text == (
        "There are already 2 other active loans (M8,000.00 still owed); more than 1 counts against the score.")
    assert s.dti == Decimal("0.3000")  # (500 + 300 + the application's 400) / 4000, the application counted once
    assert codes(score_report(with_app, monthly_income=Decimal(4000)))["pending_applications"] == -10


def test_an_excluded_active_loan_is_not_an_active_loan():
    """Re-assessing an active loan (account review): it is left out of the count, the debt service and history."""
    rows = [disbursed(100, "L-1", "5000.00", "500.00"), disbursed(50, "L-2", "3000.00", "300.00")]
    r = report(rows, exclude="maseru/L-2")
    assert r.active_loans == 1
    assert r.monthly_debt_service == Decimal("500.00")
    s = score_report(r, monthly_income=Decimal(4000), new_monthly_installment=Decimal("300.00"))
    assert "many_active_loans" not in codes(s)
    assert s.dti == Decimal("0.2000")
    only_the_assessed = report([disbursed(50, "L-2", "3000.00", "300.00")], exclude="maseru/L-2")
    assert "thin_file" in codes(score_report(only_the_assessed, monthly_income=Decimal(4000)))


def test_a_reopened_loan_is_active_again_with_what_it_owes():
    """A reversed final repayment re-opens the loan (``loan.reopened``): the report shows it active again, with the
    outstanding principal and installment the event carries, not the zeros its closing left."""
    rows = [disbursed(100, "L-1", "5000.00", "500.00"),
            ev(40, "loan.repaid", "L-1", outstanding_principal="0.00", monthly_installment="500.00"),
            closed(40, "L-1"),
            ev(39, "loan.reopened", "L-1", outstanding_principal="450.00", monthly_installment="500.00")]
    r = report(rows)
    (line,) = r.loans
    assert (line.status, line.outstanding, line.monthly_installment) == ("active", Decimal("450.00"), Decimal("500.00"))
    assert (r.active_loans, r.closed_loans, r.total_exposure, r.monthly_debt_service) == (
        1, 0, Decimal("450.00"), Decimal("500.00"))
    assert report(rows[:3]).active_loans == 0  # before the re-opening: closed


def test_days_past_due_now_and_worst_ever():
    rows = [disbursed(300, "L-1", "5000.00", "500.00"),
            ev(200, "loan.dpd_changed", "L-1", days_past_due=70),
            ev(150, "loan.repaid", "L-1", days_past_due=0, outstanding_principal="3000.00"),
            ev(5, "loan.dpd_changed", "L-1", days_past_due=31)]
    s = score_report(report(rows), monthly_income=Decimal(5000))
    assert codes(s)["was_late_61_90"] == -100
    assert codes(s)["late_now_31_60"] == -70
    assert reason(s, "late_now_31_60").text == "An active loan is 31 days past due now."
    assert "never_late" not in codes(s)


@pytest.mark.parametrize(("days", "band"), [(1, "1_30"), (30, "1_30"), (31, "31_60"), (60, "31_60"),
                                            (61, "61_90"), (90, "61_90"), (91, "over_90")])
def test_days_past_due_bands(days, band):
    rows = [disbursed(300, "L-1", "5000.00", "500.00"), ev(5, "loan.dpd_changed", "L-1", days_past_due=days)]
    s = score_report(report(rows), monthly_income=Decimal(5000))
    assert codes(s)[f"was_late_{band}"] == DEFAULT_SCORECARD["repayment_history"]["worst_days_past_due"][band]
    assert codes(s)[f"late_now_{band}"] == DEFAULT_SCORECARD["current_days_past_due"][band]


def test_never_late_needs_a_repayment_record():
    only_applied = report([ev(10, "loan.applied", "L-1", monthly_installment="100.00"), ev(5, "loan.rejected", "L-1")])
    assert "never_late" not in codes(score_report(only_applied, monthly_income=Decimal(1000)))


def test_points_are_clamped_to_the_card_range():
    rows = [disbursed(400 + i, f"L-{i}", "1000.00", "100.00") for i in range(4)]
    rows += [ev(100, "loan.dpd_changed", f"L-{i}", days_past_due=120) for i in range(4)]
    rows += [ev(50, "loan.written_off", f"L-{i}", outstanding_principal="900.00") for i in range(2)]
    rows += [enquiry(d) for d in range(1, 20)]
    s = score_report(report(rows), monthly_income=None)
    assert 600 + sum(r.points for r in s.reasons) < 300
    assert (s.points, s.grade) == (300, "E")


def test_reasons_are_sorted_by_absolute_impact():
    rows = [disbursed(800, "L-1", "5000.00", "500.00"), closed(500, "L-1"),
            disbursed(200, "L-2", "5000.00", "700.00"), ev(100, "loan.dpd_changed", "L-2", days_past_due=12),
            disbursed(100, "L-3", "5000.00", "700.00", mfi="KHOTSO"),
            ev(3, "loan.applied", "L-4", mfi="KHOTSO"),
            enquiry(1), enquiry(2), enquiry(3), enquiry(40), enquiry(41), enquiry(42), enquiry(43)]
    s = score_report(report(rows), monthly_income=Decimal(3000), new_monthly_installment=Decimal(500))
    impacts = [abs(r.points) for r in s.reasons]
    assert impacts == sorted(impacts, reverse=True)
    assert len(s.reasons) >= 7
    assert all(r.points != 0 for r in s.reasons)
    for a, b in itertools.pairwise(s.reasons):  # equal impact: the one that cost points first
        if abs(a.points) == abs(b.points):
            assert (a.points, a.code) <= (b.points, b.code)


def test_results_are_decimal_and_json_safe_and_floats_are_refused():
    s = score_report(report(clean_history()), monthly_income=Decimal(6000), new_monthly_installment=Decimal(600))
    assert isinstance(s.dti, Decimal) and not isinstance(s.dti, float)
    assert isinstance(s.points, int)
    data = s.to_json()
    assert data["dti"] == "0.2333"
    assert json.loads(json.dumps(data)) == data  # plain JSON, no Decimal, no float
    assert data["reasons"][0] == {"code": s.reasons[0].code, "points": s.reasons[0].points,
                                  "text": s.reasons[0].text}
    assert data["card_version"] == s.card_version
    with pytest.raises(TypeError):
        score_report(report([]), monthly_income=5000.0)
    with pytest.raises(TypeError):
        score_report(report([]), monthly_income=Decimal(5000), new_monthly_installment=100.0)


def test_the_module_never_uses_float():
    tree = ast.parse((ROOT / "node/credit/score.py").read_text())
    floats = [n.lineno for n in ast.walk(tree)
              if (isinstance(n, ast.Constant) and isinstance(n.value, float))
              or (isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "float")]
    assert floats == []


def test_deterministic_whatever_the_row_order():
    rows = [*clean_history(), enquiry(3), enquiry(50), disbursed(60, "L-7", "1000.00", "90.00", mfi="KHOTSO"),
            ev(20, "loan.dpd_changed", "L-7", mfi="KHOTSO", days_past_due=8)]
    expected = score_report(report(rows), monthly_income=Decimal(4000), new_monthly_installment=Decimal(250))
    rng = random.Random(7)
    for _ in range(20):
        shuffled = rows[:]
        rng.shuffle(shuffled)
        got = score_report(report(shuffled), monthly_income=Decimal(4000), new_monthly_installment=Decimal(250))
        assert got == expected


def test_the_worked_example_in_the_docs():
    rows = [
        ev(datetime(2023, 2, 20, 9, tzinfo=UTC), "loan.applied", "L-100", principal="3000.00",
           monthly_installment="320.00"),
        disbursed(datetime(2023, 3, 1, 9, tzinfo=UTC), "L-100", "3000.00", "320.00"),
        closed(datetime(2024, 2, 28, 9, tzinfo=UTC), "L-100"),
        disbursed(datetime(2024, 9, 2, 9, tzinfo=UTC), "L-200", "9000.00", "850.00"),
        ev(datetime(2025, 1, 20, 9, tzinfo=UTC), "loan.dpd_changed", "L-200", days_past_due=12),
        ev(datetime(2025, 2, 1, 9, tzinfo=UTC), "loan.repaid", "L-200", days_past_due=0,
           outstanding_principal="6000.00"),
        enquiry(NOW - timedelta(days=4)), enquiry(NOW - timedelta(days=12)), enquiry(NOW - timedelta(days=45)),
    ]
    s = score_report(report(rows), monthly_income=Decimal("4000.00"), new_monthly_installment=Decimal("600.00"))
    assert [(r.code, r.points, r.text) for r in s.reasons] == [
        ("history_length", 40, "On the network for 27 months (since 2023-02-20)."),
        ("was_late_1_30", -20, "A repayment was once 12 days past due (the worst on file)."),
        ("loans_repaid_in_full", 20, "1 loan repaid in full."),
        ("enquiries_last_30_days", -15, "Lenders checked this credit record 2 times in the last 30 days."),
        ("dti_low", 15, ("Repayments on all loans would take 36.25% of declared monthly income "
                         "(M1,450.00 of M4,000.00).")),
    ]
    assert (s.points, s.grade, s.dti) == (640, "C", Decimal("0.3625"))
    doc = (ROOT / "docs/credit-score.md").read_text()
    for r in s.reasons:
        assert f"`{r.code}` — {r.text} | {r.points:+d} |" in doc
    assert "**640: grade C**" in doc


# --- the card -----------------------------------------------------------------------------------------------------


def _leaves(node, path=()):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _leaves(v, (*path, str(k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _leaves(v, (*path, str(i)))
    else:
        yield ".".join(path), node


def test_the_docs_points_table_matches_the_default_card():
    doc = (ROOT / "docs/credit-score.md").read_text()
    rows = {m["key"]: (m["what"], int(m["value"].replace("+", "")))
            for m in re.finditer(r"^\| (?P<what>[^|]+?) \| `(?P<key>[A-Za-z0-9_.]+)` \| (?P<value>[+-]?\d+) \|$", doc,
                                 re.MULTILINE)}
    leaves = dict(_leaves(DEFAULT_SCORECARD))
    ints = {k: v for k, v in leaves.items() if isinstance(v, int)}
    assert set(rows) == set(ints), set(rows) ^ set(ints)  # every whole-number weight, nothing else
    for key, (what, value) in rows.items():
        assert ints[key] == value, key
    for i, band in enumerate(DEFAULT_SCORECARD["debt_to_income"]["bands"]):
        what = rows[f"debt_to_income.bands.{i}.points"][0]
        assert f"≤ {band['max']}" in what
        if i:
            assert f"above {DEFAULT_SCORECARD['debt_to_income']['bands'][i - 1]['max']}" in what
    assert f"above {DEFAULT_SCORECARD['debt_to_income']['bands'][-1]['max']}" in rows["debt_to_income.above"][0]
    assert f"`version` = `{DEFAULT_SCORECARD['version']}`" in doc


def test_card_without_overrides_is_the_default_and_is_never_mutated():
    before = copy.deepcopy(DEFAULT_SCORECARD)
    assert scorecard() == DEFAULT_SCORECARD
    changed = scorecard({"history": {"thin_file": -99}, "debt_to_income": {"bands": [{"max": "1", "points": 1}]}})
    assert changed["history"]["thin_file"] == -99
    assert changed["history"]["repaid_in_full_max"] == 60  # siblings kept (deep merge)
    assert changed["debt_to_income"]["bands"] == [{"max": "1", "points": 1}]  # lists replaced whole
    changed["grades"]["A"] = 1
    assert DEFAULT_SCORECARD == before
    assert card_version(DEFAULT_SCORECARD).startswith("letsema-2025.1+")
    assert card_version(scorecard({"history": {"thin_file": -99}})) != card_version(DEFAULT_SCORECARD)


def test_settings_override_changes_points():
    from django.conf import settings
    from django.test import override_settings

    rows = [disbursed(300, "L-1", "4500.00", "450.00"), ev(100, "loan.written_off", "L-1", outstanding_principal="4500.00")]
    with override_settings():
        del settings.LETSEMA_CREDIT_SCORECARD  # whatever the project settings say: none
        default = scorecard_from_settings()
    assert default == DEFAULT_SCORECARD
    base = score_report(report(rows), monthly_income=Decimal(5000), card=default)
    with override_settings(LETSEMA_CREDIT_SCORECARD={"version": "pilot", "repayment_history": {"write_off_each": -300}}):
        card = scorecard_from_settings()
    assert card["repayment_history"]["write_off_each"] == -300
    assert card["repayment_history"]["worst_days_past_due"] == DEFAULT_SCORECARD["repayment_history"]["worst_days_past_due"]
    s = score_report(report(rows), monthly_income=Decimal(5000), card=card)
    assert codes(s)["write_off_on_file"] == -300
    assert s.points == base.points - 100
    assert s.card_version.startswith("pilot+")


def test_card_passed_directly_changes_points_and_grades():
    rows = clean_history()
    card = scorecard({"grades": {"A": 800, "B": 760}, "history": {"months": {"24_plus": 80}}})
    s = score_report(report(rows), monthly_income=Decimal(6000), new_monthly_installment=Decimal(600), card=card)
    assert codes(s)["history_length"] == 80
    assert (s.points, s.grade) == (790, "B")


@pytest.mark.parametrize(("overrides", "names"), [
    ({"weights": {}}, "'weights'"),
    ({"debt_to_income": {"band": []}}, "debt_to_income.band"),
    ({"history": {"months": {"36_plus": 60}}}, "history.months.36_plus"),
    ({"grades": {"A": 650}}, "grades.A"),  # below B (660)
    ({"grades": {"C": 540}}, "grades.C"),  # equal to D: not strictly descending
    ({"grades": {"E": 100}}, "grades.E"),
    ({"debt_to_income": {"bands": [{"max": "0.50", "points": 1}, {"max": "0.40", "points": 0}]}},
     "debt_to_income.bands[1].max"),
    ({"debt_to_income": {"bands": [{"max": "0.30", "points": 1}, {"max": "0.30", "points": 0}]}},
     "debt_to_income.bands[1].max"),
    ({"debt_to_income": {"bands": [{"max": 0.3, "points": 1}]}}, "debt_to_income.bands[0].max"),
    ({"debt_to_income": {"bands": [{"max": "abc", "points": 1}]}}, "debt_to_income.bands[0].max"),
    ({"debt_to_income": {"bands": [{"max": "0.30", "points": "40"}]}}, "debt_to_income.bands[0].points"),
    ({"debt_to_income": {"bands": [{"max": "0.30"}]}}, "debt_to_income.bands[0]"),
    ({"debt_to_income": {"bands": []}}, "debt_to_income.bands"),
    ({"repayment_history": {"write_off_each": -200.0}}, "repayment_history.write_off_each"),
    ({"repayment_history": {"write_off_each": True}}, "repayment_history.write_off_each"),
    ({"points": {"min": 900}}, "points.min"),
    ({"enquiries": {"last_30_days": {"free": -1}}}, "enquiries.last_30_days.free"),
    ({"version": ""}, "version"),
    ({"history": 5}, "history"),
])
def test_invalid_cards_raise_value_error_naming_the_key(overrides, names):
    with pytest.raises(ValueError, match=re.escape(names)):
        scorecard(overrides)


def test_invalid_settings_card_raises_naming_the_setting():
    from django.test import override_settings

    with override_settings(LETSEMA_CREDIT_SCORECARD={"grades": {"B": 730}}), \
            pytest.raises(ValueError, match=r"LETSEMA_CREDIT_SCORECARD: .*grades\.A \(720\) must be above grades\.B"):
        scorecard_from_settings()
    with override_settings(LETSEMA_CREDIT_SCORECARD=["not", "a", "mapping"]), \
            pytest.raises(ValueError, match="LETSEMA_CREDIT_SCORECARD"):
        scorecard_from_settings()


def test_an_incomplete_card_passed_directly_is_refused():
    card = copy.deepcopy(DEFAULT_SCORECARD)
    del card["enquiries"]["days_31_to_90"]
    with pytest.raises(ValueError, match=r"missing key 'enquiries\.days_31_to_90'"):
        score_report(report([]), monthly_income=Decimal(1), card=card)


def test_money_format():
    assert money(Decimal(3100)) == "M3,100.00"
    assert money(Decimal("1234567.885")) == "M1,234,567.89"  # half-up
    assert money(Decimal(0)) == "M0.00"
    assert money(Decimal("950.5"), "ZAR") == "ZAR 950.50"


def test_module_imports_without_django_configured():
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    code = ("import sys, node.credit.score as s; "
            "assert not [m for m in sys.modules if m == 'django' or m.startswith('django.')], 'django imported'; "
            "print(s.DEFAULT_SCORECARD['version'])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
                         check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == DEFAULT_SCORECARD["version"]


# --- the fold -----------------------------------------------------------------------------------------------------


def test_fold_later_events_win_whatever_the_input_order():
    rows = [ev(100, "loan.applied", "L-1", principal="5000.00", monthly_installment="500.00"),
            ev(90, "loan.approved", "L-1"),
            disbursed(80, "L-1", "5000.00", "500.00"),
            ev(40, "loan.dpd_changed", "L-1", days_past_due=15),
            ev(30, "loan.repaid", "L-1", days_past_due=0, outstanding_principal="2000.00")]
    expected = report(rows)
    for perm in itertools.permutations(rows):
        assert report(list(perm)) == expected
    (line,) = expected.loans
    assert (line.status, line.outstanding, line.current_dpd, line.worst_dpd) == ("active", Decimal("2000.00"), 0, 15)
    assert line.first_seen == NOW - timedelta(days=100)
    assert line.last_event_at == NOW - timedelta(days=30)
    assert line.disbursed_on == (NOW - timedelta(days=80)).date()


def test_fold_ties_on_time_break_on_event_id():
    at = NOW - timedelta(days=5)
    body = {"mfi": "SEBO", "district": "maseru", "loan_ref": "L-1"}
    rows = [RingRow(at, "b", "loan.closed", "maseru", dict(body)),
            RingRow(at, "a", "loan.disbursed", "maseru", {**body, "outstanding_principal": "100.00"})]
    (line,) = report(rows).loans
    assert line.status == "closed"
    assert line.outstanding == Decimal("0.00")


def test_fold_keeps_the_written_off_amount():
    rows = [disbursed(200, "L-1", "5000.00", "500.00"),
            ev(150, "loan.repaid", "L-1", outstanding_principal="4200.00"),
            ev(100, "loan.written_off", "L-1"),  # no amount in the event: the outstanding principal at write-off
            ev(50, "loan.dpd_changed", "L-1", days_past_due=200)]  # a late DPD report changes nothing owed
    r = report(rows)
    (line,) = r.loans
    assert line.status == "written_off"
    assert line.written_off_amount == Decimal("4200.00")
    assert (line.outstanding, line.monthly_installment, line.current_dpd) == (Decimal("0.00"), Decimal("0.00"), 0)
    assert line.worst_dpd == 200
    assert (r.write_offs, r.active_loans, r.total_exposure) == (1, 0, Decimal("0.00"))


@pytest.mark.parametrize("ending", ["loan.rejected", "loan.withdrawn"])
def test_fold_rejected_and_withdrawn_loans_carry_no_exposure(ending):
    rows = [ev(20, "loan.applied", "L-1", principal="5000.00", monthly_installment="500.00",
               outstanding_principal="5000.00"),
            ev(10, ending, "L-1")]
    pending = report(rows[:1])
    assert pending.pending_applications == 1
    r = report(rows)
    (line,) = r.loans
    assert line.status == ending.split(".")[1]
    assert (line.outstanding, line.monthly_installment, line.current_dpd) == (Decimal("0.00"), Decimal("0.00"), 0)
    assert (r.active_loans, r.pending_applications, r.total_exposure, r.monthly_debt_service) == (
        0, 0, Decimal("0.00"), Decimal("0.00"))


def test_fold_ignores_unknown_event_types():
    rows = [disbursed(50, "L-1", "5000.00", "500.00"),
            ev(10, "loan.teleported", "L-1", outstanding_principal="0.00"),  # a newer schema's event
            ev(10, "loan.restructured_v9", "L-NEW", principal="1.00")]
    r = report(rows)
    (line,) = r.loans
    assert (line.loan_key, line.status, line.outstanding) == ("maseru/L-1", "active", Decimal("5000.00"))
    assert r.events_read == 3


def test_fold_enquiries_newest_first_and_naive_times_are_utc():
    naive = datetime(2025, 6, 1, 8, 0)
    rows = [RingRow(naive, "q1", "enquiry", "leribe", {"mfi": "X", "purpose": "collections"}),
            enquiry(2, mfi="Y", district="maseru")]
    r = report(rows)
    assert [e.mfi for e in r.enquiries] == ["Y", "X"]
    assert r.enquiries[1].at == naive.replace(tzinfo=UTC)
    assert r.enquiries[1].district == "leribe"  # from the row when the payload has none
