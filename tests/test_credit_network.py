"""The shared credit history at work: the stacking guard under concurrency (across districts, over the real ring),
the credit report with its enquiry log, fail-closed approvals without a ring quorum, and the outbox backlog
draining (and reconciling) after the ring returns. Nothing is mocked."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from decimal import Decimal

import pytest
from cassandra.query import SimpleStatement
from django.db import connection

from cluster import cassandra as ring_launcher
from node.audit.models import AuditEvent
from node.loans.models import Loan
from replication.holds import holds_read
from replication.models import OutboxEvent
from replication.outbox import outbox_lag, ship_batch
from replication.reconcile import reconcile
from replication.ring import get_session
from replication.ring_writer import write_event
from tests.conftest import wait_for
from tests.loan_fixtures import apply, client_for, err, key, make_user, open_shop, post

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def to_review(shop, lid):
    assert post(shop.borrower_user, f"/api/v1/loans/{lid}/submit").status_code == 200
    assert post(shop.officer, f"/api/v1/loans/{lid}/review").status_code == 200


# --- the guard itself, raced from three district processes ------------------------------------------
RACE = r"""
import json, os, sys, threading, time
import django
django.setup()
from decimal import Decimal
from django.conf import settings
from node.credit.errors import CreditNetworkUnavailable, StackingLimitReached
from node.credit.stacking import Exposure, stacking_reserve
from replication.ring import get_session
borrower_key, start = sys.argv[1], float(sys.argv[2])
get_session()  # connect before the start line
results = []
def go(i):
    x = Exposure(borrower_key=borrower_key, loan_key=f"{settings.DISTRICT.code}/RACE-{i}", mfi="race",
                 district=settings.DISTRICT.code, principal=Decimal("1000.00"), monthly_installment=Decimal("100.00"),
                 monthly_income=Decimal("10000.00"))
    time.sleep(max(0.0, start - time.time()))
    try:
        stacking_reserve(x); results.append("ok")
    except StackingLimitReached:
        results.append("limit")
    except CreditNetworkUnavailable as exc:
        results.append("unavailable: " + exc.details.get("reason", ""))
threads = [threading.Thread(target=go, args=(i,)) for i in range(4)]
[t.start() for t in threads]
[t.join(120) for t in threads]
print(json.dumps(results))
"""


def test_three_districts_racing_for_one_borrower_cannot_pass_the_policy(network_policy):
    network_policy(max_active_loans=3)
    borrower_key = f"v1:{uuid.uuid4().hex}{uuid.uuid4().hex}"
    start = time.time() + 12
    procs = [
        subprocess.Popen([sys.executable, "-c", RACE, borrower_key, str(start)], cwd=REPO, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.test_settings", "LETSEMA_DISTRICT": code})
        for code in ("maseru", "leribe", "mohales_hoek")
    ]
    results = []
    for p in procs:
        out, errs = p.communicate(timeout=180)
        assert p.returncode == 0, errs[-2000:]
        results += json.loads(out.strip().splitlines()[-1])
    assert len(results) == 12
    assert results.count("ok") == 3, results  # 12 approvals at the same instant, 3 allowed
    assert results.count("limit") == 9, results
    held = holds_read(borrower_key).holds
    assert len(held) == 3 and {h["state"] for h in held.values()} == {"reserved"}
    assert len({k.split("/")[0] for k in held}) >= 1  # whoever won, each hold names its district


# --- the first read is at QUORUM: a stale answer never decides --------------------------------------
class StaleFirstRead:
    """Wraps ``holds_read``: the first QUORUM read answers ``stale`` (a replica behind the Paxos commits, as a QUORUM
    read may be); every read is recorded as "quorum" or "serial" and goes to the real ring otherwise."""

    def __init__(self, monkeypatch, stale=None):
        from replication import holds

        self.real, self.stale, self.reads = holds.holds_read, stale, []
        monkeypatch.setattr(holds, "holds_read", self)

    def __call__(self, key, *, serial=True):
        self.reads.append("serial" if serial else "quorum")
        if not serial and self.stale is not None:
            stale, self.stale = self.stale, None
            return stale
        return self.real(key, serial=serial)


def _with(name):
    return lambda holds: {**holds, name: {"n": name}}


def _without(name):
    return lambda holds: {k: v for k, v in holds.items() if k != name}


def test_a_change_on_an_uncontended_borrower_takes_one_quorum_read_and_one_compare_and_set(test_cluster, monkeypatch):
    from replication.holds import holds_change

    pk = f"v1:{uuid.uuid4().hex}"
    reads = StaleFirstRead(monkeypatch)
    first = holds_change(pk, _with("A"))
    second = holds_change(pk, _with("B"))
    assert (first.written, first.attempts, second.written, second.attempts) == (True, 1, True, 1)
    assert reads.reads == ["quorum", "quorum"]  # no SERIAL read (a Paxos round) on the way
    assert reads.real(pk).version == 2 and set(reads.real(pk).holds) == {"A", "B"}


def test_a_stale_first_read_never_decides(test_cluster, monkeypatch):
    from replication.holds import HoldsState, holds_change

    pk = f"v1:{uuid.uuid4().hex}"
    holds_change(pk, _with("A"))
    holds_change(pk, _with("B"))  # the ring: version 2 {A, B}
    v1 = HoldsState(1, {"A": {"n": "A"}})

    # stale version: the compare-and-set computed from it loses, the SERIAL re-read decides
    reads = StaleFirstRead(monkeypatch, stale=v1)
    r = holds_change(pk, _with("C"))
    assert r.written and r.attempts == 2 and reads.reads == ["quorum", "serial"]
    assert reads.real(pk) == HoldsState(3, {"A": {"n": "A"}, "B": {"n": "B"}, "C": {"n": "C"}})

    # a stale map that already looks like the wanted one (B missing) is not taken for "nothing to do"
    reads = StaleFirstRead(monkeypatch, stale=v1)
    r = holds_change(pk, _without("B"))
    assert r.written and reads.reads == ["quorum", "serial"]
    assert set(reads.real(pk).holds) == {"A", "C"}

    # a refusal computed from a stale map (holding B, released since) is not trusted either
    def at_most_two_then_d(holds):
        if len(holds) >= 3:
            raise ValueError("full")
        return {**holds, "D": {"n": "D"}}

    reads = StaleFirstRead(monkeypatch, stale=HoldsState(3, {k: {"n": k} for k in "ABC"}))
    r = holds_change(pk, at_most_two_then_d)
    assert r.written and reads.reads == ["quorum", "serial"]
    assert set(reads.real(pk).holds) == {"A", "C", "D"}

    # ... while a refusal from the SERIAL read stands, and a real no-op writes nothing
    reads = StaleFirstRead(monkeypatch, stale=HoldsState(4, {k: {"n": k} for k in "AC"}))
    with pytest.raises(ValueError, match="full"):
        holds_change(pk, at_most_two_then_d)
    assert reads.reads == ["quorum", "serial"]
    reads = StaleFirstRead(monkeypatch)
    r = holds_change(pk, _with("A"))
    assert not r.written and reads.reads == ["quorum", "serial"] and reads.real(pk).version == 5


# --- over the API: two MFIs approving the same borrower at once -------------------------------------
@pytest.mark.django_db(transaction=True)
def test_two_mfis_approving_at_once_one_wins_and_a_withdrawal_frees_the_room(network_policy):
    network_policy(max_active_loans=1)
    a = open_shop("alpha")
    b = open_shop("beta")
    # the same borrower applies at both MFIs (a borrower may apply to any MFI's product)
    la = apply(a)
    r = client_for(a.borrower_user).post("/api/v1/loans/", {
        "product": b.product_id, "principal": "8000.00", "number_of_repayments": 12,
        "expected_disbursement_date": "2026-12-01"}, format="json")
    assert r.status_code == 201, r.content
    lb = r.json()["id"]
    to_review(a, la)
    assert post(a.borrower_user, f"/api/v1/loans/{lb}/submit").status_code == 200
    assert post(b.officer, f"/api/v1/loans/{lb}/review").status_code == 200

    barrier = threading.Barrier(2)
    answers: dict[str, object] = {}

    def approve(name, officer, lid):
        try:
            barrier.wait()
            answers[name] = post(officer, f"/api/v1/loans/{lid}/approve")
        finally:
            connection.close()

    threads = [threading.Thread(target=approve, args=("a", a.officer, la)),
               threading.Thread(target=approve, args=("b", b.officer, lb))]
    [t.start() for t in threads]
    [t.join(60) for t in threads]
    codes = sorted(r.status_code for r in answers.values())
    assert codes == [200, 409], {k: (v.status_code, v.content) for k, v in answers.items()}
    loser_name = next(k for k, v in answers.items() if v.status_code == 409)
    loser_lid, winner_lid = (la, lb) if loser_name == "a" else (lb, la)
    loser_shop, winner_shop = (a, b) if loser_name == "a" else (b, a)
    body = answers[loser_name].json()
    assert body["code"] == "stacking_limit" and body["details"]["rule"] == "max_active_loans"
    assert body["details"]["holders"] == [{"mfi": winner_shop.mfi.code, "district": "maseru", "state": "reserved"}]
    assert Loan.objects.get(pk=loser_lid).status == "under_review"
    assert AuditEvent.objects.filter(action="loan.approve_refused", target_id=str(loser_lid)).count() == 1

    # the winner withdraws; once the outbox ships, the loser's MFI can approve
    assert post(a.borrower_user, f"/api/v1/loans/{winner_lid}/withdraw").status_code == 200
    assert ship_batch(write_event).failed == 0
    assert holds_read(a.borrower.borrower_key).holds == {}
    r = post(loser_shop.officer, f"/api/v1/loans/{loser_lid}/approve")
    assert r.status_code == 200, r.content
    held = holds_read(a.borrower.borrower_key).holds
    assert [h["mfi"] for h in held.values()] == [loser_shop.mfi.code]


@pytest.mark.django_db
def test_debt_to_income_limit_counts_loans_at_other_mfis(network_policy):
    network_policy(max_dti=Decimal("0.20"))
    a = open_shop("alpha")  # income 8500: 20 % is 1700 a month
    la = apply(a, principal="10000.00")  # 1004.62 a month
    to_review(a, la)
    assert post(a.officer, f"/api/v1/loans/{la}/approve").status_code == 200
    b = open_shop("beta")
    r = client_for(a.borrower_user).post("/api/v1/loans/", {
        "product": b.product_id, "principal": "8000.00", "number_of_repayments": 12,
        "expected_disbursement_date": "2026-12-01"}, format="json")
    lb = r.json()["id"]
    assert post(a.borrower_user, f"/api/v1/loans/{lb}/submit").status_code == 200
    assert post(b.officer, f"/api/v1/loans/{lb}/review").status_code == 200
    body = err(post(b.officer, f"/api/v1/loans/{lb}/approve"), 409, "stacking_limit")
    assert body["details"]["rule"] == "max_dti"
    assert body["details"]["monthly_income"] == "8500.00"
    assert Decimal(body["details"]["dti"]) > Decimal("0.20")
    assert Decimal(body["details"]["monthly_repayments"]) == Decimal("1004.62") + Decimal("803.70")


@pytest.mark.django_db
def test_disbursement_turns_the_reservation_into_the_loan(network_policy):
    network_policy(max_active_loans=2)
    shop = open_shop(threshold="100000")
    lid = apply(shop, principal="5000.00")
    to_review(shop, lid)
    assert post(shop.officer, f"/api/v1/loans/{lid}/approve").status_code == 200
    ((k, hold),) = holds_read(shop.borrower.borrower_key).holds.items()
    assert hold["state"] == "reserved" and hold["expires_at"] and k.startswith("maseru/")
    post(shop.officer2, f"/api/v1/loans/{lid}/disbursement/initiate", {"channel": "cash"}, idem=key())
    r = post(shop.admin, f"/api/v1/loans/{lid}/disbursement/confirm", {"disbursement_date": "2026-12-01"}, idem=key())
    assert r.status_code == 200, r.content
    ((k2, hold),) = holds_read(shop.borrower.borrower_key).holds.items()
    assert k2 == k and hold["state"] == "active" and hold["expires_at"] is None
    assert hold["monthly_installment"] == "502.31"


# --- the credit report -------------------------------------------------------------------------------
@pytest.mark.django_db
def test_credit_report_shows_loans_at_every_mfi_and_logs_the_enquiry(network_policy):
    network_policy(max_active_loans=5)
    a = open_shop("alpha", threshold="100000")
    la = apply(a, principal="5000.00")
    to_review(a, la)
    assert post(a.officer, f"/api/v1/loans/{la}/approve").status_code == 200
    post(a.officer2, f"/api/v1/loans/{la}/disbursement/initiate", {"channel": "cash"}, idem=key())
    assert post(a.admin, f"/api/v1/loans/{la}/disbursement/confirm", {"disbursement_date": "2026-12-01"},
                idem=key()).status_code == 200
    b = open_shop("beta")
    r = client_for(a.borrower_user).post("/api/v1/loans/", {
        "product": b.product_id, "principal": "8000.00", "number_of_repayments": 12,
        "expected_disbursement_date": "2026-12-01"}, format="json")
    lb = r.json()["id"]
    assert ship_batch(write_event).failed == 0
    # beta's officer cannot see the borrower until the borrower is beta's client: the loan application made them one
    first = post(b.officer, f"/api/v1/loans/{lb}/credit-report")
    assert first.status_code == 200, first.content
    rep = first.json()
    assert rep["purpose"] == "loan_application"
    loans = {x["mfi"]: x for x in rep["loans"]}
    assert loans[a.mfi.code]["status"] == "active" and loans[a.mfi.code]["outstanding"] == "5000.00"
    assert loans[b.mfi.code]["this_application"] is True
    s = rep["summary"]
    assert s["active_loans"] == 1 and s["total_exposure"] == "5000.00"
    assert s["monthly_debt_service"] == "502.31" and s["new_monthly_installment"] == "803.70"
    assert s["debt_to_income"] == str((Decimal("1306.01") / Decimal("8500")).quantize(Decimal("0.0001")))
    assert rep["score"]["grade"] in "ABCDE" and rep["score"]["reasons"]
    kept = Loan.objects.get(pk=lb)  # the grade stays on the application, for the risk-grade report
    assert (kept.risk_grade, kept.risk_points) == (rep["score"]["grade"], rep["score"]["points"])
    assert kept.risk_assessed_at is not None
    assert a.borrower.national_id not in first.content.decode()
    # the look-up is an enquiry in the ring: the next report lists it, by beta, for a loan application
    second = post(a.officer, f"/api/v1/borrowers/{a.borrower.pk}/credit-report", {"purpose": "account_review"})
    assert second.status_code == 200, second.content
    enq = second.json()["enquiries"]
    assert enq[0]["mfi"] == b.mfi.code and enq[0]["purpose"] == "loan_application"
    assert second.json()["summary"]["enquiries_30_days"] == 1
    assert AuditEvent.objects.filter(action="credit.report", target_id=str(a.borrower.pk)).count() == 2


@pytest.mark.django_db
def test_credit_report_needs_consent_a_lender_and_a_known_purpose(test_cluster):
    shop = open_shop()
    apply(shop)  # applying makes the borrower a client of the MFI, whose staff may then look
    c = client_for(shop.officer)
    err(c.post(f"/api/v1/borrowers/{shop.borrower.pk}/credit-report", {"purpose": "curiosity"}, format="json"),
        400, "validation_error")
    err(client_for(shop.analyst).post(f"/api/v1/borrowers/{shop.borrower.pk}/credit-report", {}, format="json"),
        403, "permission_denied")
    assert post(shop.borrower_user, f"/api/v1/borrowers/{shop.borrower.pk}/consents/withdraw").status_code == 200
    err(c.post(f"/api/v1/borrowers/{shop.borrower.pk}/credit-report", {}, format="json"), 403, "consent_required")
    other = open_shop("other")
    err(client_for(other.officer).post(f"/api/v1/borrowers/{shop.borrower.pk}/credit-report", {}, format="json"),
        404, "not_found")


@pytest.mark.django_db
def test_credit_look_ups_past_the_hourly_limit_per_officer_are_refused_and_raise_an_alert(test_cluster, settings):
    """Reliability notes S4: a rogue or stolen officer account cannot harvest credit histories."""
    settings.LETSEMA_CREDIT_REPORTS_PER_HOUR = 3
    shop = open_shop()
    apply(shop)
    c = client_for(shop.officer)
    url = f"/api/v1/borrowers/{shop.borrower.pk}/credit-report"
    for _ in range(3):
        assert c.post(url, {}, format="json").status_code == 200
    alert: list[logging.LogRecord] = []
    handler = logging.Handler(level=logging.ERROR)
    handler.emit = lambda rec: alert.append(rec) if rec.getMessage() == "credit enquiry limit reached" else None
    logging.getLogger("letsema.credit").addHandler(handler)
    try:
        r = c.post(url, {}, format="json")
        body = err(r, 429, "enquiry_limit_reached")
        err(c.post(url, {}, format="json"), 429, "enquiry_limit_reached")  # still refused, alerted once
    finally:
        logging.getLogger("letsema.credit").removeHandler(handler)
    assert 3590 <= int(r["Retry-After"]) <= 3600 and body["details"] == {"limit": 3,
                                                                         "retry_after_seconds": int(r["Retry-After"])}
    assert len(alert) == 1 and alert[0].alert is True and alert[0].actor == shop.officer.pk
    assert AuditEvent.objects.filter(action="credit.enquiry_limit_reached", actor_id=shop.officer.pk).count() == 1
    assert AuditEvent.objects.filter(action="credit.report", actor_id=shop.officer.pk).count() == 3
    # the refused look-ups are not enquiries: the borrower's file shows the three that were made
    assert post(shop.officer2, url).json()["summary"]["enquiries_30_days"] == 3  # another officer has their own count
    settings.LETSEMA_CREDIT_REPORTS_PER_HOUR = 0  # 0: no limit
    assert c.post(url, {}, format="json").status_code == 200


@pytest.mark.django_db
def test_network_policy_is_read_by_staff_and_set_only_by_letsema_admins(network_policy):
    shop = open_shop()
    assert client_for(shop.officer).get("/api/v1/network/policy").json()["source"] == "default"
    body = {"max_active_loans": 2, "max_dti": "0.5500", "reservation_days": 14}
    err(client_for(shop.admin).put("/api/v1/network/policy", body, format="json"), 403, "permission_denied")
    admin = make_user("letsema_admin")
    r = client_for(admin).put("/api/v1/network/policy", body, format="json")
    assert r.status_code == 200, r.content
    assert client_for(shop.officer).get("/api/v1/network/policy").json() == {
        "max_active_loans": 2, "max_dti": "0.55", "reservation_days": 14, "source": "network"}
    assert AuditEvent.objects.filter(action="network.policy_set").count() == 1
    err(client_for(admin).put("/api/v1/network/policy", {**body, "max_dti": "9"}, format="json"), 400, "invalid_policy")


# --- ring quorum lost: fail closed, keep lending locally, drain and reconcile after -------------------
@pytest.mark.django_db
def test_without_ring_quorum_approvals_fail_closed_and_the_backlog_drains_after(test_cluster, network_policy):
    network_policy(max_active_loans=5)
    shop = open_shop()
    lid = apply(shop)
    to_review(shop, lid)
    assert ship_batch(write_event).failed == 0
    ring_launcher.stop_node(test_cluster, 3, kill=True)
    ring_launcher.stop_node(test_cluster, 2, kill=True)
    try:
        body = err(post(shop.officer, f"/api/v1/loans/{lid}/approve"), 503, "credit_network_unavailable")
        assert "nothing was approved" in body["message"]
        assert Loan.objects.get(pk=lid).status == "under_review"
        assert AuditEvent.objects.filter(action="loan.approve_refused", target_id=str(lid)).count() == 1
        err(post(shop.officer, f"/api/v1/loans/{lid}/credit-report"), 503, "credit_network_unavailable")
        assert Loan.objects.get(pk=lid).risk_assessed_at is None  # no report, nothing kept
        # local work goes on: reading the loan, and a new application (its event waits in the outbox)
        assert client_for(shop.officer).get(f"/api/v1/loans/{lid}/").status_code == 200
        second = apply(shop, principal="2000.00")
        result = ship_batch(write_event)
        assert result.shipped == 0 and result.failed >= 1
        lag = outbox_lag()
        assert lag.pending >= 1 and lag.failing >= 1
    finally:
        ring_launcher.start_node(test_cluster, 2, 3)
        ring_launcher.start_node(test_cluster, 3, 3)

    def drained():
        try:
            ship_batch(write_event)
        except Exception:
            return False
        return outbox_lag().pending == 0

    wait_for(drained, 90, interval=2, what="the outbox backlog to drain")
    rec = reconcile(repair=False)
    assert rec.missing == 0 and rec.checked == OutboxEvent.objects.count() and not rec.errors, rec
    assert post(shop.officer, f"/api/v1/loans/{lid}/approve").status_code == 200
    assert Loan.objects.get(pk=second).status == "draft"


@pytest.mark.django_db
def test_reconciliation_finds_and_repairs_an_event_the_ring_lost(test_cluster):
    shop = open_shop()
    apply(shop)
    assert ship_batch(write_event).failed == 0
    ev = OutboxEvent.objects.get(event_type="loan.applied")
    session, cl = get_session()
    session.execute(SimpleStatement("DELETE FROM credit_events WHERE borrower_key = %s AND event_time = %s AND "
                                    "event_id = %s", consistency_level=cl), (ev.partition_key, ev.occurred_at, ev.event_id))
    found = reconcile(repair=False)
    assert (found.checked, found.missing, found.repaired) == (1, 1, 0)
    fixed = reconcile(repair=True)
    assert (fixed.missing, fixed.repaired) == (1, 1)
    again = reconcile(repair=False)
    assert (again.checked, again.present, again.missing) == (1, 1, 0)
