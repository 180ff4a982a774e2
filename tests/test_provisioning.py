"""Loan loss provisioning at month ends (node.cob.services.provisions_post): close of business books each MFI's
provision account (1190) to exactly what the month end's classification requires — the regulatory return's
"required provision" — charging the increase to provision expense (5100) and releasing a decrease; at most one entry
per MFI and month; another MFI's loans never count. Real PostgreSQL (the test cluster)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from node.cob.services import month_end_snapshot, provision_for, provisions_post
from node.ledger.chart import LOAN_LOSS_PROVISION, PROVISION_EXPENSE
from node.ledger.models import JournalEntry
from node.ledger.selectors import trial_balance
from node.loans.models import Loan
from tests.loan_fixtures import disbursed, open_shop
from tests.test_reports import _bucket, _out, consenting_borrower, run, section

pytestmark = pytest.mark.django_db


def balances(mfi, as_of) -> tuple[D, D]:
    """(provision account 1190's credit balance, provision expense 5100's debit balance) as of a day; the trial
    balance must balance too."""
    tb = trial_balance(mfi=mfi, as_of=as_of)
    assert tb.total_debit == tb.total_credit
    by = {r.code: r.balance for r in tb.rows}
    return by[LOAN_LOSS_PROVISION], by[PROVISION_EXPENSE]


def lines_of(entry: JournalEntry) -> set[tuple[str, D, D]]:
    return {(x.account.code, x.debit, x.credit) for x in entry.lines.select_related("account")}


def set_dpd(loans: dict, dpds: dict) -> None:
    for name, dpd in dpds.items():
        Loan.objects.filter(pk=loans[name]).update(days_past_due=dpd, delinquency_bucket=_bucket(dpd))


def test_month_ends_book_the_required_provision_and_release_what_is_no_longer_required():
    shop = open_shop("prov")
    users = [shop.borrower_user, consenting_borrower()]  # the network policy allows three loans per borrower
    loans = {name: disbursed(shop, principal="1000.00", n=3, on="2026-01-01", borrower_user=users[i // 2])
             for i, name in enumerate(("a", "b", "c", "d"))}
    other = open_shop("prov-other")
    foreign = disbursed(other, principal="5000.00", n=3, on="2026-01-01")
    Loan.objects.filter(pk=foreign).update(days_past_due=95, delinquency_bucket="90+")

    # January: current, special mention, substandard, doubtful -> 1 % + 5 % + 25 % + 50 % of 1,000.00 each
    set_dpd(loans, {"a": 0, "b": 1, "c": 31, "d": 91})
    jan = date(2026, 1, 31)
    month_end_snapshot(month_end=jan, as_of=jan)
    posted = {p.mfi_code: p for p in provisions_post(month_end=jan)}
    assert set(posted) == {shop.mfi.code, other.mfi.code}
    mine = posted[shop.mfi.code]
    assert (mine.required, mine.booked_before, mine.adjustment) == (D("810.00"), D("0.00"), D("810.00"))
    assert provision_for(D("1000.00"), "substandard") == D("250.00")
    entry = JournalEntry.objects.get(pk=mine.entry_id)
    assert entry.entry_date == jan and entry.source_key == f"provision:{shop.mfi.pk}:2026-01"
    assert lines_of(entry) == {(PROVISION_EXPENSE, D("810.00"), D("0.00")), (LOAN_LOSS_PROVISION, D("0.00"), D("810.00"))}
    assert balances(shop.mfi, jan) == (D("810.00"), D("810.00"))
    assert posted[other.mfi.code].required == D("2500.00")  # 50 % of 5,000.00, on the other MFI's own books
    assert balances(other.mfi, jan) == (D("2500.00"), D("2500.00"))
    # the regulatory return's required provision is what the books now hold
    ret = run(shop.analyst, "regulatory_return", month="2026-01")
    assert D(section(ret, "classification")["total"]["provision"]) == D("810.00")
    charged = {r["group"]: r for r in section(ret, "movements")["rows"]}["provision_charged"]
    assert (charged["count"], D(charged["amount"])) == (1, D("810.00"))
    # the same month again: nothing posted (the source key, and nothing left to change)
    assert provisions_post(month_end=jan) == []
    assert JournalEntry.objects.filter(reference_type="provisioning").count() == 2

    # February: b and d are current again -> 10 + 10 + 250 + 10 = 280.00: 530.00 released
    set_dpd(loans, {"b": 0, "d": 0})
    feb = date(2026, 2, 28)
    month_end_snapshot(month_end=feb, as_of=feb)
    mine = {p.mfi_code: p for p in provisions_post(month_end=feb)}[shop.mfi.code]
    assert (mine.required, mine.booked_before, mine.adjustment) == (D("280.00"), D("810.00"), D("-530.00"))
    assert lines_of(JournalEntry.objects.get(pk=mine.entry_id)) == {
        (LOAN_LOSS_PROVISION, D("530.00"), D("0.00")), (PROVISION_EXPENSE, D("0.00"), D("530.00"))}
    assert balances(shop.mfi, feb) == (D("280.00"), D("280.00"))
    assert balances(shop.mfi, jan) == (D("810.00"), D("810.00"))  # January's books are not rewritten
    ret = run(shop.analyst, "regulatory_return", month="2026-02")
    assert D(section(ret, "classification")["total"]["provision"]) == D("280.00")
    charged = {r["group"]: r for r in section(ret, "movements")["rows"]}["provision_charged"]
    assert (charged["count"], D(charged["amount"])) == (1, D("-530.00"))

    # March: the MFI's loans are all gone (closed): the whole provision is released; the other MFI's is unchanged
    Loan.objects.filter(pk__in=loans.values()).update(status="closed")
    mar = date(2026, 3, 31)
    month_end_snapshot(month_end=mar, as_of=mar)
    posted = {p.mfi_code: p for p in provisions_post(month_end=mar)}
    assert set(posted) == {shop.mfi.code} and posted[shop.mfi.code].adjustment == D("-280.00")
    assert balances(shop.mfi, mar) == (D("0.00"), D("0.00"))
    assert balances(other.mfi, mar) == (D("2500.00"), D("2500.00"))


def test_close_of_business_books_the_provision_once_at_the_month_end(settings):
    from node.cob.models import BusinessDate
    from node.cob.services import cob_close

    shop = open_shop("provcob")
    lid = disbursed(shop, principal="1000.00", n=3, on="2026-01-01")
    BusinessDate.objects.update_or_create(pk=1, defaults={"current": date(2026, 3, 29)})
    res = cob_close(through=date(2026, 3, 30))
    assert "provisions" not in res.summary  # not a month end
    res = cob_close(through=date(2026, 3, 31))
    loan = Loan.objects.get(pk=lid)
    assert loan.days_past_due == 58  # substandard: 25 %
    want = provision_for(_out(lid), "substandard")
    mine = [p for p in res.summary["provisions"] if p["mfi"] == shop.mfi.code]
    assert mine == [{"mfi": shop.mfi.code, "month_end": "2026-03-31", "required": f"{want:.2f}",
                     "adjustment": f"{want:.2f}", "entry": mine[0]["entry"]}]
    assert balances(shop.mfi, date(2026, 3, 31)) == (want, want)
    again = cob_close(through=date(2026, 3, 31))
    assert again.already_closed
    assert JournalEntry.objects.filter(source_key=f"provision:{shop.mfi.pk}:2026-03").count() == 1


def test_no_provisioning_entries_when_the_node_is_configured_not_to_post_them(settings):
    settings.LETSEMA_POST_PROVISIONS = False
    shop = open_shop("provoff")
    lid = disbursed(shop, principal="1000.00", n=3, on="2026-01-01")
    Loan.objects.filter(pk=lid).update(days_past_due=40, delinquency_bucket="31-60")
    month_end_snapshot(month_end=date(2026, 1, 31), as_of=date(2026, 1, 31))
    assert provisions_post(month_end=date(2026, 1, 31)) == []
    assert balances(shop.mfi, date(2026, 1, 31)) == (D("0.00"), D("0.00"))
