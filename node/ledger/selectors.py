"""Reads of the general ledger: accounts, trial balance, account statements. Totals are computed by PostgreSQL
(aggregates and a running-sum window), never by looping over all lines in Python."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from django.conf import settings
from django.db.models import DecimalField, F, Q, QuerySet, Sum, Value, Window
from django.db.models.expressions import RowRange
from django.db.models.functions import Coalesce

from node.core.errors import NotFound, ValidationFailed
from node.ledger.models import Account, JournalLine, NormalBalance, normal_balance_for

if TYPE_CHECKING:
    from node.mfis.models import Mfi
    from node.users.models import User

ACCOUNT_NOT_FOUND = "No such account."
_MONEY = DecimalField(max_digits=22, decimal_places=2)
_ZERO = Decimal("0.00")


def _signed(normal_balance: str, debit: Decimal, credit: Decimal) -> Decimal:
    """A balance in the account's normal direction (positive = the usual side)."""
    return debit - credit if normal_balance == NormalBalance.DEBIT else credit - debit


# --- accounts --------------------------------------------------------------------------------------------------

def account_list(*, mfi: Mfi) -> QuerySet[Account]:
    return Account.objects.filter(mfi=mfi).order_by("code")


def access_account_by_code(*, actor: User, code: str) -> Account:
    """The actor's own MFI's account ``code``; NotFound otherwise (another MFI's account answers exactly like a
    missing one — the lookup is always scoped to ``actor.mfi``)."""
    if getattr(actor, "mfi_id", None) is None:
        raise NotFound(ACCOUNT_NOT_FOUND)
    account = Account.objects.filter(mfi_id=actor.mfi_id, code=str(code)).first()
    if account is None:
        raise NotFound(ACCOUNT_NOT_FOUND)
    return account


# --- trial balance ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TrialBalanceRow:
    code: str
    name: str
    type: str
    normal_balance: str
    is_active: bool
    debit: Decimal  # total debits up to the date
    credit: Decimal  # total credits up to the date
    balance: Decimal  # in the account's normal direction

    @property
    def debit_balance(self) -> Decimal:
        """The net balance when it is a debit balance (classic two-column trial balance), else 0."""
        return max(self.debit - self.credit, _ZERO)

    @property
    def credit_balance(self) -> Decimal:
        return max(self.credit - self.debit, _ZERO)


@dataclass(frozen=True)
class TrialBalance:
    mfi_code: str
    as_of: dt.date
    currency: str
    rows: list[TrialBalanceRow]
    total_debit: Decimal
    total_credit: Decimal

    @property
    def difference(self) -> Decimal:
        return self.total_debit - self.total_credit

    @property
    def balanced(self) -> bool:
        return self.total_debit == self.total_credit

    def row(self, code: str) -> TrialBalanceRow:
        return next(r for r in self.rows if r.code == code)


def trial_balance(*, mfi: Mfi, as_of: dt.date) -> TrialBalance:
    """Every account of ``mfi`` with its debit and credit totals over entries dated up to ``as_of`` (one query)."""
    upto = Q(lines__entry__entry_date__lte=as_of)
    accounts = (
        Account.objects.filter(mfi=mfi).order_by("code")
        .annotate(
            total_debit=Coalesce(Sum("lines__debit", filter=upto), Value(_ZERO), output_field=_MONEY),
            total_credit=Coalesce(Sum("lines__credit", filter=upto), Value(_ZERO), output_field=_MONEY),
        )
        .values_list("code", "name", "type", "is_contra", "is_active", "total_debit", "total_credit")
    )
    rows = []
    for code, name, type_, is_contra, is_active, debit, credit in accounts:  # one row per account, not per line
        side = normal_balance_for(type_, is_contra)
        rows.append(TrialBalanceRow(code=code, name=name, type=type_, normal_balance=side, is_active=is_active,
                                    debit=debit, credit=credit, balance=_signed(side, debit, credit)))
    return TrialBalance(
        mfi_code=mfi.code, as_of=as_of, currency=settings.DISTRICT.currency, rows=rows,
        total_debit=sum((r.debit for r in rows), _ZERO), total_credit=sum((r.credit for r in rows), _ZERO),
    )


# --- account statement -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class StatementLine:
    entry_id: int
    entry_date: dt.date
    description: str
    reference_type: str
    reference_id: str
    memo: str
    debit: Decimal
    credit: Decimal
    balance: Decimal  # running balance after this line, in the account's normal direction


@dataclass(frozen=True)
class Statement:
    account: Account
    date_from: dt.date
    date_to: dt.date
    opening_balance: Decimal
    lines: list[StatementLine]
    total_debit: Decimal
    total_credit: Decimal
    closing_balance: Decimal

    @property
    def normal_balance(self) -> str:
        return self.account.normal_balance


def account_statement(*, mfi: Mfi, account_code: str, date_from: dt.date, date_to: dt.date) -> Statement:
    """Lines of one account with business dates in ``[date_from, date_to]``, in posting order, with the opening
    balance (everything before ``date_from``), a running balance and the closing balance — all in the account's
    normal direction. Three queries: the account, the opening aggregate, the lines with a window sum."""
    if date_from > date_to:
        raise ValidationFailed("'from' must not be after 'to'.",
                               details={"fields": {"from": ["must not be after 'to'"]}})
    account = Account.objects.filter(mfi=mfi, code=str(account_code)).first()
    if account is None:
        raise NotFound(ACCOUNT_NOT_FOUND)
    side = account.normal_balance

    opening = JournalLine.objects.filter(account=account, entry__entry_date__lt=date_from).aggregate(
        debit=Coalesce(Sum("debit"), Value(_ZERO), output_field=_MONEY),
        credit=Coalesce(Sum("credit"), Value(_ZERO), output_field=_MONEY),
    )
    opening_balance = _signed(side, opening["debit"], opening["credit"])

    order = [F("entry__entry_date").asc(), F("entry_id").asc(), F("id").asc()]
    net = F("debit") - F("credit") if side == NormalBalance.DEBIT else F("credit") - F("debit")
    rows = (
        JournalLine.objects.filter(account=account, entry__entry_date__gte=date_from, entry__entry_date__lte=date_to)
        .annotate(running=Window(Sum(net, output_field=_MONEY), order_by=order, frame=RowRange(start=None, end=0)))
        .order_by(*order)
        .values_list("entry_id", "entry__entry_date", "entry__description", "entry__reference_type",
                     "entry__reference_id", "memo", "debit", "credit", "running")
    )
    lines = [
        StatementLine(entry_id=entry_id, entry_date=entry_date, description=description,
                      reference_type=ref_type, reference_id=ref_id, memo=memo, debit=debit, credit=credit,
                      balance=opening_balance + running)
        for entry_id, entry_date, description, ref_type, ref_id, memo, debit, credit, running in rows
    ]
    total_debit = sum((line.debit for line in lines), _ZERO)
    total_credit = sum((line.credit for line in lines), _ZERO)
    return Statement(
        account=account, date_from=date_from, date_to=date_to, opening_balance=opening_balance, lines=lines,
        total_debit=total_debit, total_credit=total_credit,
        closing_balance=opening_balance + _signed(side, total_debit, total_credit),
    )
