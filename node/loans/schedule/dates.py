"""Due dates (Fineract's DefaultScheduledDateGenerator, no holidays/calendars).

* First due date = disbursement date + one period; installment k falls
  ``k * repayment_every`` days / weeks / months after the disbursement date.
* Monthly: the day of month of the disbursement date is kept, clamped to the
  last day of shorter months (31 Jan -> 28/29 Feb -> 31 Mar). Every date is
  computed from the disbursement date, never from the previous (clamped) due
  date; this equals Fineract's ``plusMonths`` + ``CalendarUtils.adjustDate``.
"""

from __future__ import annotations

import calendar
import datetime as _dt

from .inputs import DAYS, MONTHS, WEEKS

__all__ = ["add_months", "due_date", "ideal_disbursement_date", "months_between"]


def add_months(day: _dt.date, months: int) -> _dt.date:
    """``LocalDate.plusMonths``: same day of month, clamped to the month end."""
    index = day.year * 12 + (day.month - 1) + months
    year, month0 = divmod(index, 12)
    month = month0 + 1
    return _dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def due_date(disbursement: _dt.date, frequency: str, every: int, number: int) -> _dt.date:
    """Due date of installment ``number`` (1-based); number 0 is the disbursement."""
    steps = every * number
    if frequency == DAYS:
        return disbursement + _dt.timedelta(days=steps)
    if frequency == WEEKS:
        return disbursement + _dt.timedelta(weeks=steps)
    if frequency == MONTHS:
        return add_months(disbursement, steps)
    raise ValueError(f"unknown repayment frequency {frequency!r}")


def months_between(start: _dt.date, end: _dt.date) -> int:
    """``ChronoUnit.MONTHS.between(start, end)`` for ``start <= end``."""
    months = (end.year - start.year) * 12 + (end.month - start.month)
    if end.day < start.day:
        months -= 1
    return months


def ideal_disbursement_date(first_due: _dt.date, frequency: str, every: int) -> _dt.date:
    """Fineract's "ideal disbursement date": first due date minus one period.

    It differs from the disbursement date only for monthly loans disbursed on
    the 29th-31st whose first due date was clamped (31 Jan -> due 28 Feb ->
    ideal 28 Jan). The cumulative engine starts the *first* period's DAILY
    interest there (see cumulative.py).
    """
    if frequency == DAYS:
        return first_due - _dt.timedelta(days=every)
    if frequency == WEEKS:
        return first_due - _dt.timedelta(weeks=every)
    return add_months(first_due, -every)
