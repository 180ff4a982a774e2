"""Reports (node/reports): figures against a hand-made portfolio (boundary days included), every export opened the
way an analyst's tools open it, parameter allowlists, who may run what, the month-end classification close of
business keeps for the regulatory return, and a network report over the real test-cluster nodes."""

from __future__ import annotations

import csv
import io
from datetime import date

from django.db.models import F
from decimal import Decimal as D

import pytest
import requests
from openpyxl import load_workbook
from pypdf import PdfReader

from node.cob.models import MonthEndPortfolio
from node.cob.services import month_end_snapshot, month_ends_between, portfolio_day_snapshot
from node.loans.models import Loan, LoanInstallment
from node.borrowers.models import Borrower
from node.repayments.models import RepaymentAllocation
from node.users.models import Role, User
from rest_framework.test import APIClient
from tests.borrower_factory import payload
from tests.conftest import wait_for
from tests.factories import PASSWORD, client_for, make_user
from tests.federation_helpers import manage
from tests.loan_fixtures import apply, disbursed, err, key, open_shop, post

BASE = "/api/v1/reports/"


def _out(lid: int) -> D:
    return sum((i.principal - i.principal_paid for i in LoanInstallment.objects.filter(loan_id=lid)), D("0.00"))


def run(user, name, **params):
    r = client_for(user).get(f"{BASE}{name}", params)
    assert r.status_code == 200, r.content
    return r.json()


def section(body, key="par"):
    return next(s for s in body["sections"] if s["key"] == key)


def row(sec, group):
    return next(r for r in sec["rows"] if r["group"] == group)


def repay(shop, lid, amount, on):
    r = post(shop.officer, f"/api/v1/loans/{lid}/repayments", {"amount": amount, "payment_date": on,
                                                               "channel": "cash"}, idem=key())
    assert r.status_code == 201, r.content
    return r.json()


def consenting_borrower() -> User:
    """A borrower registered on the node who has consented to credit checks (their web account)."""
    data = payload(password=PASSWORD)
    assert APIClient().post("/api/v1/borrowers/register", data, format="json").status_code == 201
    u = User.objects.get(username=data["phone"])
    b = Borrower.objects.get(user=u)
    assert client_for(u).post(f"/api/v1/borrowers/{b.pk}/consents/", {"version": 1, "language": "en"},
                              format="json").status_code == 201
    return u


@pytest.fixture
def book(db, _book):
    """One MFI with loans at boundary days past due (as close of business would set them); a second MFI whose
    loans must never show in the first one's reports. Built once for the module (conftest ``module_db``); each
    test's own changes are rolled back after it."""
    return _book


@pytest.fixture(scope="module")
def _book(module_db):
    shop = open_shop("rep")
    # three loans per borrower (the network policy): the shop's borrower and two more
    users = [shop.borrower_user, consenting_borrower(), consenting_borrower()]
    dpds = [0, 1, 2, 30, 31, 61, 91]
    loans = []
    for i, dpd in enumerate(dpds):
        lid = disbursed(shop, principal="1000.00", n=3, on="2026-01-01", borrower_user=users[i // 3])
        Loan.objects.filter(pk=lid).update(days_past_due=dpd, delinquency_bucket=_bucket(dpd))
        loans.append(lid)
    other = open_shop("oth")
    foreign = disbursed(other, principal="5000.00", n=3, on="2026-01-01")
    Loan.objects.filter(pk=foreign).update(days_past_due=95, delinquency_bucket="90+")
    return shop, dict(zip(dpds, loans)), other


def kept_outstanding(loan_ids) -> dict:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT id, principal_outstanding FROM loans_loan WHERE id = ANY(%s)", [list(loan_ids)])
        return dict(cur.fetchall())


def assert_outstanding_kept(mfi) -> None:
    ids = list(Loan.objects.filter(mfi=mfi).values_list("pk", flat=True))
    kept = kept_outstanding(ids)
    assert ids and all(kept[i] == _out(i) for i in ids), {i: (kept[i], _out(i)) for i in ids}


def test_outstanding_principal_is_kept_by_the_database(book):
    """Whatever writes installments (one row, many loans in one statement, deletes), the loan's column follows."""
    shop, loans, _ = book
    assert_outstanding_kept(shop.mfi)
    assert kept_outstanding([loans[0]])[loans[0]] == D("1000.00")
    LoanInstallment.objects.filter(loan_id__in=[loans[0], loans[1]], number__gte=1).update(
        principal_paid=F("principal") - D("1.00"))
    assert kept_outstanding([loans[0], loans[1]]) == {loans[0]: D("3.00"), loans[1]: D("3.00")}
    LoanInstallment.objects.filter(loan_id=loans[2], number=3).update(principal=F("principal") + D("10.00"))
    assert kept_outstanding([loans[2]])[loans[2]] == D("1010.00")
    assert_outstanding_kept(shop.mfi)


def _bucket(dpd):
    return "current" if dpd == 0 else "1-30" if dpd <= 30 else "31-60" if dpd <= 60 else "61-90" if dpd <= 90 else "90+"


def test_par_counts_more_than_n_days_and_only_the_analysts_mfi(book):
    shop, loans, _ = book
    LoanInstallment.objects.filter(loan_id=loans[31], number=1).update(principal_paid=D("100.00"))
    body = run(shop.analyst, "par")
    assert body["scope"] == "node" and body["params"]["by"] == "mfi" and body["params"]["mfi"] == shop.mfi.code
    sec = section(body)
    assert [r["group"] for r in sec["rows"]] == [shop.mfi.code]  # the other MFI's loan is not here
    r = row(sec, shop.mfi.code)
    assert r["loans"] == 7 and D(r["outstanding"]) == D("6900.00")
    # PAR1: more than 1 day -> 2, 30, 31, 61, 91 (1 is not); PAR30: 31 (900 left), 61, 91
    assert D(r["at_risk_1"]) == D("4900.00") and D(r["at_risk_30"]) == D("2900.00")
    assert D(r["at_risk_60"]) == D("2000.00") and D(r["at_risk_90"]) == D("1000.00")
    assert r["loans_at_risk_30"] == 3
    assert r["par_30"] == "0.4203"  # 2900 / 6900 = 0.42028... rounded once
    assert r["par_1"] == "0.7101" and r["par_90"] == "0.1449"
    assert sec["total"]["par_30"] == "0.4203" and D(sec["total"]["outstanding"]) == D("6900.00")


def test_par_by_product_and_officer(book):
    shop, loans, _ = book
    sec = section(run(shop.analyst, "par", by="product"))
    assert [r["group"] for r in sec["rows"]] == [f"{shop.mfi.code} / salary-12"]
    sec = section(run(shop.analyst, "par", by="officer"))
    assert [r["group"] for r in sec["rows"]] == [shop.officer.username]  # the officer approved every loan
    assert sec["rows"][0]["loans"] == 7


def test_par_trend_from_the_days_close_of_business_kept(book):
    """Each close keeps the portfolio's risk of its day (``portfolio_day_snapshot``, the PAR report's measures); the
    trend shows, per period, the last closed day of the period — here a month that got worse, one with no close, and
    one that got better, against the live PAR of the same loans."""
    from node.cob.models import PortfolioDay
    from node.cob.services import portfolio_day_snapshot

    shop, loans, other = book
    portfolio_day_snapshot(day=date(2026, 1, 20))  # the book as built: PAR30 2900-ish
    Loan.objects.filter(pk=loans[31]).update(days_past_due=0, delinquency_bucket="current")  # caught up
    portfolio_day_snapshot(day=date(2026, 1, 31))  # the month's last close wins over the 20th
    Loan.objects.filter(pk__in=[loans[0], loans[1], loans[2]]).update(days_past_due=45, delinquency_bucket="31-60")
    portfolio_day_snapshot(day=date(2026, 3, 31))
    again = portfolio_day_snapshot(day=date(2026, 3, 31))  # a day kept twice replaces its rows, never adds
    assert again == PortfolioDay.objects.filter(business_date=date(2026, 3, 31)).count() == 2  # two MFIs
    body = run(shop.analyst, "par_trend", period="month", **{"from": "2026-01-01", "to": "2026-03-31"})
    assert body["as_of"] == "2026-01-01 – 2026-03-31" and body["params"]["mfi"] == shop.mfi.code
    sec = section(body, "trend")
    assert [r["group"] for r in sec["rows"]] == ["2026-01-01", "2026-02-01", "2026-03-01"]
    jan, feb, mar = sec["rows"]
    assert jan["loans"] == 7 and D(jan["outstanding"]) == D("7000.00")
    # January as of the 31st: 61 and 91 over 30 days (31 caught up), the other MFI's 95-day loan not here
    assert D(jan["at_risk_30"]) == D("2000.00") and jan["loans_at_risk_30"] == 2 and jan["par_30"] == "0.2857"
    assert jan["par_1"] == "0.5714"  # 2, 30, 61, 91 over 1 day: 4000 / 7000
    assert feb["loans"] == 0 and feb["par_30"] is None  # no close of business kept a day in February
    assert D(mar["at_risk_30"]) == D("5000.00") and mar["par_30"] == "0.7143"  # 0, 1, 2 at 45 days, 61, 91
    live = row(section(run(shop.analyst, "par")), shop.mfi.code)  # the same measures as the PAR report now
    assert {k: live[k] for k in ("loans", "outstanding", "at_risk_1", "at_risk_30", "at_risk_90", "par_30")} == {
        k: mar[k] for k in ("loans", "outstanding", "at_risk_1", "at_risk_30", "at_risk_90", "par_30")}
    # by day: only the days kept
    days = section(run(shop.analyst, "par_trend", period="day", **{"from": "2026-01-19", "to": "2026-01-21"}),
                   "trend")
    assert [(r["group"], r["loans"]) for r in days["rows"]] == [("2026-01-19", 0), ("2026-01-20", 7),
                                                                 ("2026-01-21", 0)]
    # as a file: one row per month, PAR as in the table
    r = client_for(shop.analyst).get(f"{BASE}par_trend", {"period": "month", "from": "2026-01-01",
                                                            "to": "2026-03-31", "export": "xlsx"})
    assert r.status_code == 200 and r.content[:2] == b"PK"
    ws = load_workbook(io.BytesIO(r.content))["PAR trend"]
    header = [c.value for c in ws[1]]
    assert header[0] == "Period starting" and "PAR30" in header
    par30 = [ws.cell(row=i, column=header.index("PAR30") + 1).value for i in range(2, 5)]
    assert [None if v is None else D(str(v)) for v in par30] == [D("0.2857"), None, D("0.7143")]
    # a Letsema admin over the whole node sees both MFIs
    admin = client_for(make_user(Role.LETSEMA_ADMIN))
    whole = admin.get(f"{BASE}par_trend", {"period": "month", "from": "2026-03-01", "to": "2026-03-31"}).json()
    assert section(whole, "trend")["rows"][0]["loans"] == 8


def test_aging_buckets_and_arrears(book):
    shop, loans, _ = book
    sec = section(run(shop.analyst, "aging"), "aging")
    assert [r["group"] for r in sec["rows"]] == ["current", "1-30", "31-60", "61-90", "90+"]
    assert [r["loans"] for r in sec["rows"]] == [1, 3, 1, 1, 1]  # 0 | 1, 2, 30 | 31 | 61 | 91
    assert D(row(sec, "1-30")["outstanding"]) == D("3000.00")
    assert row(sec, "1-30")["share"] == "0.4286"  # 3000 / 7000
    # every installment of these loans is past due: arrears = all unpaid amounts of the loans close of business
    # found past due (the current one has none)
    unpaid = sum((i.principal + i.interest + i.fees + i.penalties - i.principal_paid - i.interest_paid
                  - i.fees_paid - i.penalties_paid) for i in
                 LoanInstallment.objects.filter(loan__mfi=shop.mfi, number__gte=1, loan__days_past_due__gt=0))
    assert unpaid > 0 and row(sec, "current")["arrears"] == "0.00"
    assert D(sec["total"]["arrears"]) == unpaid
    assert sec["total"]["share"] == "1.0000"


def test_flows_demand_collection_and_repayment_rate(book):
    shop, loans, _ = book
    on_time, late, reversed_ = loans[0], loans[1], loans[2]
    first = LoanInstallment.objects.get(loan_id=on_time, number=1)
    due1 = first.principal + first.interest + first.fees
    repay(shop, on_time, str(due1), "2026-02-01")  # on the due date: on time
    repay(shop, late, "150.00", "2026-02-10")
    rev = repay(shop, reversed_, "99.00", "2026-02-12")
    r = post(shop.admin, f"/api/v1/repayments/{rev['id']}/reverse", {"reason": "bounced"}, idem=key())
    assert r.status_code == 200, r.content
    body = run(shop.analyst, "flows", period="month", **{"from": "2026-01-01", "to": "2026-03-31"})
    sec = section(body, "flows")
    assert [r["group"] for r in sec["rows"]] == ["2026-01-01", "2026-02-01", "2026-03-01"]
    jan, feb, mar = sec["rows"]
    assert jan["disbursed_loans"] == 7 and D(jan["disbursed"]) == D("7000.00") and jan["repayments"] == 0
    assert feb["repayments"] == 2 and D(feb["collected"]) == due1 + D("150.00")  # the reversed one is left out
    assert mar["repayments"] == 0 and D(mar["collected"]) == 0
    assert D(feb["collected"]) == D(feb["collected_principal"]) + D(feb["collected_interest"]) + D(
        feb["collected_fees_penalties"])
    assert_outstanding_kept(shop.mfi)  # the trigger-kept figure followed repayments and the reversal
    # expected vs collected: February's dues against what was paid on them, and by the due date
    body = run(shop.analyst, "demand_collection", period="month", **{"from": "2026-02-01", "to": "2026-02-28"})
    d = section(body, "demand")["rows"][0]
    febs = list(LoanInstallment.objects.filter(loan__mfi=shop.mfi, number__gte=1, due_date__month=2,
                                               due_date__year=2026))
    assert d["installments"] == 7 == len(febs)
    assert D(d["due"]) == sum(i.principal + i.interest + i.fees for i in febs)
    paid = sum(i.principal_paid + i.interest_paid + i.fees_paid for i in febs)
    assert D(d["paid"]) == paid and paid > due1  # the late payment counts as paid, not on time
    on_time_paid = sum(a.principal + a.interest + a.fees for a in RepaymentAllocation.objects.filter(
        installment__in=febs, repayment__reversed_at__isnull=True,
        repayment__payment_date__lte=date(2026, 2, 1)))
    assert D(d["paid_on_time"]) == on_time_paid == due1
    assert d["collection_rate"] == str((paid / D(d["due"])).quantize(D("0.0001")))
    # repayment rate over everything due so far, by MFI
    rate = section(run(shop.analyst, "repayment_rate"), "rate")
    dues = LoanInstallment.objects.filter(loan__mfi=shop.mfi, number__gte=1)
    assert D(rate["rows"][0]["due"]) == sum(i.principal + i.interest + i.fees for i in dues)
    assert D(rate["rows"][0]["paid_on_time"]) == due1


def test_risk_grades(book):
    shop, loans, _ = book
    Loan.objects.filter(pk__in=[loans[0], loans[1]]).update(risk_grade="A")
    Loan.objects.filter(pk=loans[31]).update(risk_grade="D")
    pending = apply(shop, principal="800.00", n=3)
    assert post(shop.borrower_user, f"/api/v1/loans/{pending}/submit").status_code == 200
    Loan.objects.filter(pk=pending).update(risk_grade="E")
    sec = section(run(shop.analyst, "risk_grades"), "grades")
    assert [r["group"] for r in sec["rows"]] == ["A", "B", "C", "D", "E", "—"]
    a, d, e, none = row(sec, "A"), row(sec, "D"), row(sec, "E"), row(sec, "—")
    assert a["applications"] == 2 and a["approved"] == 2 and a["active"] == 2 and a["approval_rate"] == "1.0000"
    assert d["par_30"] == "1.0000" and e["applications"] == 1 and e["approved"] == 0 and e["approval_rate"] == "0.0000"
    assert none["applications"] == 0 and none["approved"] == 4  # approved before any grade was kept


def test_loan_list_by_status(book):
    shop, loans, other = book
    body = run(shop.analyst, "loans", status="active")
    sec = body["sections"][0]
    assert sec["count"] == 7 and len(sec["rows"]) == 7
    assert {r["reference"] for r in sec["rows"]} == set(Loan.objects.filter(pk__in=loans.values())
                                                        .values_list("reference", flat=True))
    assert {r["days_past_due"] for r in sec["rows"]} == set(loans)
    assert run(shop.analyst, "loans", status="closed")["sections"][0]["count"] == 0


def test_regulatory_return_from_the_month_end_snapshot(book):
    shop, loans, _ = book
    end = date(2026, 1, 31)
    month_end_snapshot(month_end=end, as_of=end)
    body = run(shop.analyst, "regulatory_return", month="2026-01")
    assert body["as_of"] == "2026-01-31" and body["notes"] == []
    cls = section(body, "classification")
    assert [r["group"] for r in cls["rows"]] == ["current", "special_mention", "substandard", "doubtful", "loss"]
    assert [r["loans"] for r in cls["rows"]] == [1, 3, 2, 1, 0]  # 0 | 1, 2, 30 | 31, 61 | 91 | -
    sub = row(cls, "substandard")
    assert D(sub["outstanding"]) == D("2000.00") and sub["provision_rate"] == "0.2500"
    assert D(sub["provision"]) == D("500.00")
    assert D(cls["total"]["provision"]) == D("10.00") + D("150.00") + D("500.00") + D("500.00")
    assert cls["total"]["provision_rate"] is None
    mv = {r["group"]: r for r in section(body, "movements")["rows"]}
    assert mv["disbursed"]["count"] == 7 and D(mv["disbursed"]["amount"]) == D("7000.00")
    # a month close of business has not closed: a clear refusal, not an empty return
    e = err(client_for(shop.analyst).get(f"{BASE}regulatory_return", {"month": "2025-06"}), 409, "month_not_closed")
    assert "2025-06" in e["message"]
    # one run over the month end classifies as of its own day, and says so
    month_end_snapshot(month_end=date(2026, 2, 28), as_of=date(2026, 3, 2))
    assert "2026-03-02" in run(shop.analyst, "regulatory_return", month="2026-02")["notes"][0]


def test_cob_keeps_a_month_end_classification():
    assert month_ends_between(date(2026, 1, 30), date(2026, 1, 31)) == [date(2026, 1, 31)]
    assert month_ends_between(date(2026, 1, 31), date(2026, 2, 27)) == []
    assert month_ends_between(date(2026, 1, 15), date(2026, 3, 2)) == [date(2026, 1, 31), date(2026, 2, 28)]
    assert month_ends_between(None, date(2026, 4, 30)) == [date(2026, 4, 30)]
    assert month_ends_between(None, date(2026, 4, 29)) == []
    assert month_ends_between(date(2027, 12, 31), date(2028, 1, 31)) == [date(2028, 1, 31)]


@pytest.mark.django_db
def test_close_of_business_writes_the_snapshot_at_a_month_end():
    from node.cob.models import BusinessDate
    from node.cob.services import cob_close

    shop = open_shop("cob")
    lid = disbursed(shop, principal="1000.00", n=3, on="2026-01-01")
    BusinessDate.objects.update_or_create(pk=1, defaults={"current": date(2026, 3, 30)})
    res = cob_close(through=date(2026, 3, 31))
    assert res.completed and res.summary["month_end_snapshots"] == ["2026-03-31"]
    snap = MonthEndPortfolio.objects.get(month_end=date(2026, 3, 31), mfi=shop.mfi)
    loan = Loan.objects.get(pk=lid)
    assert snap.as_of == date(2026, 3, 31) and snap.loans == 1 and snap.outstanding_principal == _out(lid)
    assert loan.days_past_due == (date(2026, 3, 31) - date(2026, 2, 1)).days == 58
    assert snap.klass == "substandard"
    # and every close keeps its day's risk for the PAR trend
    from node.cob.models import PortfolioDay

    day = PortfolioDay.objects.get(business_date=date(2026, 3, 31), mfi=shop.mfi)
    assert (day.loans, day.outstanding_principal, day.at_risk_30, day.at_risk_90) == (1, _out(lid), _out(lid), 0)


@pytest.mark.django_db
def test_par_as_of_an_earlier_closed_day(client):
    """PAR as of a day close of business kept: what it counted that day, by every dimension — not the loans now;
    a day it did not keep (not closed, or caught up together with a later day) is refused, not guessed."""
    from node.cob.models import BusinessDate
    from node.cob.services import cob_close

    shop = open_shop("asof")
    lid = disbursed(shop, principal="1000.00", n=3, on="2026-01-01")  # first installment due 2026-02-01
    out = _out(lid)
    BusinessDate.objects.update_or_create(pk=1, defaults={"current": date(2026, 3, 2)})
    assert cob_close(through=date(2026, 3, 2)).summary["portfolio_day"] >= 1  # 29 days past due
    assert cob_close(through=date(2026, 3, 5)).summary["days_closed"] == 3  # 3rd and 4th caught up: 32 days
    c = client_for(shop.analyst)

    def par_as_of(day, **params):
        r = c.get(f"{BASE}par", {"as_of": day, **params})
        assert r.status_code == 200, r.content
        return r.json()

    early = par_as_of("2026-03-02")
    assert early["as_of"] == "2026-03-02" and early["params"]["as_of"] == "2026-03-02"
    r = row(section(early), shop.mfi.code)
    assert (r["loans"], D(r["outstanding"]), D(r["at_risk_1"]), D(r["at_risk_30"])) == (1, out, out, D("0.00"))
    assert r["par_30"] == "0.0000"
    late = row(section(par_as_of("2026-03-05", by="officer")), shop.officer.username)
    assert D(late["at_risk_30"]) == out and late["par_30"] == "1.0000"
    # the loan repaid since: the day's figures stay what they were, the live report moves on
    repay(shop, lid, str(out + D("200.00")), on="2026-03-06")
    assert row(section(par_as_of("2026-03-05")), shop.mfi.code)["par_30"] == "1.0000"
    assert section(run(shop.analyst, "par"))["rows"] == []
    for day in ("2026-03-03", "2026-03-10"):  # caught up with a later day; not closed yet
        e = err(c.get(f"{BASE}par", {"as_of": day}), 409, "day_not_kept")
        assert e["details"] == {"as_of": day}
    err(c.get(f"{BASE}par", {"as_of": "03/05/2026"}), 400, "invalid_report_parameter")
    err(c.get(f"{BASE}aging", {"as_of": "2026-03-05"}), 400, "invalid_report_parameter")  # PAR only
    # the page: the day in the form, the figures of that day; a day not kept says why
    assert client.login(username=shop.analyst.username, password=PASSWORD)
    page = client.get("/reports/par/", {"as_of": "2026-03-05"})
    assert page.status_code == 200 and 'value="2026-03-05"' in page.content.decode()
    assert "100.00%" in page.content.decode()  # PAR30 of that day
    refused = client.get("/reports/par/", {"as_of": "2026-03-03"})
    assert refused.status_code == 409 and "kept no portfolio for 2026-03-03" in refused.content.decode()


def test_every_export_opens(book):
    shop, loans, _ = book
    c = client_for(shop.analyst)
    r = c.get(f"{BASE}par", {"export": "csv"})
    assert r.status_code == 200 and r["Content-Type"].startswith("text/csv")
    assert "attachment" in r["Content-Disposition"] and ".csv" in r["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0]["group"] == shop.mfi.code and rows[0]["par_30"] == "0.4286"
    assert rows[-1]["group"] == "Total" and D(rows[-1]["outstanding"]) == D("7000.00")
    r = c.get(f"{BASE}regulatory_return", {"export": "csv", "month": "2026-01"})
    assert r.status_code == 409  # not closed yet in this test: the download is refused the same way
    month_end_snapshot(month_end=date(2026, 1, 31), as_of=date(2026, 1, 31))
    r = c.get(f"{BASE}regulatory_return", {"export": "csv", "month": "2026-01"})
    text = r.content.decode("utf-8-sig")
    assert text.count("section,group") == 2 and "classification,substandard,2," in text
    r = c.get(f"{BASE}aging", {"export": "xlsx"})
    assert r.status_code == 200 and r.content[:2] == b"PK"
    wb = load_workbook(io.BytesIO(r.content))
    assert wb.sheetnames == ["About", "Arrears aging"]
    ws = wb["Arrears aging"]
    header = [c.value for c in ws[1]]
    assert header[:3] == ["Days past due", "Loans", "Outstanding principal"]
    assert [ws.cell(row=i, column=2).value for i in range(2, 7)] == [1, 3, 1, 1, 1]
    assert D(str(ws.cell(row=7, column=3).value)) == D("7000")
    assert ws.cell(row=3, column=3).number_format == "#,##0.00"
    r = c.get(f"{BASE}par", {"export": "pdf", "by": "product"})
    assert r.status_code == 200 and r.content[:5] == b"%PDF-"
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(r.content)).pages)
    assert "Portfolio at risk" in text and "M7,000.00" in text and f"{shop.mfi.code} / salary-12" in text
    assert "42.86%" in text  # PAR30 of 3000 / 7000
    err(c.get(f"{BASE}par", {"export": "docx"}), 400, "invalid_report_parameter")


@pytest.mark.django_db
@pytest.mark.parametrize("name, params, field", [
    ("par", {"by": "borrower"}, "by"),
    ("par", {"by": "mfi; DROP TABLE loans_loan"}, "by"),
    ("par", {"order": "1"}, "order"),
    ("par", {"period": "month"}, "period"),  # PAR takes no period
    ("flows", {"period": "year"}, "period"),
    ("flows", {"from": "2026-13-01"}, "from"),
    ("flows", {"from": "2026-03-01", "to": "2026-02-01"}, "to"),
    ("flows", {"period": "day", "from": "2024-01-01", "to": "2026-01-01"}, "period"),
    ("regulatory_return", {"month": "2026-13"}, "month"),
    ("regulatory_return", {"month": "26-01"}, "month"),
    ("loans", {"status": "everything"}, "status"),
    ("par", {"scope": "planet"}, "scope"),
])
def test_parameters_are_checked_against_allowlists(name, params, field):
    shop = open_shop("val")
    e = err(client_for(shop.analyst).get(f"{BASE}{name}", params), 400, "invalid_report_parameter")
    assert field in e["details"]["fields"]


@pytest.mark.django_db
def test_who_may_run_what():
    shop, other = open_shop("who"), open_shop("oth")
    analyst = client_for(shop.analyst)
    err(client_for(shop.officer).get(f"{BASE}par"), 403, "permission_denied")
    err(client_for(shop.borrower_user).get(f"{BASE}par"), 403, "permission_denied")
    err(client_for(make_user(Role.OPERATOR)).get(f"{BASE}par"), 403, "permission_denied")
    err(analyst.get(f"{BASE}par", {"mfi": other.mfi.code}), 403, "permission_denied")
    err(analyst.get(f"{BASE}par", {"scope": "network"}), 403, "permission_denied")
    err(analyst.get(f"{BASE}nothing"), 404, "unknown_report")
    assert analyst.get(f"{BASE}par", {"mfi": shop.mfi.code}).status_code == 200
    assert client_for(shop.admin).get(f"{BASE}par").status_code == 200
    admin = client_for(make_user(Role.LETSEMA_ADMIN))
    err(admin.get(f"{BASE}loans", {"scope": "network"}), 400, "invalid_report_parameter")
    err(admin.get(f"{BASE}par", {"mfi": "no-such-mfi"}), 400, "invalid_report_parameter")
    body = admin.get(f"{BASE}par", {"mfi": other.mfi.code}).json()
    assert body["params"]["mfi"] == other.mfi.code
    names = [r["name"] for r in analyst.get(BASE).json()["reports"]]
    assert names == ["par", "par_trend", "aging", "flows", "demand_collection", "repayment_rate", "risk_grades", "loans",
                     "regulatory_return"]


def test_report_pages_render_tables_charts_and_downloads(book, client):
    shop, loans, _ = book
    client.force_login(shop.analyst)
    page = client.get("/reports/")
    assert page.status_code == 200 and b"Portfolio at risk" in page.content
    page = client.get("/reports/par/", {"by": "mfi"})
    html = page.content.decode()
    assert page.status_code == 200 and '<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img"' in html
    assert 'id="table-par"' in html and "M7,000.00" in html and "42.86%" in html
    assert "?by=mfi&amp;export=xlsx" in html
    dl = client.get("/reports/par/", {"by": "mfi", "export": "xlsx"})
    assert dl.status_code == 200 and dl.content[:2] == b"PK"
    bad = client.get("/reports/flows/", {"from": "nonsense"})
    assert bad.status_code == 400 and "must be a date" in bad.content.decode() and 'id="report-form"' in bad.content.decode()
    client.force_login(shop.officer)
    assert client.get("/reports/par/").status_code == 403


def test_report_pages_and_downloads_in_sesotho(book, client):
    shop, loans, _ = book
    client.force_login(shop.analyst)
    assert client.post("/language/", {"language": "st", "next": "/reports/"}).status_code == 302
    html = client.get("/reports/").content.decode()
    assert "Tlaleho ea khoeli ho molaoli" in html and "Monthly regulatory return" not in html
    html = client.get("/reports/par/", {"by": "mfi"}).content.decode()
    assert 'lang="st"' in html and "Likalimo tse kotsing" in html and "Chelete e alimiloeng e salang" in html
    assert "Outstanding principal" not in html and "M7,000.00" in html
    wb = load_workbook(io.BytesIO(client.get("/reports/aging/", {"export": "xlsx"}).content))
    assert wb.sheetnames == ["About", "Lilemo tsa melato"]
    assert [c.value for c in wb["Lilemo tsa melato"][1]][:2] == ["Matsatsi a tieho", "Likalimo"]


@pytest.mark.cluster
def test_network_report_sums_every_district(test_cluster, node_url):
    """A Letsema admin's network PAR over the real nodes equals the sum of each node's own report."""
    name = "reports.admin"
    tokens = {}
    for district in test_cluster.districts:
        res = manage(test_cluster, district, "shell", "-c", (
            "from node.users.models import User; "
            f"u, _ = User.objects.get_or_create(username='{name}', defaults={{'role': 'letsema_admin'}}); "
            f"u.set_password('{PASSWORD}'); u.save()"))
        assert res.returncode == 0, res.stderr[-2000:]
        tok = requests.post(f"{node_url(district)}/api/v1/auth/token/", json={"username": name, "password": PASSWORD},
                            timeout=20)
        assert tok.status_code == 200, tok.text
        tokens[district] = {"Authorization": f"Bearer {tok.json()['access']}"}
    base = node_url("maseru")

    def complete():
        r = requests.get(f"{base}/api/v1/reports/par", params={"scope": "network"}, headers=tokens["maseru"],
                         timeout=60)
        assert r.status_code == 200, r.text
        return r.json() if not r.json()["partial"] else None

    body = wait_for(complete, timeout=90, interval=3, what="a network report from every district")
    assert body["districts"] == sorted(test_cluster.districts) and body["params"]["by"] == "district"
    sec = body["sections"][0]
    own = {}
    for district in test_cluster.districts:
        r = requests.get(f"{node_url(district)}/api/v1/reports/par", params={"by": "district"},
                         headers=tokens[district], timeout=60)
        assert r.status_code == 200, r.text
        own[district] = r.json()["sections"][0]["total"]
    for district, total in own.items():
        got = next((r for r in sec["rows"] if r["group"] == district), None)
        if total["loans"]:
            assert got["loans"] == total["loans"] and got["outstanding"] == total["outstanding"]
    assert D(sec["total"]["outstanding"]) == sum(D(t["outstanding"]) for t in own.values())
    # the same over the wire as a file
    r = requests.get(f"{base}/api/v1/reports/aging", params={"scope": "network", "export": "xlsx"},
                     headers=tokens["maseru"], timeout=60)
    assert r.status_code == 200 and r.content[:2] == b"PK"
    about = load_workbook(io.BytesIO(r.content))["About"]
    assert ["Scope", "network"] in [[c.value for c in row] for row in about.iter_rows()]


@pytest.mark.django_db
def test_the_statement_lists_every_movement_on_the_account_in_date_order(client):
    shop = open_shop("pdfmoves")
    lid = disbursed(shop, principal="1000.00", n=3, on="2026-01-01")
    other = disbursed(shop, principal="1000.00", n=3, on="2026-01-01")
    LoanInstallment.objects.filter(loan_id=lid, number=1).update(penalties=D("15.00"))
    assert post(shop.admin, f"/api/v1/loans/{lid}/waivers", {"component": "penalties", "reason": "bank delay"},
                idem=key()).status_code == 201
    repay(shop, lid, "1100.00", "2026-03-10")  # pays it off; 39.41 held for the borrower
    refund = post(shop.admin, f"/api/v1/loans/{lid}/overpayment-refunds",
                  {"amount": "10.00", "refund_date": "2026-03-12", "channel": "mobile_money", "reference": "MM-1"},
                  idem=key()).json()
    assert post(shop.admin, f"/api/v1/overpayment-refunds/{refund['id']}/reverse", {"reason": "transfer bounced"},
                idem=key()).status_code == 200
    assert post(shop.admin, f"/api/v1/loans/{lid}/overpayment-transfers",
                {"to_loan": other, "amount": "20.00"}, idem=key()).status_code == 201
    from tests.openapi_helpers import assert_documented

    history = assert_documented(client_for(shop.borrower_user).get(f"/api/v1/loans/{lid}/transactions"), "get",
                                "/api/v1/loans/{loan_id}/transactions")
    assert [(t["type"], t["amount"], t["reversed"]) for t in history] == [
        ("disbursement", "1000.00", False), ("repayment", "1100.00", False), ("refund", "10.00", True),
        ("waiver", "15.00", False), ("transfer_out", "20.00", False)]
    assert history[1]["parts"] == {"principal": "1000.00", "interest": "60.59", "fees": "0.00", "penalties": "0.00",
                                   "overpayment": "39.41"} and history[1]["outstanding_after"] == "0.00"
    assert (history[3]["detail"], history[3]["installment"]) == ("penalties", 1)
    assert history[4]["detail"] == Loan.objects.get(pk=other).reference
    client.force_login(shop.borrower_user)
    r = client.get(f"/me/loans/{lid}/statement.pdf")
    def squashed(pdf: bytes) -> str:  # the PDF's text without whitespace: a table cell may wrap anywhere
        return "".join("".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages).split())

    text = squashed(r.content)
    other_ref = Loan.objects.get(pk=other).reference
    wanted = ("Paid out", "Repayment", "Paid back to the borrower (reversed)", "MM-1", f"Moved to loan {other_ref}",
              "Penalties waived", "installment 1")
    for line in wanted:
        assert "".join(line.split()) in text, line
    order = [text.index("".join(x.split())) for x in ("Paid out", "Repayment", "Paid back to the borrower",
                                                       f"Moved to loan {other_ref}")]
    assert order == sorted(order)  # 2026-01-01, 2026-03-10, 2026-03-12, today
    assert text.index("Penaltieswaived") > text.index("Repayment")  # waived today, after the repayment's date
    target = squashed(client.get(f"/me/loans/{other}/statement.pdf").content)
    assert "Appliedfromanotherloan" in target and "M20.00" in target


@pytest.mark.django_db
def test_borrower_statement_and_schedule_pdfs(client):
    shop = open_shop("pdf")
    lid = disbursed(shop, principal="1000.00", n=3, on="2026-01-01")
    repay(shop, lid, "120.00", "2026-02-01")
    rev = repay(shop, lid, "30.00", "2026-02-03")
    assert post(shop.admin, f"/api/v1/repayments/{rev['id']}/reverse", {"reason": "bounced"},
                idem=key()).status_code == 200
    loan = Loan.objects.get(pk=lid)
    client.force_login(shop.borrower_user)
    page = client.get(f"/me/loans/{lid}/")
    assert f'/me/loans/{lid}/statement.pdf' in page.content.decode()
    r = client.get(f"/me/loans/{lid}/statement.pdf")
    assert r.status_code == 200 and r["Content-Type"] == "application/pdf"
    assert f"{loan.reference}-statement.pdf" in r["Content-Disposition"]
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(r.content)).pages)
    assert "Loan statement" in text and loan.reference in text and "M1,000.00" in text
    assert "M120.00" in text and "(reversed)" in text and "2026-02-01" in text
    total = D(loan.schedule["totals"]["total"])
    from node.web.templatetags.web import format_money
    assert format_money(total) in text  # owed right after payout
    r = client.get(f"/me/loans/{lid}/schedule.pdf")
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(r.content)).pages)
    assert "Repayment schedule" in text and "Transactions" not in text
    assert client.get(f"/me/loans/{lid}/contract.pdf").status_code == 404
    # another borrower cannot print it; the MFI's officer can
    other = open_shop("pdf2")
    client.force_login(other.borrower_user)
    assert client.get(f"/me/loans/{lid}/statement.pdf").status_code == 404
    client.force_login(shop.officer)
    assert client.get(f"/staff/loans/{lid}/statement.pdf").status_code == 200


def test_every_report_costs_the_same_queries_for_a_small_or_a_larger_book(book, client):
    """Reliability notes P2: a report's SQL is the same whatever the size of the book (no query per loan, per
    officer or per product) and at most 20 statements — counted for every report and parameter the analyst can pick,
    over the API and the report page, on the 7-loan book and again after 6 more loans (other terms, another
    approving officer, two more borrowers, repayments)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    shop, _, _ = book
    month_end_snapshot(month_end=date(2026, 1, 31), as_of=date(2026, 1, 31))
    portfolio_day_snapshot(day=date(2026, 1, 31))
    cases = [("par", {"by": by}) for by in ("mfi", "product", "officer")] + [
        ("par_trend", {"period": "week", "from": "2026-01-01", "to": "2026-04-30"}), ("aging", {}), ("flows", {"from": "2026-01-01", "to": "2026-04-30"}),
        ("demand_collection", {"from": "2026-01-01", "to": "2026-04-30"}),
        ("repayment_rate", {"by": "officer"}), ("risk_grades", {}), ("loans", {"status": "active"}),
        ("regulatory_return", {"month": "2026-01"})]
    api = client_for(shop.analyst)
    assert client.login(username=shop.analyst.username, password=PASSWORD)

    def counts() -> dict[str, tuple[int, int]]:
        out = {}
        for name, params in cases:
            with CaptureQueriesContext(connection) as q:
                assert api.get(f"{BASE}{name}", params).status_code == 200
            with CaptureQueriesContext(connection) as page:
                assert client.get(f"/reports/{name}/", params).status_code == 200
            out[f"{name} {params}"] = (len(q), len(page))
        return out

    small = counts()
    officer2 = make_user(Role.LOAN_OFFICER, mfi=shop.mfi)
    for _ in range(2):
        u = consenting_borrower()
        for n in (3, 6, 9):
            lid = disbursed(shop, principal="2000.00", n=n, on="2026-01-15", borrower_user=u)
            Loan.objects.filter(pk=lid).update(approved_by=officer2, days_past_due=45, delinquency_bucket="31-60")
            repay(shop, lid, "100.00", on="2026-02-15")
    assert Loan.objects.filter(mfi=shop.mfi).count() == 13
    larger = counts()
    assert larger == small, {k: (small[k], larger[k]) for k in small if small[k] != larger[k]}
    assert max(n for pair in small.values() for n in pair) <= 20, small
