"""Mobile-money collections (node/repayments/mobile_money.py): a borrower asks to pay from a phone, the provider
prompts it, and the provider's signed confirmation posts the repayment — once, whatever is replayed; a bad or stale
signature is refused; money taken for a loan that cannot take it any more is kept visible, never dropped. Real
PostgreSQL (the test cluster); the provider is played by the test (signing with its own HMAC code)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import date, timedelta
from decimal import Decimal as D

import pytest

from node.audit.models import AuditEvent
from node.loans.models import Loan
from node.repayments.models import MobileMoneyPayment, Repayment
from tests.factories import client_for
from tests.loan_fixtures import apply, disbursed, err, key, open_shop, post

pytestmark = pytest.mark.django_db
SECRET = "test-mobile-money-secret-0123456789"
CONFIRM = "/api/v1/mobile-money/confirmations"


@pytest.fixture(autouse=True)
def provider(settings, tmp_path):
    settings.MOBILE_MONEY_SECRET = SECRET
    settings.MOBILE_MONEY_BACKEND = "file"
    settings.MOBILE_MONEY_FILE_PATH = tmp_path / "prompts.jsonl"
    return tmp_path / "prompts.jsonl"


def prompts(path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def confirm(body: dict | bytes, *, secret: str = SECRET, ts: int | None = None, sign_body: bytes | None = None):
    """POST a confirmation as the provider does: HMAC-SHA256 over "<timestamp>." + the raw body."""
    from rest_framework.test import APIClient

    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    stamp = str(int(time.time()) if ts is None else ts)
    mac = hmac.new(secret.encode(), stamp.encode() + b"." + (sign_body or raw), hashlib.sha256).hexdigest()
    return APIClient().post(CONFIRM, data=raw, content_type="application/json",
                            HTTP_X_LETSEMA_TIMESTAMP=stamp, HTTP_X_LETSEMA_SIGNATURE=f"sha256={mac}")


def ask(shop, lid, amount, django_capture_on_commit_callbacks, **extra):
    with django_capture_on_commit_callbacks(execute=True):
        return client_for(shop.borrower_user).post(f"/api/v1/loans/{lid}/mobile-money", {"amount": amount, **extra},
                                                   format="json")


def suspense(shop) -> D:
    """The MFI's unapplied receipts (2150): money taken that no loan took, owed back; the books still balance."""
    from node.ledger.selectors import trial_balance

    tb = trial_balance(mfi=shop.mfi, as_of=date.today() + timedelta(days=1))
    assert tb.total_debit == tb.total_credit
    return {r.code: r.balance for r in tb.rows}["2150"]


def outstanding(shop, lid) -> D:
    r = client_for(shop.officer).get(f"/api/v1/loans/{lid}/balance")
    assert r.status_code == 200, r.content
    return D(r.json()["outstanding"]["total"])


def test_a_borrower_pays_from_the_phone_and_the_signed_confirmation_posts_the_repayment_once(
        provider, django_capture_on_commit_callbacks):
    shop = open_shop("momo")
    lid = disbursed(shop, principal="1000.00", n=3, on="2026-01-01")
    before = outstanding(shop, lid)
    r = ask(shop, lid, "150.00", django_capture_on_commit_callbacks)
    assert r.status_code == 202, r.content
    pay = r.json()
    assert (pay["status"], pay["amount"], pay["phone"], pay["receipt_number"]) == (
        "requested", "150.00", shop.borrower.phone, None)
    (prompt,) = prompts(provider)  # what the provider was asked to show on the phone
    assert (prompt["request_id"], prompt["phone"], prompt["amount"], prompt["currency"]) == (
        pay["request_id"], shop.borrower.phone, "150.00", "LSL")
    assert prompt["callback_url"].endswith(CONFIRM)
    # a second prompt while the first waits is refused: one prompt at a time per loan
    e = err(ask(shop, lid, "150.00", django_capture_on_commit_callbacks), 409, "payment_pending")
    assert e["details"]["request_id"] == pay["request_id"] and len(prompts(provider)) == 1

    ok = {"request_id": pay["request_id"], "status": "success", "transaction_id": "MP26120700001", "amount": "150.00"}
    r = confirm(ok)
    assert r.status_code == 200, r.content
    done = r.json()
    assert done["status"] == "paid" and done["transaction_id"] == "MP26120700001" and done["receipt_number"]
    rep = Repayment.objects.get(loan_id=lid)
    assert (rep.amount, rep.channel, rep.reference, rep.receipt_number) == (
        D("150.00"), "mobile_money", "MP26120700001", done["receipt_number"])
    assert rep.posted_by.username == f"mobile-money@{shop.mfi.code}" and not rep.posted_by.is_active
    assert not rep.posted_by.has_usable_password()  # nobody signs in as the integration
    assert outstanding(shop, lid) == before - D("150.00")

    # the provider retries the same confirmation: nothing posted twice
    again = confirm(ok)
    assert again.status_code == 200 and again.json()["receipt_number"] == done["receipt_number"]
    assert Repayment.objects.filter(loan_id=lid).count() == 1
    # the same request confirmed with another transaction or amount: refused, nothing posted
    err(confirm({**ok, "transaction_id": "MP26120700002"}), 409, "already_completed")
    err(confirm({**ok, "amount": "151.00"}), 409, "already_completed")
    assert Repayment.objects.filter(loan_id=lid).count() == 1
    # the borrower and the officer both see it
    for user in (shop.borrower_user, shop.officer):
        (row,) = client_for(user).get(f"/api/v1/loans/{lid}/mobile-money").json()
        assert row["status"] == "paid" and row["receipt_number"] == done["receipt_number"]
    actions = set(AuditEvent.objects.filter(target_type="loan", target_id=str(lid))
                  .values_list("action", flat=True))
    assert {"mobile_money.request", "mobile_money.confirmed"} <= actions


def test_forged_tampered_or_stale_confirmations_are_refused_and_change_nothing(
        provider, settings, django_capture_on_commit_callbacks):
    shop = open_shop("momo-sig")
    lid = disbursed(shop, principal="1000.00", n=3, on="2026-01-01")
    pay = ask(shop, lid, "100.00", django_capture_on_commit_callbacks).json()
    ok = {"request_id": pay["request_id"], "status": "success", "transaction_id": "MPX1", "amount": "100.00"}
    raw = json.dumps(ok).encode()
    err(confirm(ok, secret="not-the-secret"), 401, "invalid_signature")
    err(confirm(raw.replace(b"100.00", b"900.00"), sign_body=raw), 401, "invalid_signature")  # body changed
    err(confirm(ok, ts=int(time.time()) - 360), 401, "invalid_signature")  # an old confirmation replayed
    err(confirm(ok, ts=int(time.time()) + 360), 401, "invalid_signature")
    from rest_framework.test import APIClient

    err(APIClient().post(CONFIRM, data=raw, content_type="application/json"), 401, "invalid_signature")
    err(confirm({**ok, "request_id": "4b7e3f0c-2a5d-4e36-9d3c-000000000000"}), 404, "not_found")
    err(confirm({**ok, "amount": "12.345"}), 400, "validation_error")
    err(confirm({"request_id": pay["request_id"], "status": "maybe"}), 400, "validation_error")
    err(confirm(b"not json"), 400, "validation_error")
    assert not Repayment.objects.filter(loan_id=lid).exists()
    assert MobileMoneyPayment.objects.get(request_id=pay["request_id"]).status == "requested"
    settings.MOBILE_MONEY_SECRET = ""
    err(confirm(ok, secret=""), 503, "mobile_money_not_configured")


def test_what_a_borrower_may_ask(provider, django_capture_on_commit_callbacks):
    shop = open_shop("momo-ask")
    lid = disbursed(shop, principal="1000.00", n=3, on="2026-01-01")
    owed = outstanding(shop, lid)
    e = err(ask(shop, lid, f"{owed + D('0.01'):.2f}", django_capture_on_commit_callbacks), 400, "amount_above_balance")
    assert e["details"]["outstanding"] == f"{owed:.2f}"
    err(ask(shop, lid, "0", django_capture_on_commit_callbacks), 400, "validation_error")
    err(ask(shop, lid, "10.00", django_capture_on_commit_callbacks, phone="12"), 400, "validation_error")
    err(client_for(shop.officer).post(f"/api/v1/loans/{lid}/mobile-money", {"amount": "10.00"}, format="json"),
        403, "permission_denied")  # staff record repayments; borrowers pay
    other = open_shop("momo-other")
    err(client_for(other.borrower_user).post(f"/api/v1/loans/{lid}/mobile-money", {"amount": "10.00"},
                                             format="json"), 404, "not_found")
    pending = apply(shop, principal="500.00", n=3)  # applied, not disbursed: nothing to repay yet
    err(ask(shop, pending, "10.00", django_capture_on_commit_callbacks), 409, "illegal_transition")
    r = ask(shop, lid, f"{owed:.2f}", django_capture_on_commit_callbacks, phone="5800 1234")  # all of it, another phone
    assert r.status_code == 202 and r.json()["phone"] == "+26658001234"
    assert not MobileMoneyPayment.objects.filter(loan_id=pending).exists() and len(prompts(provider)) == 1


def test_declined_then_a_late_success_is_still_posted_and_money_for_a_closed_loan_is_kept_for_a_refund(
        provider, django_capture_on_commit_callbacks):
    shop = open_shop("momo-late")
    lid = disbursed(shop, principal="1000.00", n=3, on="2026-01-01")
    first = ask(shop, lid, "50.00", django_capture_on_commit_callbacks).json()
    r = confirm({"request_id": first["request_id"], "status": "failed", "reason": "Insufficient balance"})
    assert r.status_code == 200 and (r.json()["status"], r.json()["reason"]) == ("failed", "Insufficient balance")
    assert confirm({"request_id": first["request_id"], "status": "failed"}).status_code == 200  # again: no change
    second = ask(shop, lid, "60.00", django_capture_on_commit_callbacks)  # declined: the borrower may try again
    assert second.status_code == 202
    # the provider took the first one after all (a late confirmation): the money is posted, not lost
    late = confirm({"request_id": first["request_id"], "status": "success", "transaction_id": "MPLATE",
                    "amount": "50.00"})
    assert late.status_code == 200 and late.json()["status"] == "paid"
    assert Repayment.objects.get(reference="MPLATE").amount == D("50.00")

    # the loan is paid off at the branch before the second prompt is confirmed
    payoff = client_for(shop.officer).get(f"/api/v1/loans/{lid}/balance").json()["payoff_amount"]
    r = post(shop.officer, f"/api/v1/loans/{lid}/payoff", {"amount": payoff, "channel": "cash"}, idem=key())
    assert r.status_code == 201, r.content
    kept = confirm({"request_id": second.json()["request_id"], "status": "success", "transaction_id": "MPCLOSED",
                    "amount": "60.00"})
    assert kept.status_code == 200, kept.content  # accepted: the provider must not retry forever
    body = kept.json()
    assert (body["status"], body["amount_received"], body["receipt_number"]) == ("unapplied", "60.00", None)
    assert body["reason"].startswith("illegal_transition")
    assert not Repayment.objects.filter(reference="MPCLOSED").exists()
    # a failure after the money was taken is refused (the provider cannot take it back that way)
    err(confirm({"request_id": second.json()["request_id"], "status": "failed"}), 409, "already_completed")
    # on the books: received into cash, owed back in the suspense account until an MFI admin records the refund
    assert suspense(shop) == D("60.00")
    pid = body["id"]
    err(post(shop.officer, f"/api/v1/mobile-money/{pid}/refund", {"reference": "x"}, idem=key()), 403,
        "permission_denied")
    paid_id = late.json()["id"]
    err(post(shop.admin, f"/api/v1/mobile-money/{paid_id}/refund", {}, idem=key()), 409, "illegal_transition")
    r = post(shop.admin, f"/api/v1/mobile-money/{pid}/refund", {"reference": "EcoCash B2C 7781"}, idem=key())
    assert r.status_code == 200, r.content
    assert (r.json()["status"], r.json()["refund_reference"]) == ("refunded", "EcoCash B2C 7781")
    assert suspense(shop) == D("0.00")
    err(post(shop.admin, f"/api/v1/mobile-money/{pid}/refund", {}, idem=key()), 409, "already_refunded")
    err(post(open_shop("momo-stranger").admin, f"/api/v1/mobile-money/{pid}/refund", {}, idem=key()), 404, "not_found")
    from node.ledger.models import JournalEntry

    keys = set(JournalEntry.objects.filter(reference_type="mobile_money").values_list("source_key", flat=True))
    assert keys == {f"mobile_money:{pid}:received", f"mobile_money:{pid}:refund"}


def test_a_provider_that_cannot_be_reached_fails_the_payment_at_once(settings, django_capture_on_commit_callbacks):
    settings.MOBILE_MONEY_BACKEND = "http"
    settings.MOBILE_MONEY_URL = "http://127.0.0.1:1/prompts"  # nothing listens there
    shop = open_shop("momo-down")
    lid = disbursed(shop, principal="1000.00", n=3, on="2026-01-01")
    r = ask(shop, lid, "40.00", django_capture_on_commit_callbacks)
    assert r.status_code == 202  # (the test client answers before the after-commit prompt runs; a server after)
    p = MobileMoneyPayment.objects.get(request_id=r.json()["request_id"])
    assert p.status == "failed" and "could not be started" in p.failure_reason and p.completed_at is not None
    assert ask(shop, lid, "40.00", django_capture_on_commit_callbacks).status_code == 202  # not "pending"


def test_the_signature_window_boundary_with_a_controlled_clock():
    from node.repayments.mobile_money_gateway import signature, signature_valid

    body = b'{"request_id": "x"}'
    good = signature(SECRET, "1000", body)
    assert good == "sha256=" + hmac.new(SECRET.encode(), b"1000." + body, hashlib.sha256).hexdigest()
    for now, ok in ((1000, True), (1300, True), (700, True), (1301, False), (699, False)):
        assert signature_valid(SECRET, "1000", body, good, now=now, window=300) is ok, now
    assert not signature_valid(SECRET, "1000", body + b" ", good, now=1000, window=300)
    assert not signature_valid("", "1000", body, signature("", "1000", body), now=1000, window=300)
    assert not signature_valid(SECRET, "-1000", body, good, now=1000, window=300)


@pytest.mark.django_db(transaction=True)
def test_ten_deliveries_of_one_confirmation_at_the_same_instant_post_it_once(provider):
    import threading

    from django.db import connection

    from node.repayments.mobile_money import mobile_money_confirm, mobile_money_request

    shop = open_shop("momo-race")
    lid = disbursed(shop, principal="1000.00", n=3, on="2026-01-01")
    p = mobile_money_request(actor=shop.borrower_user, loan=Loan.objects.get(pk=lid), amount=D("75.00"))
    raw = json.dumps({"request_id": str(p.request_id), "status": "success", "transaction_id": "MPRACE",
                      "amount": "75.00"}).encode()
    stamp = str(int(time.time()))
    sig = "sha256=" + hmac.new(SECRET.encode(), stamp.encode() + b"." + raw, hashlib.sha256).hexdigest()
    barrier, answers, lock = threading.Barrier(10), [], threading.Lock()

    def deliver():
        try:
            barrier.wait()
            got = mobile_money_confirm(body=raw, timestamp=stamp, signature=sig)
            with lock:
                answers.append((got.status, got.repayment_id))
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    rep = Repayment.objects.get(loan_id=lid)  # exactly one
    assert rep.amount == D("75.00") and answers == [("paid", rep.pk)] * 10
