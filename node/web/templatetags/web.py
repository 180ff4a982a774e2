"""Template helpers of the web interface: money as the borrower reads it (M1,234.50) and status labels."""

from __future__ import annotations

from decimal import Decimal

from django import template
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from node.core.money import to_money

register = template.Library()

#: Symbols shown before amounts; any other currency is shown by its code ("ZAR 1,234.50").
SYMBOLS = {"LSL": "M", "ZMW": "K"}


def format_money(value, currency: str | None = None) -> str:
    """``M1,234.50``: two decimals (rounded by node.core.money's rule), thousands separated by commas, the
    currency's symbol first and the minus sign before it. Floats are refused, as everywhere in Letsema."""
    if value is None or value == "":
        return ""
    amount = to_money(value, 2)
    code = currency or settings.DISTRICT.currency
    symbol = SYMBOLS.get(code)
    text = f"{abs(amount):,.2f}"
    text = f"{symbol}{text}" if symbol else f"{code} {text}"
    return f"-{text}" if amount < 0 else text


@register.filter
def money(value, currency=None) -> str:
    return format_money(value, currency or None)


STATUS_LABELS = {
    "draft": _("Draft"),
    "submitted": _("Submitted"),
    "under_review": _("Under review"),
    "approved": _("Approved"),
    "rejected": _("Rejected"),
    "withdrawn": _("Withdrawn"),
    "active": _("Active"),
    "closed": _("Closed"),
    "written_off": _("Written off"),
    "rescheduled": _("Rescheduled"),
    # installments
    "paid": _("Paid"),
    "partially_paid": _("Partly paid"),
    "overdue": _("Overdue"),
    "due": _("Due today"),
    "upcoming": _("Upcoming"),
}

REASON_LABELS = {
    "insufficient_income": _("Income too low for this loan"),
    "over_indebted": _("Too much debt already"),
    "incomplete_documents": _("Documents incomplete"),
    "identity_not_verified": _("Identity not verified"),
    "poor_credit_history": _("Credit history"),
    "policy": _("Lending policy"),
    "other": _("Other"),
}

CHANNEL_LABELS = {
    "cash": _("Cash"),
    "bank_transfer": _("Bank transfer"),
    "bank": _("Bank"),
    "mobile_money": _("Mobile money"),
    "payroll": _("Payroll deduction"),
    "transfer": _("Transfer from another loan"),
}


@register.filter
def status_label(value) -> str:
    return STATUS_LABELS.get(value, value)


@register.filter
def reason_label(value) -> str:
    return REASON_LABELS.get(value, value)


@register.filter
def channel_label(value) -> str:
    return CHANNEL_LABELS.get(value, value)


@register.filter
def percent(value) -> str:
    """A rate stored in percent (36.000000) as "36%"; a ratio ("0.42") is shown by ratio_percent."""
    from node.core.money import plain

    return f"{plain(Decimal(str(value)))}%" if value not in (None, "") else ""


@register.filter
def ratio_percent(value) -> str:
    if value in (None, ""):
        return ""
    return f"{(Decimal(str(value)) * 100).quantize(Decimal('0.1'))}%"


@register.simple_tag
def district_name() -> str:
    return settings.DISTRICT.name


@register.filter
def report_cell(value, kind) -> str:
    """A report value as read on the page: money as M1,234.50, ratios as 12.34%, counts with separators."""
    from datetime import date

    if value is None or value == "":
        return "—"
    if kind == "money":
        return format_money(value)
    if kind == "ratio":
        return f"{(Decimal(str(value)) * 100).quantize(Decimal('0.01'))}%"
    if kind == "int":
        return f"{int(value):,}"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


@register.filter
def get_item(mapping, key):
    return mapping.get(key) if mapping else None
