"""Paybill payments (node/repayments/mobile_money.py, docs/mobile-money.md): a payer sends money from the phone's menu
to the MFI's business number with the loan reference as the account; the provider's signed notice posts it on that
loan — once, whatever is replayed. Money whose account matches no loan is kept on the books (Unapplied receipts)
until an MFI admin applies it to the right loan or pays it back. Real PostgreSQL (the test cluster); the provider is
played by the test (its own HMAC code)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import date, timedelta
from decimal import Decimal as D

import pytest
from django.utils import timezone

from node.audit.models import AuditEvent
from node.ledger.models import JournalEntry
from node.loans.models import Loan
from node.repayments.models import MobileMoneyPayment, Repayment
from tests.factories import client_for
from tests.loan_fixtures import disbursed, err, key, open_shop, post

pytestmark = pytest.mark.django_db
SECRET = "test-paybill-secret-0123456789abcdef"
PAYBILL = "/api/v1/mobile-money/paybill"
CHECK = "/api/v1/mobile-money/paybill/check"


@pytest.fixture(autouse=True)
def provider(settings):
    settings.MOBILE_MONEY_SECRET = SECRET


def notice(body: dict | bytes, *, secret: str = SECRET, ts: int | None = None, path: str = PAYBILL):
    """POST a paybill notice as the provider does: HMAC-SHA256 over "<timestamp>." + the raw body."""
    from rest_framework.test import APIClient

    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    stamp = str(int(time.time()) if ts is None else ts)
    mac = hmac.new(secret.encode(), stamp.encode() + b"." + raw, hashlib.sha256).hexdigest()
    return APIClient().post(path, data=raw, content_type="application/json",
                            HTTP_X_LETSEMA_TIMESTAMP=stamp, HTTP_X_LETSEMA_SIGNATURE=f"sha256={mac}")


def with_paybill(code: str, number: str):
    shop = open_shop(code)
    r = client_for(shop.admin).put(f"/api/v1/mfis/{shop.mfi.code}/paybill", {"paybill_number": number},
                                   format="json")
    assert r.status_code == 200 and r.json()["paybill_number"] == number, r.content
    shop.mfi.refresh_from_db()
    return shop


def balance(shop, code: str) -> D:
    """An account's balance in the MFI's trial balance (which must balance)."""
    from node.ledger.selectors import trial_balance

    tb = trial_balance(mfi=shop.mfi, as_of=date.today() + timedelta(days=1))
    assert tb.total_debit == tb.total_credit
    return {r.code: r.balance for r in tb.rows}[code]


def outstanding(shop, lid) -> D:
    r = client_for(shop.officer).get(f"/api/v1/loans/{lid}/balance")
    assert r.status_code == 200, r.content
    return D(r.json()["outstanding"]["total"])


def test_money_sent_to_the_business_number_with_the_loan_reference_is_posted_on_that_loan_once():
    shop = with_paybill("paybill", "880101")
    lid = disbursed(shop, principal="1000.00", n=3, on="2026-01-01")
    ref = Loan.objects.get(pk=lid).reference
    before, cash = outstanding(shop, lid), balance(shop, "1000")
    paid_at = timezone.now() - timedelta(days=2)
    # the payer types the reference in lower case with a space: still that loan
    body = {"transaction_id": "PB2612070001", "business_number": "880101",
            "account_reference": f" {ref[:5].lower()} {ref[5:].lower()}", "amount": "120.00",
            "phone": "26658001122", "paid_at": paid_at.isoformat()}
    r = notice(body)
    assert r.status_code == 201, r.content
    got = r.json()
    assert (got["kind"], got["status"], got["loan"], got["loan_reference"], got["amount_received"]) == (
        "paybill", "paid", lid, ref, "120.00")
    rep = Repayment.objects.get(loan_id=lid)
    assert (rep.amount, rep.channel, rep.reference, rep.receipt_number) == (
        D("120.00"), "mobile_money", "PB2612070001", got["receipt_number"])
    assert rep.payment_date == timezone.localtime(paid_at).date()  # the day the borrower paid, not the day it arrived
    assert rep.posted_by.username == f"mobile-money@{shop.mfi.code}"
    assert outstanding(shop, lid) == before - D("120.00") and balance(shop, "1000") == cash + D("120.00")
    assert balance(shop, "2150") == 0  # nothing in suspense
    # the provider retries: 200, the same payment, nothing posted twice
    again = notice(body)
    assert again.status_code == 200 and again.json()["id"] == got["id"]
    assert Repayment.objects.filter(loan_id=lid).count() == 1
    # the same transaction id with anything else changed: refused
    err(notice({**body, "amount": "121.00"}), 409, "transaction_id_reused")
    err(notice({**body, "account_reference": "SOMETHING-ELSE"}), 409, "transaction_id_reused")
    assert Repayment.objects.filter(loan_id=lid).count() == 1
    # the borrower and the staff see it among the loan's mobile-money payments
    for user in (shop.borrower_user, shop.officer):
        (row,) = client_for(user).get(f"/api/v1/loans/{lid}/mobile-money").json()
        assert (row["kind"], row["status"], row["receipt_number"]) == ("paybill", "paid", rep.receipt_number)
    assert AuditEvent.objects.filter(action="mobile_money.paybill", target_type="loan", target_id=str(lid)).count() == 1


def test_an_unknown_account_is_kept_on_the_books_until_an_admin_applies_it_to_the_right_loan():
    shop = with_paybill("paybill-typo", "880202")
    lid = disbursed(shop, principal="1000.00", n=3, on="2026-01-01")
    ref = Loan.objects.get(pk=lid).reference
    before, cash = outstanding(shop, lid), balance(shop, "1000")
    r = notice({"transaction_id": "PB-TYPO-1", "business_number": "880202", "account_reference": "MY LOAN",
                "amount": "75.50", "phone": "+26658009988"})
    assert r.status_code == 201, r.content  # accepted: the money was taken, the provider must not retry forever
    p = r.json()
    assert (p["status"], p["loan"], p["account_reference"], p["receipt_number"]) == ("unapplied", None, "MY LOAN", None)
    assert "no loan of" in p["reason"] and "'MYLOAN'" in p["reason"]
    assert balance(shop, "2150") == D("75.50") and balance(shop, "1000") == cash + D("75.50")
    assert outstanding(shop, lid) == before
    # on the MFI's worklist, for its staff only
    (row,) = client_for(shop.officer).get("/api/v1/mobile-money/unapplied").json()
    assert row["id"] == p["id"] and row["account_reference"] == "MY LOAN"
    assert client_for(open_shop("paybill-other").admin).get("/api/v1/mobile-money/unapplied").json() == []
    assert client_for(shop.borrower_user).get("/api/v1/mobile-money/unapplied").status_code == 403

    apply_path = f"/api/v1/mobile-money/{p['id']}/apply"
    err(post(shop.officer, apply_path, {"loan_reference": ref}, idem=key()), 403, "permission_denied")
    err(post(shop.admin, apply_path, {"loan_reference": "NOPE-1"}, idem=key()), 404, "not_found")
    stranger = open_shop("paybill-stranger")
    their = disbursed(stranger, principal="1000.00", n=3, on="2026-01-01")
    err(post(shop.admin, apply_path, {"loan_reference": Loan.objects.get(pk=their).reference}, idem=key()), 404,
        "not_found")  # another MFI's loan is not found
    err(post(stranger.admin, apply_path, {"loan_reference": ref}, idem=key()), 404, "not_found")  # nor its payment
    assert MobileMoneyPayment.objects.get(pk=p["id"]).status == "unapplied"

    r = post(shop.admin, apply_path, {"loan_reference": ref.lower()}, idem=key())
    assert r.status_code == 200, r.content
    done = r.json()
    assert (done["status"], done["loan"], done["amount_received"]) == ("paid", lid, "75.50") and done["applied_at"]
    rep = Repayment.objects.get(loan_id=lid)
    assert (rep.amount, rep.reference, rep.posted_by_id, rep.receipt_number) == (
        D("75.50"), "PB-TYPO-1", shop.admin.pk, done["receipt_number"])
    assert rep.payment_date == timezone.localdate()  # the day the money came in
    # out of suspense, onto the loan; cash counted once
    assert balance(shop, "2150") == 0 and balance(shop, "1000") == cash + D("75.50")
    assert outstanding(shop, lid) == before - D("75.50")
    keys = set(JournalEntry.objects.filter(reference_type="mobile_money").values_list("source_key", flat=True))
    assert keys == {f"mobile_money:{p['id']}:received", f"mobile_money:{p['id']}:applied"}
    # twice: refused, nothing posted again; off the worklist; refund now refused too
    err(post(shop.admin, apply_path, {"loan_reference": ref}, idem=key()), 409, "illegal_transition")
    err(post(shop.admin, f"/api/v1/mobile-money/{p['id']}/refund", {}, idem=key()), 409, "illegal_transition")
    assert Repayment.objects.filter(loan_id=lid).count() == 1
    assert client_for(shop.admin).get("/api/v1/mobile-money/unapplied").json() == []
    audit = AuditEvent.objects.get(action="mobile_money.apply")
    assert audit.after["receipt"] == rep.receipt_number and audit.before["loan"] is None


def test_money_for_a_loan_that_cannot_take_it_is_unapplied_and_can_be_paid_back():
    shop = with_paybill("paybill-closed", "880303")
    lid = disbursed(shop, principal="1000.00", n=3, on="2026-01-01")
    loan = Loan.objects.get(pk=lid)
    owed = outstanding(shop, lid)
    assert post(shop.officer, f"/api/v1/loans/{lid}/repayments",
                {"amount": str(owed), "payment_date": "2026-03-01", "channel": "cash"},
                idem=key()).status_code == 201
    r = notice({"transaction_id": "PB-LATE-1", "business_number": "880303", "account_reference": loan.reference,
                "amount": "40.00", "phone": "26658001122"})
    assert r.status_code == 201, r.content
    p = r.json()
    assert (p["status"], p["loan"]) == ("unapplied", lid) and p["reason"].startswith("illegal_transition")
    assert balance(shop, "2150") == D("40.00")
    # applying it to the closed loan again is refused by the posting itself, nothing written
    err(post(shop.admin, f"/api/v1/mobile-money/{p['id']}/apply", {"loan_reference": loan.reference}, idem=key()),
        409, "illegal_transition")
    assert MobileMoneyPayment.objects.get(pk=p["id"]).status == "unapplied" and balance(shop, "2150") == D("40.00")
    r = post(shop.admin, f"/api/v1/mobile-money/{p['id']}/refund", {"reference": "M-Pesa B2C 11"}, idem=key())
    assert r.status_code == 200 and r.json()["status"] == "refunded", r.content
    assert balance(shop, "2150") == 0


def test_an_overpayment_by_paybill_is_held_for_the_borrower_and_closes_the_loan():
    shop = with_paybill("paybill-over", "880404")
    lid = disbursed(shop, principal="1000.00", n=3, on="2026-01-01")
    owed = outstanding(shop, lid)
    r = notice({"transaction_id": "PB-OVER-1", "business_number": "880404",
                "account_reference": Loan.objects.get(pk=lid).reference, "amount": str(owed + D("25.00")),
                "phone": "26658001122"})
    assert r.status_code == 201 and r.json()["status"] == "paid", r.content
    loan = Loan.objects.get(pk=lid)
    assert loan.status == "closed"
    assert Repayment.objects.get(loan_id=lid).overpayment == D("25.00")
    assert balance(shop, "2100") == D("25.00")  # held as a liability, refundable


def test_bad_notices_are_refused_and_write_nothing():
    shop = with_paybill("paybill-bad", "880505")
    lid = disbursed(shop, principal="1000.00", n=3, on="2026-01-01")
    ref = Loan.objects.get(pk=lid).reference
    good = {"transaction_id": "PB-BAD-1", "business_number": "880505", "account_reference": ref, "amount": "10.00",
            "phone": "26658001122"}
    err(notice(good, secret="wrong"), 401, "invalid_signature")
    err(notice(good, ts=int(time.time()) - 301), 401, "invalid_signature")
    err(notice({**good, "business_number": "999999"}), 404, "unknown_business_number")
    for bad in ({"amount": "-5"}, {"amount": 10.5}, {"amount": "1.001"}, {"phone": "call me"},
                {"transaction_id": ""}, {"account_reference": "x" * 65},
                {"paid_at": "yesterday"}, {"paid_at": "2026-12-07T10:00:00"},
                {"paid_at": (timezone.now() - timedelta(days=31)).isoformat()}):
        e = err(notice({**good, **bad}), 400, "validation_error")
        assert set(e["details"]["fields"]) == {next(iter(bad))}, (bad, e)
    err(notice(b"[1, 2]"), 400, "validation_error")
    assert not MobileMoneyPayment.objects.filter(mfi=shop.mfi).exists()
    assert not Repayment.objects.filter(loan_id=lid).exists()


def test_the_business_number_is_set_by_the_mfis_admins_and_belongs_to_one_mfi(settings):
    shop = with_paybill("paybill-set", "880606")
    path = f"/api/v1/mfis/{shop.mfi.code}/paybill"
    other = open_shop("paybill-set2")
    err(client_for(other.admin).put(f"/api/v1/mfis/{other.mfi.code}/paybill", {"paybill_number": "880606"},
                                    format="json"), 409, "paybill_number_taken")
    err(client_for(other.admin).put(path, {"paybill_number": "123456"}, format="json"), 404, "not_found")
    err(client_for(shop.officer).put(path, {"paybill_number": "123456"}, format="json"), 403, "permission_denied")
    err(client_for(shop.admin).put(path, {"paybill_number": "12ab"}, format="json"), 400, "validation_error")
    r = client_for(shop.admin).put(path, {"paybill_number": None}, format="json")
    assert r.status_code == 200 and r.json()["paybill_number"] is None
    # cleared: its old number now reaches nobody, and the other MFI may take it
    err(notice({"transaction_id": "PB-SET-1", "business_number": "880606", "account_reference": "X",
                "amount": "1.00", "phone": "26658001122"}), 404, "unknown_business_number")
    r = client_for(other.admin).put(f"/api/v1/mfis/{other.mfi.code}/paybill", {"paybill_number": "880606"},
                                    format="json")
    assert r.status_code == 200, r.content
    actions = list(AuditEvent.objects.filter(action="mfi.paybill_set").values_list("after", flat=True))
    assert {"paybill_number": None} in actions and actions.count({"paybill_number": "880606"}) == 2


def test_the_provider_asks_first_and_a_payment_no_loan_can_take_is_refused_at_the_phone():
    """M-Pesa's C2B validation: the same signed body, before the money moves. Accepted for an active loan of the
    MFI (whatever the payer's spacing and case); refused with a stable reason otherwise; nothing written either way."""
    shop = with_paybill("paybill-check", "880707")
    lid = disbursed(shop, principal="1000.00", n=3, on="2026-01-01")
    ref = Loan.objects.get(pk=lid).reference
    body = {"transaction_id": "PB-CHK-1", "business_number": "880707", "account_reference": f" {ref.lower()} ",
            "amount": "50.00", "phone": "26658001122"}
    other = with_paybill("paybill-check2", "880708")  # another MFI's business number: not that MFI's loan
    audit_rows, entries = AuditEvent.objects.count(), JournalEntry.objects.filter(mfi=shop.mfi).count()

    def check(extra: dict | None = None) -> dict:
        r = notice({**body, **(extra or {})}, path=CHECK)
        assert r.status_code == 200, r.content
        return r.json()

    ok = check()
    assert ok == {"accept": True, "transaction_id": "PB-CHK-1", "business_number": "880707",
                  "account_reference": f" {ref.lower()} ".strip(), "mfi": shop.mfi.code, "loan_reference": ref}
    typo = check({"account_reference": "MY LOAN"})
    assert (typo["accept"], typo["reason"]) == (False, "unknown_account") and "MYLOAN" in typo["message"]
    assert check({"business_number": "999999"})["reason"] == "unknown_business_number"
    assert check({"business_number": "880708"})["reason"] == "unknown_account"
    # bad requests as for the notice: signature, fields
    err(notice(body, secret="wrong", path=CHECK), 401, "invalid_signature")
    err(notice({**body, "amount": "-1"}, path=CHECK), 400, "validation_error")
    assert not MobileMoneyPayment.objects.filter(mfi__in=[shop.mfi, other.mfi]).exists()
    assert AuditEvent.objects.count() == audit_rows
    assert JournalEntry.objects.filter(mfi=shop.mfi).count() == entries
    # the loan paid off: the next payment is refused at the phone instead of landing in unapplied receipts
    owed = outstanding(shop, lid)
    assert post(shop.officer, f"/api/v1/loans/{lid}/repayments",
                {"amount": str(owed), "payment_date": "2026-03-01", "channel": "cash"},
                idem=key()).status_code == 201
    closed = check()
    assert (closed["accept"], closed["reason"]) == (False, "loan_not_active") and "closed" in closed["message"]


@pytest.mark.django_db(transaction=True)
def test_ten_deliveries_of_one_paybill_notice_at_the_same_instant_post_it_once():
    import threading

    from django.db import connection

    from node.repayments.mobile_money import mobile_money_paybill

    shop = with_paybill("paybill-race", "880707")
    lid = disbursed(shop, principal="1000.00", n=3, on="2026-01-01")
    raw = json.dumps({"transaction_id": "PB-RACE", "business_number": "880707", "amount": "33.00",
                      "account_reference": Loan.objects.get(pk=lid).reference, "phone": "26658001122"}).encode()
    stamp = str(int(time.time()))
    sig = "sha256=" + hmac.new(SECRET.encode(), stamp.encode() + b"." + raw, hashlib.sha256).hexdigest()
    barrier, answers, lock = threading.Barrier(10), [], threading.Lock()

    def deliver():
        try:
            barrier.wait()
            got, new = mobile_money_paybill(body=raw, timestamp=stamp, signature=sig)
            with lock:
                answers.append((got.status, got.repayment_id, new))
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    rep = Repayment.objects.get(loan_id=lid)  # exactly one
    assert rep.amount == D("33.00")
    assert sorted(answers, key=lambda a: not a[2]) == [("paid", rep.pk, True)] + [("paid", rep.pk, False)] * 9
