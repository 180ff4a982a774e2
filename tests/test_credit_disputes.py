"""Disputes of a credit record (node/credit/disputes.py): a borrower disputes a loan's record in their network
history, every credit report shows it as under dispute until the lender answers, and the lender answers on the node
that owns the loan. Against the real ring; the cross-district filing is in tests/test_borrowers_anywhere.py."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from federation.errors import FederationPayloadError, FederationUnsupportedSchema
from federation.fanout import BadResponse
from node.audit.models import AuditEvent
from node.credit.models import CreditDispute
from node.credit.report import RingRow, fold
from node.loans.models import Loan
from node.notifications.models import Notification
from node.peers.schemas import DisputeAnswer, DisputeRequest
from replication.events import event_insert
from replication.models import OutboxEvent
from replication.outbox import ship_batch
from replication.ring_writer import write_event
from tests.loan_fixtures import apply, client_for, err, open_shop, post

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def _row(minutes: int, event_type: str, **payload) -> RingRow:
    return RingRow(T0 + timedelta(minutes=minutes), str(uuid.uuid4()), event_type, "maseru",
                   {"district": "maseru", "mfi": "alpha", **payload})


def test_the_report_marks_a_loan_under_dispute_until_the_lender_answers():
    opened = [_row(0, "loan.applied", loan_ref="L-1", principal="1000.00"),
              _row(1, "loan.applied", loan_ref="L-2", principal="500.00"),
              _row(2, "dispute.opened", dispute_id="d1", loan_ref="L-1", reason="wrong_amount",
                   respond_by="2026-11-22")]
    r = fold("k", opened, as_of=T0 + timedelta(days=1))
    lines = {x.loan_ref: x for x in r.loans}
    assert lines["L-1"].under_dispute and not lines["L-2"].under_dispute and r.disputed_loans == 1
    [d] = r.disputes
    assert (d.dispute_id, d.loan_key, d.reason, d.status, str(d.respond_by)) == (
        "d1", "maseru/L-1", "wrong_amount", "open", "2026-11-22")
    # the application being assessed is left out of the summary, its dispute flag too
    assert fold("k", opened, as_of=T0, exclude_loan_key="maseru/L-1").disputed_loans == 0

    answered = fold("k", [*opened, _row(3, "dispute.resolved", dispute_id="d1", loan_ref="L-1", outcome="rejected")],
                    as_of=T0 + timedelta(days=2))
    assert not any(x.under_dispute for x in answered.loans) and answered.disputed_loans == 0
    [d] = answered.disputes
    assert d.status == "rejected" and d.resolved_at == T0 + timedelta(minutes=3)
    # an answer to a dispute the partition does not hold opens nothing
    stray = fold("k", [_row(0, "dispute.resolved", dispute_id="zz", loan_ref="L-9", outcome="corrected")], as_of=T0)
    assert stray.disputes == () and stray.loans == ()


def test_the_wire_payloads_are_strict():
    key = "v1:" + "ab" * 32
    ok = DisputeRequest(key, "L-1", "wrong_amount", "").to_json()
    assert DisputeRequest.from_json(ok).loan_ref == "L-1"
    for bad in ({**ok, "extra": 1}, {**ok, "schema": 2}, {**ok, "loan_ref": ""}, {**ok, "details": "x" * 1001},
                {**ok, "borrower_key": "123"}, {**ok, "reason": 3}):
        with pytest.raises((FederationPayloadError, FederationUnsupportedSchema)):
            DisputeRequest.from_json(bad)
    filed = DisputeAnswer("maseru", True, "d1", "2026-12-28", "", "").to_json()
    assert DisputeAnswer.from_json(filed).dispute_id == "d1"
    for bad in ({**filed, "dispute_id": None}, {**filed, "filed": False}, {**filed, "respond_by": 5}):
        with pytest.raises(BadResponse):
            DisputeAnswer.from_json(bad)


def _history(user) -> dict:
    r = client_for(user).get("/api/v1/me/credit-history")
    assert r.status_code == 200, r.content
    return r.json()


def _ship():
    assert ship_batch(write_event, limit=500).failed == 0


@pytest.mark.django_db
def test_a_borrower_disputes_a_record_and_the_lender_answers(test_cluster):
    shop, other = open_shop("disputed"), open_shop("bystander")
    lid = apply(shop)
    loan = Loan.objects.get(pk=lid)
    _ship()
    loan_key = f"maseru/{loan.reference}"
    assert [x["under_dispute"] for x in _history(shop.borrower_user)["loans"]] == [False]

    r = post(shop.borrower_user, "/api/v1/me/credit-history/disputes",
             {"loan_key": loan_key, "reason": "wrong_amount", "details": "I asked for 5,000, not 10,000."})
    assert r.status_code == 201, r.content
    filed = r.json()
    today = datetime.now(UTC).date()
    assert filed["loan_key"] == loan_key and filed["lender_district"] == "maseru" and filed["status"] == "open"
    assert filed["respond_by"] == str(today + timedelta(days=21))
    d = CreditDispute.objects.get()
    assert (str(d.id), d.loan_id, d.mfi_id, d.status, d.filed_at_district) == (
        filed["dispute_id"], lid, shop.mfi.pk, "open", "maseru")
    assert d.details == "I asked for 5,000, not 10,000."
    assert AuditEvent.objects.filter(action="credit.dispute_opened", target_id=str(lid)).count() == 1
    assert AuditEvent.objects.filter(action="credit.dispute_filed", actor=shop.borrower_user).count() == 1
    ev = OutboxEvent.objects.get(event_type="dispute.opened")
    assert ev.partition_key == shop.borrower.borrower_key
    assert "5,000" not in str(ev.payload)  # the borrower's words stay on the lender's node
    _ship()

    # every report shows it: the borrower's own history and a lender's credit report
    mine = _history(shop.borrower_user)
    assert mine["summary"]["disputed_loans"] == 1 and mine["loans"][0]["under_dispute"] is True
    assert [(x["dispute_id"], x["status"], x["reason"]) for x in mine["disputes"]] == [
        (filed["dispute_id"], "open", "wrong_amount")]
    report = post(shop.officer, f"/api/v1/borrowers/{shop.borrower.pk}/credit-report", {"purpose": "account_review"})
    assert report.status_code == 200, report.content
    assert report.json()["summary"]["disputed_loans"] == 1 and report.json()["loans"][0]["under_dispute"] is True

    # one open dispute per loan
    err(post(shop.borrower_user, "/api/v1/me/credit-history/disputes", {"loan_key": loan_key, "reason": "other",
                                                                        "details": "again"}),
        409, "dispute_already_open")

    # the lender's staff see and answer it; another MFI's staff cannot
    assert client_for(other.officer).get("/api/v1/credit/disputes").json() == []
    err(post(other.officer, f"/api/v1/credit/disputes/{d.id}/resolve", {"outcome": "rejected", "note": "no"}),
        404, "not_found")
    [listed] = client_for(shop.officer).get("/api/v1/credit/disputes").json()
    assert listed["dispute_id"] == str(d.id) and listed["overdue"] is False and listed["details"] == d.details
    err(post(shop.officer, f"/api/v1/credit/disputes/{d.id}/resolve", {"outcome": "rejected", "note": " "}),
        400, "validation_error")
    answered = post(shop.officer, f"/api/v1/credit/disputes/{d.id}/resolve",
                    {"outcome": "rejected", "note": "The signed contract is for LSL 10,000."})
    assert answered.status_code == 200, answered.content
    assert answered.json()["status"] == "rejected" and answered.json()["resolved_by"] == shop.officer.username
    err(post(shop.officer, f"/api/v1/credit/disputes/{d.id}/resolve", {"outcome": "corrected", "note": "x"}),
        409, "dispute_not_open")
    assert client_for(shop.officer).get("/api/v1/credit/disputes").json() == []
    assert [x["status"] for x in client_for(shop.officer).get("/api/v1/credit/disputes?status=all").json()] == [
        "rejected"]
    assert AuditEvent.objects.filter(action="credit.dispute_resolved", target_id=str(lid)).count() == 1
    # the borrower is told the answer, with the lender's note (one message per answer)
    [told] = Notification.objects.filter(borrower=shop.borrower, kind="dispute_confirmed")
    assert told.context == {"mfi": shop.mfi.name, "reference": loan.reference, "opened_on": str(today),
                            "note": "The signed contract is for LSL 10,000."}
    _ship()
    after = _history(shop.borrower_user)
    assert after["summary"]["disputed_loans"] == 0 and after["loans"][0]["under_dispute"] is False
    assert [x["status"] for x in after["disputes"]] == ["rejected"]

    # answered, the borrower may dispute it again (with something new to say)
    again = post(shop.borrower_user, "/api/v1/me/credit-history/disputes",
                 {"loan_key": loan_key, "reason": "other", "details": "Here is my copy of the contract."})
    assert again.status_code == 201, again.content


@pytest.mark.django_db
def test_bad_disputes_are_refused_and_leave_nothing(test_cluster):
    shop, other = open_shop("refusals"), open_shop("stranger")
    lid, theirs = apply(shop), apply(other)
    _ship()
    ref, their_ref = Loan.objects.get(pk=lid).reference, Loan.objects.get(pk=theirs).reference
    path = "/api/v1/me/credit-history/disputes"
    err(post(shop.borrower_user, path, {"loan_key": f"maseru/{their_ref}", "reason": "not_my_loan"}), 404,
        "unknown_credit_entry")  # someone else's loan is not in your history
    err(post(shop.borrower_user, path, {"loan_key": "leribe/NOPE-1", "reason": "not_my_loan"}), 404,
        "unknown_credit_entry")
    err(post(shop.borrower_user, path, {"loan_key": f"maseru/{ref}", "reason": "other"}), 400, "validation_error")
    err(post(shop.borrower_user, path, {"loan_key": f"maseru/{ref}", "reason": "bad"}), 400, "validation_error")
    err(post(shop.borrower_user, path, {"loan_key": f"maseru/{ref}", "reason": "other", "details": "x" * 1001}),
        400, "validation_error")
    err(post(shop.officer, path, {"loan_key": f"maseru/{ref}", "reason": "not_my_loan"}), 403, "permission_denied")
    err(client_for(shop.borrower_user).get("/api/v1/credit/disputes"), 403, "permission_denied")
    err(client_for(shop.officer).get("/api/v1/credit/disputes", {"status": "pending"}), 400, "validation_error")
    err(post(shop.officer, f"/api/v1/credit/disputes/{uuid.uuid4()}/resolve", {"outcome": "corrected", "note": "x"}),
        404, "not_found")
    # a record written by a district this node cannot reach: nothing is filed anywhere, and the borrower is told
    event_insert(partition_key=shop.borrower.borrower_key, event_time=datetime.now(UTC), event_id=uuid.uuid4(),
                 event_type="loan.applied", origin_district="gone",
                 payload={"district": "gone", "mfi": "x", "loan_ref": "G-1", "principal": "100.00"})
    e = err(post(shop.borrower_user, path, {"loan_key": "gone/G-1", "reason": "not_my_loan"}), 503,
            "lender_district_unavailable")
    assert e["details"]["district"] == "gone" and "nothing was filed" in e["message"]
    assert not CreditDispute.objects.exists()
    assert not OutboxEvent.objects.filter(event_type__startswith="dispute.").exists()
    assert not AuditEvent.objects.filter(action__startswith="credit.dispute").exists()


def _web(user):
    c = Client()
    c.force_login(user)
    return c


@pytest.mark.django_db
def test_the_web_pages_file_flag_and_answer_a_dispute(test_cluster):
    shop = open_shop("webdispute")
    lid = apply(shop)
    ref = Loan.objects.get(pk=lid).reference
    _ship()
    me = _web(shop.borrower_user)
    page = me.get("/me/credit/")
    assert page.status_code == 200 and ref in page.content.decode() and "Send my dispute" in page.content.decode()
    bad = me.post("/me/credit/", {"loan_key": f"maseru/{ref}", "reason": "other", "details": ""})
    assert bad.status_code == 400 and not CreditDispute.objects.exists()
    sent = me.post("/me/credit/", {"loan_key": f"maseru/{ref}", "reason": "wrong_status", "details": "Paid in May."})
    assert sent.status_code == 302 and sent["Location"] == "/me/credit/"
    d = CreditDispute.objects.get()
    _ship()
    html = me.get("/me/credit/").content.decode()
    assert "under dispute" in html and "waiting for the lender" in html
    assert "Send my dispute" not in html  # the only loan is already disputed

    staff = _web(shop.officer)
    listed = staff.get("/staff/disputes/").content.decode()
    assert ref in listed and "Paid in May." in listed and f"/staff/disputes/{d.id}/answer" in listed
    assert staff.post(f"/staff/disputes/{d.id}/answer", {"outcome": "rejected", "note": ""}).status_code == 400
    done = staff.post(f"/staff/disputes/{d.id}/answer", {"outcome": "corrected", "note": "Fixed the status."})
    assert done.status_code == 302
    d.refresh_from_db()
    assert d.status == "corrected" and d.resolved_by == shop.officer
    assert Notification.objects.filter(borrower=shop.borrower, kind="dispute_corrected").count() == 1
    assert "No disputes." in staff.get("/staff/disputes/").content.decode()
    assert "Fixed the status." in staff.get("/staff/disputes/?show=all").content.decode()
    assert _web(shop.borrower_user).get("/staff/disputes/").status_code in (302, 403)
