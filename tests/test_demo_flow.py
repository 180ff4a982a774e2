"""End to end over HTTP on the running test cluster, with the demo data set: a borrower applies, staff review
and approve, a maker initiates and a checker confirms with step-up, and the journal entries are visible."""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import requests

from cluster.commands import DEMO_PASSWORD
from config.district import REPO_ROOT

pytestmark = pytest.mark.cluster
FLOW: dict[str, str] = {}


def _load_demo(test_cluster, code):
    env = test_cluster.env_for(code)
    outs = []
    for _ in range(2):  # idempotent
        res = subprocess.run([sys.executable, str(REPO_ROOT / "manage.py"), "load_demo", "--password", DEMO_PASSWORD],
                             env=env, capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr[-2000:]
        outs.append(res.stdout)
    assert "account(s) created" in outs[1] and "demo loan book" not in outs[1]  # the second run made nothing
    return "\n".join(outs)


def _login(base, username):
    r = requests.post(f"{base}/api/v1/auth/token/", json={"username": username, "password": DEMO_PASSWORD}, timeout=20)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access']}"}


def test_demo_loan_from_application_to_disbursement(test_cluster, node_url):
    out = _load_demo(test_cluster, "maseru")
    FLOW["load_demo_out"] = out
    assert "demo data for maseru" in out
    base = node_url("maseru")
    mfi = test_cluster.district("maseru").mfis[0].code
    borrower, officer = _login(base, "maseru.borrower1"), _login(base, f"{mfi}.officer")
    admin, analyst = _login(base, f"{mfi}.admin"), _login(base, f"{mfi}.analyst")

    today = datetime.now(ZoneInfo(test_cluster.district("maseru").timezone)).date().isoformat()
    products = requests.get(f"{base}/api/v1/products/", params={"mfi": mfi}, timeout=20).json()
    product = next(p for p in products if p["code"] == "salary")
    r = requests.post(f"{base}/api/v1/loans/", headers=borrower, timeout=20, json={
        "product": product["id"], "principal": "8000.00", "number_of_repayments": 6,
        "expected_disbursement_date": today, "purpose": "stock for a spaza shop"})
    assert r.status_code == 201, r.text
    lid = r.json()["id"]
    FLOW["loan_ref"] = r.json()["reference"]

    def act(headers, path, body=None, idem=False, **extra):
        h = {**headers, **extra}
        if idem:
            h["Idempotency-Key"] = uuid.uuid4().hex
        resp = requests.post(f"{base}/api/v1/loans/{lid}/{path}", json=body or {}, headers=h, timeout=30)
        assert resp.status_code == 200, (path, resp.text)
        return resp.json()

    act(borrower, "submit")
    act(officer, "review")
    act(officer, "approve")
    act(officer, "disbursement/initiate", {"channel": "mobile_money", "reference": "ECOCASH-1"}, idem=True)
    step = requests.post(f"{base}/api/v1/auth/step-up", json={"password": DEMO_PASSWORD}, headers=admin, timeout=20)
    assert step.status_code == 201, step.text
    done = act(admin, "disbursement/confirm", {"disbursement_date": today}, idem=True,
               **{"X-Step-Up-Token": step.json()["step_up_token"]})
    assert done["status"] == "active"

    schedule = requests.get(f"{base}/api/v1/loans/{lid}/schedule", headers=borrower, timeout=20).json()
    assert schedule["stored"] is True and len(schedule["installments"]) == 7  # row 0 = processing fee

    tb = requests.get(f"{base}/api/v1/ledger/trial-balance", params={"as_of": today}, headers=analyst, timeout=20)
    assert tb.status_code == 200, tb.text
    body = tb.json()
    assert body["total_debit"] == body["total_credit"]
    portfolio = next(a for a in body["accounts"] if a["code"] == "1100")
    assert portfolio["debit"] != "0.00"
    stmt = requests.get(f"{base}/api/v1/ledger/accounts/1100/statement",
                        params={"from": today, "to": today}, headers=analyst, timeout=20)
    assert stmt.status_code == 200, stmt.text
    assert any(line["reference_id"] == str(lid) and line["debit"] == "8000.00" for line in stmt.json()["lines"])

    # the borrower pays the first installment from the phone: the real node prompts through its file gateway,
    # `manage.py mobile_money_simulate` (run as the maseru node) plays the provider and posts its signed confirmation
    first = requests.get(f"{base}/api/v1/loans/{lid}/balance", params={"as_of": today}, headers=borrower, timeout=20)
    due = next(i for i in first.json()["installments"] if i["number"] == 1)
    amount = due["outstanding"]["total"]
    r = requests.post(f"{base}/api/v1/loans/{lid}/mobile-money", json={"amount": amount}, headers=borrower, timeout=30)
    assert r.status_code == 202 and r.json()["status"] == "requested", r.text
    res = subprocess.run([sys.executable, str(REPO_ROOT / "manage.py"), "mobile_money_simulate", "--request-id",
                          r.json()["request_id"]], env=test_cluster.env_for("maseru"), capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr[-2000:]
    (pay,) = requests.get(f"{base}/api/v1/loans/{lid}/mobile-money", headers=officer, timeout=20).json()
    assert pay["status"] == "paid" and pay["amount_received"] == amount and pay["receipt_number"]
    # and 50.00 from the phone's own menu: Pay Bill to the demo MFI's business number, the loan reference as account
    (mfi,) = requests.get(f"{base}/api/v1/mfis/", headers=officer, timeout=20).json()
    assert mfi["paybill_number"], mfi  # the demo gives each demo MFI one
    reference = requests.get(f"{base}/api/v1/loans/{lid}/", headers=borrower, timeout=20).json()["reference"]
    def pay_bill(account: str) -> subprocess.CompletedProcess:  # the provider validates first (C2B validation)
        return subprocess.run([sys.executable, str(REPO_ROOT / "manage.py"), "mobile_money_simulate", "--validate",
                               "--paybill", account, "--amount", "50.00", "--business-number", mfi["paybill_number"]],
                              env=test_cluster.env_for("maseru"), capture_output=True, text=True, timeout=120)

    def unapplied() -> int:
        r = requests.get(f"{base}/api/v1/mobile-money/unapplied", headers=officer, timeout=20)
        assert r.status_code == 200, r.text
        return len(r.json())

    waiting = unapplied()
    res = pay_bill(reference[:-1])  # a mistyped account is refused at the phone: nothing reaches the node's books
    assert res.returncode != 0 and "unknown_account" in res.stderr, res.stdout + res.stderr[-2000:]
    assert unapplied() == waiting
    res = pay_bill(reference.lower())
    assert res.returncode == 0 and res.stdout.splitlines()[-1].startswith("201 "), res.stdout + res.stderr[-2000:]
    paybill = next(p for p in requests.get(f"{base}/api/v1/loans/{lid}/mobile-money", headers=borrower,
                                           timeout=20).json() if p["kind"] == "paybill")
    assert paybill["status"] == "paid" and paybill["amount_received"] == "50.00" and paybill["receipt_number"]

    # the borrower repays everything the schedule asks for: the loan closes, and (through the outbox) the network
    # hold is released — so running the suite again on the same cluster finds the demo borrower with room to borrow
    owed = requests.get(f"{base}/api/v1/loans/{lid}/balance", params={"as_of": today}, headers=borrower, timeout=20)
    assert owed.status_code == 200, owed.text
    total = owed.json()["outstanding"]["total"]
    paid = requests.post(f"{base}/api/v1/loans/{lid}/repayments", timeout=30, json={
        "amount": total, "payment_date": today, "channel": "mobile_money", "reference": "ECOCASH-2"},
        headers={**officer, "Idempotency-Key": uuid.uuid4().hex})
    assert paid.status_code == 201, paid.text
    loan = requests.get(f"{base}/api/v1/loans/{lid}/", headers=borrower, timeout=20).json()
    assert loan["status"] == "closed"


def test_demo_loan_book_gives_the_analyst_par_and_the_regulatory_return(test_cluster, node_url):
    """The demo data's loan book (loaded by the test above) has loans behind on their schedules, and close of business
    has classified them: the analyst's PAR and aging show them, and the last month's regulatory return is there."""
    out = _load_demo(test_cluster, "maseru")  # idempotent: nothing new
    base = node_url("maseru")
    mfi = test_cluster.district("maseru").mfis[0].code
    analyst = _login(base, f"{mfi}.analyst")
    loaded = FLOW.get("load_demo_out", "")
    today = datetime.now(ZoneInfo(test_cluster.district("maseru").timezone)).date()  # the node's business day
    month_end = today.replace(day=1) - timedelta(days=1)
    yesterday = today - timedelta(days=1)
    par = requests.get(f"{base}/api/v1/reports/par", params={"by": "mfi"}, headers=analyst, timeout=60)
    assert par.status_code == 200, par.text
    total = par.json()["sections"][0]["total"]
    assert total["loans"] >= 12, total  # the 12 book loans (the flow's own loan is closed)
    if f"close of business through {yesterday.isoformat()}" in loaded:
        # close of business ran after the book was made: 5 loans are behind by 30+ days, 1 of them by 90+
        assert total["loans_at_risk_30"] >= 5 and Decimal(total["par_30"]) > 0 and Decimal(total["par_90"]) > 0, total
        aging = requests.get(f"{base}/api/v1/reports/aging", headers=analyst, timeout=60).json()
        assert sum(r["loans"] for r in aging["sections"][0]["rows"] if r["group"] != "current") >= 5, aging
        # and that close kept the day: PAR as of it, and the trend's row for it, show the same book
        kept = requests.get(f"{base}/api/v1/reports/par", params={"as_of": yesterday.isoformat()}, headers=analyst,
                            timeout=60)
        assert kept.status_code == 200, kept.text
        assert kept.json()["sections"][0]["total"]["loans_at_risk_30"] >= 5, kept.text
        trend = requests.get(f"{base}/api/v1/reports/par_trend", headers=analyst, timeout=60, params={
            "period": "day", "from": yesterday.isoformat(), "to": yesterday.isoformat()})
        assert trend.status_code == 200, trend.text
        (day,) = trend.json()["sections"][0]["rows"]
        assert day["group"] == yesterday.isoformat() and day["loans"] >= 12 and Decimal(day["par_30"]) > 0, day
    ret = requests.get(f"{base}/api/v1/reports/regulatory_return", params={"month": month_end.strftime("%Y-%m")},
                       headers=analyst, timeout=60)
    if f"close of business through {month_end.isoformat()}" in loaded:
        # the node's first close ran through the month end: the return classifies the book as it stood then
        assert ret.status_code == 200, ret.text
        assert sum(r["loans"] for r in ret.json()["sections"][0]["rows"]) >= 12
        csv = requests.get(f"{base}/api/v1/reports/regulatory_return", headers=analyst, timeout=60,
                           params={"month": month_end.strftime("%Y-%m"), "export": "csv"})
        assert csv.status_code == 200 and "classification,substandard," in csv.content.decode("utf-8-sig")
    elif ret.status_code != 200:  # this node had closed days before the demo data came (the nightly job), and
        # no close ran through that month end (a kept cluster may have closed it in an earlier run of this test)
        assert ret.status_code == 409 and ret.json()["code"] == "month_not_closed", ret.text
    assert "demo loan book" not in out


def test_credit_events_of_the_demo_loan_reach_the_ring(test_cluster, node_url):
    """The worker's beat runs the outbox shipper: the loan events of the flow above arrive in the ring."""
    from cassandra.cluster import Cluster

    from tests.conftest import wait_for

    cluster = Cluster([test_cluster.ring_ip(i) for i in (1, 2, 3)], protocol_version=5)
    try:
        session = cluster.connect("letsema")

        ref = FLOW["loan_ref"]

        def types():
            rows = session.execute("SELECT event_type, origin_district, payload FROM credit_events")
            return {(r.event_type, r.origin_district) for r in rows if f'"loan_ref": "{ref}"' in (r.payload or "")}

        found = wait_for(lambda: {("loan.applied", "maseru"), ("loan.approved", "maseru"),
                                   ("loan.disbursed", "maseru"), ("loan.closed", "maseru")} <= types(), 60, interval=2,
                         what="credit events shipped by the worker")
        assert found
    finally:
        cluster.shutdown()
