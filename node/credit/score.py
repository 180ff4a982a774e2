"""The explainable credit scorecard: a pure function from a ``CreditReport`` to points, a grade and reasons.

A points scorecard, not a statistical model: the score starts at ``points.base`` and every factor adds or subtracts
whole points from a table (``DEFAULT_SCORECARD``), so each point can be traced to a reason a loan officer can read
to the borrower. Factors:

* repayment history: each written-off loan, and the worst days past due ever seen on any loan;
* days past due now, on active loans;
* the number of other active loans (pending applications elsewhere count lightly);
* debt-to-income: (monthly debt service on active loans + the new installment) / declared monthly income;
* enquiries by lenders in the last 30 days and 31 to 90 days ago;
* length of history on the network (none at all: a thin file) and loans repaid in full.

No database, no ring, no Django models; ``scorecard_from_settings`` imports Django settings lazily. All arithmetic
is ``Decimal`` (never float) and the result depends only on the report, the inputs and the card. The score is not a
lending decision and is not the stacking guard (``node.credit.stacking``), which enforces the network policy on its
own. See docs/credit-score.md.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from node.credit.report import ACTIVE, CreditReport

GRADES = ("A", "B", "C", "D")  # cut-offs; below D's cut-off the grade is E
LOWEST_GRADE = "E"
DPD_BANDS = ("1_30", "31_60", "61_90", "over_90")
MONTH_BANDS = ("0_5", "6_11", "12_23", "24_plus")
DTI_PLACES = Decimal("0.0001")
CENTS = Decimal("0.01")
# a loan that reached disbursement has a repayment record (the "never late" band needs one)
REPAYMENT_RECORD = frozenset({ACTIVE, "closed", "written_off", "rescheduled"})

DEFAULT_SCORECARD: dict = {
    "version": "letsema-2025.1",
    "points": {"base": 600, "min": 300, "max": 850},
    # a score at or above the cut-off gets the grade; below D's cut-off the grade is E
    "grades": {"A": 720, "B": 660, "C": 600, "D": 540},
    "repayment_history": {
        "write_off_each": -200,
        # worst days past due ever, on any loan; "never_late" needs a repayment record and no write-off
        "worst_days_past_due": {"never_late": 30, "1_30": -20, "31_60": -60, "61_90": -100, "over_90": -150},
    },
    # the most days past due now on any active loan (0 days: no points)
    "current_days_past_due": {"1_30": -30, "31_60": -70, "61_90": -110, "over_90": -160},
    "active_loans": {"free": 1, "each_above_free": -35, "pending_each": -10},
    "debt_to_income": {
        # bands by upper bound, inclusive, ascending; above the last one: "above"
        "bands": [
            {"max": "0.30", "points": 40},
            {"max": "0.40", "points": 15},
            {"max": "0.50", "points": 0},
            {"max": "0.70", "points": -50},
        ],
        "above": -100,
        "income_missing": -60,
    },
    "enquiries": {
        "last_30_days": {"free": 1, "each_above_free": -15, "floor": -60},
        "days_31_to_90": {"free": 2, "each_above_free": -5, "floor": -30},
    },
    "history": {
        "thin_file": -40,
        "months": {"0_5": 0, "6_11": 10, "12_23": 25, "24_plus": 40},
        "repaid_in_full_each": 20,
        "repaid_in_full_max": 60,
    },
}


class InvalidScorecard(ValueError):
    """A scorecard (or ``LETSEMA_CREDIT_SCORECARD``) that cannot be used; the message names the key."""


@dataclass(frozen=True)
class Reason:
    code: str  # stable snake_case, e.g. "dti_high"
    points: int  # what this factor added (positive) or took away (negative)
    text: str  # plain English, with the figure, for a loan officer to read to the borrower


@dataclass(frozen=True)
class Score:
    points: int
    grade: str
    reasons: tuple[Reason, ...]  # every factor that moved the score, largest |points| first
    dti: Decimal | None  # None when no income is declared
    card_version: str  # the card's version and a fingerprint of its weights

    def to_json(self) -> dict:
        return {
            "points": self.points,
            "grade": self.grade,
            "reasons": [{"code": r.code, "points": r.points, "text": r.text} for r in self.reasons],
            "dti": str(self.dti) if self.dti is not None else None,
            "card_version": self.card_version,
        }


# --- the card: merging and validation ---------------------------------------------------------------------------


def _deep_merge(base: dict, overrides: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)  # scalars and lists (the DTI bands) are replaced whole
    return merged


def _decimal_string(value, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, Decimal)):
        raise InvalidScorecard(f"scorecard: {where} must be a decimal string such as \"0.30\", got {value!r}")
    try:
        d = Decimal(value)
    except InvalidOperation:
        raise InvalidScorecard(f"scorecard: {where} must be a decimal string such as \"0.30\", got {value!r}") from None
    if not d.is_finite():
        raise InvalidScorecard(f"scorecard: {where} must be a finite number, got {value!r}")
    return d


def _check_shape(card, template, path: str) -> None:
    """Same keys as the template (no unknown, none missing), ints where it has ints."""
    if not isinstance(card, dict):
        raise InvalidScorecard(f"scorecard: {path or 'the card'} must be a mapping, got {type(card).__name__}")
    for key in card:
        if key not in template:
            raise InvalidScorecard(f"scorecard: unknown key {(path + '.' if path else '') + str(key)!r}")
    for key, expected in template.items():
        where = f"{path}.{key}" if path else key
        if key not in card:
            raise InvalidScorecard(f"scorecard: missing key {where!r}")
        value = card[key]
        if isinstance(expected, dict):
            _check_shape(value, expected, where)
        elif isinstance(expected, int):
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidScorecard(f"scorecard: {where} must be a whole number of points, got {value!r}")
        elif isinstance(expected, str) and (not isinstance(value, str) or not value.strip()):
            raise InvalidScorecard(f"scorecard: {where} must be a non-empty string, got {value!r}")
        # lists (the DTI bands) are checked by validate_scorecard


def validate_scorecard(card: dict) -> dict:
    """Check a complete card; return it unchanged, or raise ``ValueError`` naming the offending key."""
    _check_shape(card, DEFAULT_SCORECARD, "")
    p = card["points"]
    if not p["min"] < p["max"]:
        raise InvalidScorecard(f"scorecard: points.min ({p['min']}) must be below points.max ({p['max']})")
    if not p["min"] <= p["base"] <= p["max"]:
        raise InvalidScorecard(f"scorecard: points.base ({p['base']}) must lie between points.min and points.max")
    grades = card["grades"]
    for higher, lower in itertools.pairwise(GRADES):
        if not grades[higher] > grades[lower]:
            raise InvalidScorecard(f"scorecard: grades must be strictly descending: grades.{higher} ({grades[higher]}) "
                             f"must be above grades.{lower} ({grades[lower]})")
    bands = card["debt_to_income"]["bands"]
    if not isinstance(bands, list) or not bands:
        raise InvalidScorecard("scorecard: debt_to_income.bands must be a non-empty list of {\"max\", \"points\"}")
    previous = None
    for i, band in enumerate(bands):
        where = f"debt_to_income.bands[{i}]"
        if not isinstance(band, dict) or set(band) != {"max", "points"}:
            raise InvalidScorecard(f"scorecard: {where} must have exactly the keys \"max\" and \"points\", got {band!r}")
        upper = _decimal_string(band["max"], f"{where}.max")
        if upper <= 0:
            raise InvalidScorecard(f"scorecard: {where}.max must be above 0, got {band['max']!r}")
        if previous is not None and not upper > previous:
            raise InvalidScorecard(f"scorecard: debt_to_income.bands must be strictly ascending: {where}.max "
                             f"({band['max']}) must be above {previous}")
        if isinstance(band["points"], bool) or not isinstance(band["points"], int):
            raise InvalidScorecard(f"scorecard: {where}.points must be a whole number of points, got {band['points']!r}")
        previous = upper
    for group in ("last_30_days", "days_31_to_90"):
        if card["enquiries"][group]["free"] < 0:
            raise InvalidScorecard(f"scorecard: enquiries.{group}.free must be 0 or more")
    if card["active_loans"]["free"] < 0:
        raise InvalidScorecard("scorecard: active_loans.free must be 0 or more")
    return card


def scorecard(overrides: dict | None = None) -> dict:
    """``DEFAULT_SCORECARD`` deep-merged with ``overrides`` (mappings merge key by key; lists are replaced whole),
    validated. Never modifies ``DEFAULT_SCORECARD``."""
    if overrides is None:
        overrides = {}
    if not isinstance(overrides, dict):
        raise InvalidScorecard(f"scorecard: the overrides must be a mapping, got {type(overrides).__name__}")
    return validate_scorecard(_deep_merge(DEFAULT_SCORECARD, overrides))


def scorecard_from_settings() -> dict:
    """The card in force: ``DEFAULT_SCORECARD`` deep-merged with ``settings.LETSEMA_CREDIT_SCORECARD`` if set."""
    # imported here, not at the top: this module must import without Django configured
    from django.conf import settings

    try:
        return scorecard(getattr(settings, "LETSEMA_CREDIT_SCORECARD", None))
    except InvalidScorecard as exc:
        raise InvalidScorecard(f"LETSEMA_CREDIT_SCORECARD: {exc}") from None


def card_version(card: dict) -> str:
    """The card's ``version`` plus a fingerprint of every weight, so two cards with the same label but different
    weights never look alike in an audit trail."""
    canonical = json.dumps(card, sort_keys=True, separators=(",", ":"), default=str)
    return f"{card['version']}+{hashlib.sha256(canonical.encode()).hexdigest()[:10]}"


# --- formatting -----------------------------------------------------------------------------------------------------


def money(amount: Decimal, currency: str = "LSL") -> str:
    """``M3,100.00`` for maloti (LSL); other currencies by code: ``ZAR 3,100.00``."""
    text = f"{amount.quantize(CENTS, rounding=ROUND_HALF_UP):,}"
    return f"M{text}" if currency == "LSL" else f"{currency} {text}"


def _money_by_currency(amounts: dict[str, Decimal]) -> str:
    return " and ".join(money(amounts[c], c) for c in sorted(amounts, key=lambda c: (c != "LSL", c)))


def _percent(ratio: Decimal) -> str:
    """0.6200 -> "62%", 0.3050 -> "30.5%", 0.3004 -> "30.04%": exact, so a figure never looks inside a band it is
    not in."""
    pct = f"{(ratio * 100).quantize(CENTS, rounding=ROUND_HALF_UP):f}"  # always has 2 decimals
    return f"{pct.rstrip('0').rstrip('.')}%"


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def _as_decimal(value, name: str) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, (float, bool)):
        raise TypeError(f"{name} must be a Decimal (or int/str), never {type(value).__name__}")
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _dpd_band(days: int) -> str:
    if days <= 30:
        return "1_30"
    if days <= 60:
        return "31_60"
    if days <= 90:
        return "61_90"
    return "over_90"


def _whole_months(start: datetime, end: datetime) -> int:
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    months = (end.year - start.year) * 12 + end.month - start.month
    if (end.day, end.time()) < (start.day, start.time()):
        months -= 1
    return max(months, 0)


def _month_band(months: int) -> str:
    if months < 6:
        return "0_5"
    if months < 12:
        return "6_11"
    if months < 24:
        return "12_23"
    return "24_plus"


def monthly_dti(total_monthly: Decimal, income: Decimal | None) -> Decimal | None:
    """Repayments / income, 4 places, half-up; None when income is missing or not above zero."""
    if income is None or income <= 0:
        return None
    return (total_monthly / income).quantize(DTI_PLACES, rounding=ROUND_HALF_UP)


# --- the score ------------------------------------------------------------------------------------------------------


def _factors(report: CreditReport, income: Decimal | None, new_installment: Decimal, card: dict):
    """Yield (code, points, text) for every factor; zero-point ones are dropped by the caller."""
    others = report.other_loans

    # (a) repayment history
    rh = card["repayment_history"]
    written_off = [x for x in others if x.status == "written_off"]
    if written_off:
        owed: dict[str, Decimal] = {}
        for x in written_off:
            owed[x.currency] = owed.get(x.currency, Decimal(0)) + x.written_off_amount
        recovered: dict[str, Decimal] = {}
        for x in written_off:
            if x.recovered_amount > 0:
                recovered[x.currency] = recovered.get(x.currency, Decimal(0)) + x.recovered_amount
        if len(written_off) == 1:
            x = written_off[0]
            text = (f"A loan was written off with {_money_by_currency(owed)} unpaid "
                    f"(loan {x.loan_ref} at {x.mfi or 'another lender'}).")
        else:
            text = (f"{len(written_off)} loans were written off with {_money_by_currency(owed)} unpaid in total "
                    f"(loans {', '.join(x.loan_ref for x in written_off)}).")
        if recovered:  # the write-off stays on file; what was collected since is stated, not scored
            text = text[:-1] + f"; {_money_by_currency(recovered)} has been recovered since."
        yield "write_off_on_file", rh["write_off_each"] * len(written_off), text

    worst = report.worst_dpd
    if worst > 0:
        band = _dpd_band(worst)
        yield (f"was_late_{band}", rh["worst_days_past_due"][band],
               f"A repayment was once {_plural(worst, 'day')} past due (the worst on file).")
    else:
        with_record = [x for x in others if x.status in REPAYMENT_RECORD or x.disbursed_on is not None]
        if with_record and not written_off:
            yield ("never_late", rh["worst_days_past_due"]["never_late"],
                   f"No repayment has ever been late on the {_plural(len(with_record), 'loan')} on file.")

    # (b) days past due now, on active loans
    now_late = report.current_dpd
    if now_late > 0:
        band = _dpd_band(now_late)
        yield (f"late_now_{band}", card["current_days_past_due"][band],
               f"An active loan is {_plural(now_late, 'day')} past due now.")

    # (c) other active loans and pending applications
    al = card["active_loans"]
    active = report.active_loans
    above = max(0, active - al["free"])
    if above:
        yield ("many_active_loans", al["each_above_free"] * above,
               (f"There {'is' if active == 1 else 'are'} already {_plural(active, 'other active loan')} "
                f"({money(report.total_exposure)} still owed); more than {al['free']} counts against the score."))
    pending = report.pending_applications
    if pending:
        yield ("pending_applications", al["pending_each"] * pending,
               f"{_plural(pending, 'other loan application')} {'is' if pending == 1 else 'are'} still pending.")

    # (d) debt-to-income
    dt = card["debt_to_income"]
    total = report.monthly_debt_service + new_installment
    dti = monthly_dti(total, income)
    if dti is None:
        declared = "No monthly income is declared" if income is None else f"Declared monthly income is {money(income)}"
        yield ("income_missing", dt["income_missing"],
               f"{declared}, so affordability of repayments of {money(total)} a month could not be checked.")
    else:
        points, inside = dt["above"], False
        for band in dt["bands"]:
            if dti <= Decimal(band["max"]):
                points, inside = band["points"], True
                break
        code = "dti_low" if points > 0 else ("dti_high" if inside else "dti_very_high")
        yield (code, points, (f"Repayments on all loans would take {_percent(dti)} of declared monthly income "
                              f"({money(total)} of {money(income)})."))

    # (e) enquiries
    eq = card["enquiries"]
    within_30, within_90 = report.enquiries_within(30), report.enquiries_within(90)
    for group, count, when in (("last_30_days", within_30, "in the last 30 days"),
                               ("days_31_to_90", within_90 - within_30, "between 31 and 90 days ago")):
        rule = eq[group]
        above = max(0, count - rule["free"])
        if above:
            yield (f"enquiries_{group}", max(rule["floor"], rule["each_above_free"] * above),
                   f"Lenders checked this credit record {_plural(count, 'time')} {when}.")

    # (f) length of history and loans repaid in full
    hi = card["history"]
    first_seen = report.first_seen
    if first_seen is None:
        yield "thin_file", hi["thin_file"], "No earlier loans on the network: there is no credit history to go on."
    else:
        months = _whole_months(first_seen, report.as_of)
        yield ("history_length", hi["months"][_month_band(months)],
               f"On the network for {_plural(months, 'month')} (since {first_seen.astimezone(UTC).date().isoformat()}).")
    repaid = report.closed_loans
    if repaid:
        yield ("loans_repaid_in_full", min(hi["repaid_in_full_max"], hi["repaid_in_full_each"] * repaid),
               f"{_plural(repaid, 'loan')} repaid in full.")


def score_report(report: CreditReport, *, monthly_income: Decimal | None,
                 new_monthly_installment: Decimal = Decimal(0), card: dict | None = None) -> Score:
    """Score ``report``. ``monthly_income``: the borrower's declared income (None or 0: the income-missing band);
    ``new_monthly_installment``: the application being assessed, added to the debt service; ``card``: a complete
    card (``scorecard(...)`` / ``scorecard_from_settings()``), default ``DEFAULT_SCORECARD``."""
    card = validate_scorecard(DEFAULT_SCORECARD if card is None else card)
    income = _as_decimal(monthly_income, "monthly_income")
    new_installment = _as_decimal(new_monthly_installment, "new_monthly_installment") or Decimal(0)
    reasons = [Reason(code, points, text) for code, points, text in _factors(report, income, new_installment, card)
               if points != 0]
    reasons.sort(key=lambda r: (-abs(r.points), r.points, r.code))  # ties: the adverse reason first
    p = card["points"]
    points = min(p["max"], max(p["min"], p["base"] + sum(r.points for r in reasons)))
    grade = next((g for g in GRADES if points >= card["grades"][g]), LOWEST_GRADE)
    dti = monthly_dti(report.monthly_debt_service + new_installment, income)
    return Score(points=points, grade=grade, reasons=tuple(reasons), dti=dti, card_version=card_version(card))
