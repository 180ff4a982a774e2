"""The borrower's "Pay with mobile money" on the loan page, the panel that follows the payment, the staff page's
list, and ``manage.py mobile_money_simulate`` playing the provider against a live server (HTTP, real PostgreSQL)."""

from __future__ import annotations

import json
import time
from decimal import Decimal as D

import pytest
from django.core.management import call_command
from django.test import Client

from node.repayments.models import MobileMoneyPayment, Repayment
from tests.loan_fixtures import disbursed, open_shop

SECRET = "web-test-mobile-money-secret-0123456789"


def web(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


@pytest.fixture
def provider(settings, tmp_path):
    settings.MOBILE_MONEY_SECRET = SECRET
    settings.MOBILE_MONEY_BACKEND = "file"
    settings.MOBILE_MONEY_FILE_PATH = tmp_path / "prompts.jsonl"
    return tmp_path / "prompts.jsonl"


@pytest.mark.django_db(transaction=True)
def test_a_borrower_pays_on_the_loan_page_and_sees_it_paid_once_the_provider_confirms(provider, live_server):
    shop = open_shop("momo-web")
    lid = disbursed(shop, principal="1000.00", n=3, on="2026-01-01")
    me = web(shop.borrower_user)
    page = me.get(f"/me/loans/{lid}/").content.decode()
    assert "Pay with mobile money" in page and f'action="/me/loans/{lid}/pay"' in page
    # the form starts from what is overdue (all three installments fell due long ago)
    overdue = D(me.get(f"/me/loans/{lid}/").context["balance"]["overdue"])
    assert f'value="{overdue:.2f}"' in page

    bad = me.post(f"/me/loans/{lid}/pay", {"amount": "99999999", "phone": ""})
    assert bad.status_code == 400 and "more than the loan still owes" in bad.content.decode()
    r = me.post(f"/me/loans/{lid}/pay", {"amount": "120,50", "phone": ""}, follow=True)
    page = r.content.decode()
    assert "Check your phone" in page and "approve the payment of 120.50" in page
    assert "Waiting for approval on the phone" in page and 'hx-trigger="every 3s"' in page
    p = MobileMoneyPayment.objects.get(loan_id=lid)
    assert (p.amount, p.status) == (D("120.50"), "requested")
    (prompt,) = [json.loads(x) for x in provider.read_text().splitlines()]
    assert prompt["request_id"] == str(p.request_id) and prompt["amount"] == "120.50"

    # the provider confirms (the simulator signs and POSTs to the live server, as the real provider would)
    call_command("mobile_money_simulate", url=f"{live_server.url}/api/v1/mobile-money/confirmations",
                 transaction_id="MPWEB0001")
    p.refresh_from_db()
    rep = Repayment.objects.get(loan_id=lid)
    assert p.status == "paid" and p.repayment_id == rep.pk and rep.reference == "MPWEB0001"
    panel = me.get(f"/me/loans/{lid}/", HTTP_HX_REQUEST="true").content.decode()  # what the polling fetches
    assert panel.startswith('<div id="mobile-money"') and "every 3s" not in panel  # done: it stops polling
    assert "Paid" in panel and rep.receipt_number in panel and "MPWEB0001" in panel
    staff = web(shop.officer).get(f"/staff/loans/{lid}/").content.decode()
    assert "Mobile-money payments" in staff and rep.receipt_number in staff and "every 3s" not in staff
    # a declined prompt reads as such, and the simulator says what the node answered
    me.post(f"/me/loans/{lid}/pay", {"amount": "10.00", "phone": ""})
    call_command("mobile_money_simulate", url=f"{live_server.url}/api/v1/mobile-money/confirmations",
                 fail="Insufficient balance")
    panel = me.get(f"/me/loans/{lid}/", HTTP_HX_REQUEST="true").content.decode()
    assert "Not completed" in panel and "Insufficient balance" in panel


@pytest.mark.django_db
def test_an_admin_records_the_refund_of_money_no_loan_could_take_from_the_loan_page(provider):
    from django.utils import timezone

    from node.repayments.models import MobileMoneyPayment as P
    from node.users.models import User

    shop = open_shop("momo-refund-web")
    lid = disbursed(shop, principal="1000.00", n=3, on="2026-01-01")
    borrower = User.objects.get(pk=shop.borrower_user.pk)
    p = P.objects.create(request_id="6f2c8a4e-0000-4000-8000-000000000001", mfi=shop.mfi, loan_id=lid,
                         requested_by=borrower, phone=shop.borrower.phone, amount=D("60.00"),
                         requested_at=timezone.now(), status="unapplied", provider_transaction_id="MPWEBUNAPPLIED",
                         amount_received=D("60.00"), completed_at=timezone.now(),
                         failure_reason="illegal_transition: the loan is closed")
    page = web(shop.officer).get(f"/staff/loans/{lid}/").content.decode()
    assert "Received, not applied to the loan" in page and "Paid back</button>" not in page  # admins only
    assert "Mobile money not applied" not in web(shop.officer).get("/staff/").content.decode()
    admin = web(shop.admin)
    queue = admin.get("/staff/").content.decode()  # the admins' queue page says how many wait, and links the list
    assert "1 payment received that no loan took" in queue and 'href="/staff/mobile-money/"' in queue
    worklist = admin.get("/staff/mobile-money/").content.decode()
    assert f"/staff/loans/{lid}/#mobile-money" in worklist
    assert "MPWEBUNAPPLIED" in worklist and "M60.00" in worklist
    assert "Paid back</button>" in admin.get(f"/staff/loans/{lid}/").content.decode()
    r = admin.post(f"/staff/loans/{lid}/mobile-money/{p.pk}/refund", {"reference": "B2C-991"}, follow=True)
    page = r.content.decode()
    assert "Recorded as paid back: M60.00." in page and "Paid back on" in page and "B2C-991" in page
    p.refresh_from_db()
    assert p.status == "refunded" and p.refunded_by_id == shop.admin.pk
    again = admin.post(f"/staff/loans/{lid}/mobile-money/{p.pk}/refund", {"reference": ""}, follow=True)
    assert "already refunded" in again.content.decode()
    assert web(shop.officer).post(f"/staff/loans/{lid}/mobile-money/{p.pk}/refund").status_code == 403
    assert "Mobile money not applied" not in admin.get("/staff/").content.decode()  # done: off the worklist
    assert "Nothing to apply or pay back." in admin.get("/staff/mobile-money/").content.decode()


@pytest.mark.django_db
def test_an_admin_applies_paybill_money_with_a_mistyped_account_to_the_right_loan(provider):
    from rest_framework.test import APIClient

    from node.loans.models import Loan
    from node.repayments import mobile_money_gateway as gateway

    shop = open_shop("momo-paybill-web")
    lid = disbursed(shop, principal="1000.00", n=3, on="2026-01-01")
    ref = Loan.objects.get(pk=lid).reference
    me = web(shop.borrower_user)
    assert 'id="paybill"' not in me.get(f"/me/loans/{lid}/").content.decode()  # the MFI has no business number yet
    shop.mfi.paybill_number = "770011"
    shop.mfi.save(update_fields=["paybill_number"])
    page = me.get(f"/me/loans/{lid}/").content.decode()  # the borrower is told how to pay from the phone's menu
    assert 'id="paybill"' in page and "<strong>770011</strong>" in page and f"<strong>{ref}</strong>" in page

    def paybill(txn, account, amount):
        raw = json.dumps({"transaction_id": txn, "business_number": "770011", "account_reference": account,
                          "amount": amount, "phone": "26658001122"}).encode()
        ts = str(int(time.time()))
        r = APIClient().post("/api/v1/mobile-money/paybill", data=raw, content_type="application/json",
                             HTTP_X_LETSEMA_TIMESTAMP=ts, HTTP_X_LETSEMA_SIGNATURE=gateway.signature(SECRET, ts, raw))
        assert r.status_code == 201, r.content
        return r.json()

    typo, other = paybill("PBWEB-1", "LOAN 4 MAMA", "45.00"), paybill("PBWEB-2", "??", "12.00")
    admin = web(shop.admin)
    assert "2 payments received that no loan took" in admin.get("/staff/").content.decode()
    listing = admin.get("/staff/mobile-money/").content.decode()
    assert "LOAN 4 MAMA" in listing and "PBWEB-1" in listing and "M45.00" in listing and "770011" in listing
    # a reference the MFI does not have: said so, nothing applied
    r = admin.post(f"/staff/mobile-money/{typo['id']}/apply", {"loan_reference": "NOT-A-LOAN"}, follow=True)
    assert "The MFI has no loan with the reference NOT-A-LOAN." in r.content.decode()
    assert MobileMoneyPayment.objects.get(pk=typo["id"]).status == "unapplied"
    r = admin.post(f"/staff/mobile-money/{typo['id']}/apply", {"loan_reference": ref}, follow=True)
    rep = Repayment.objects.get(loan_id=lid)
    assert f"M45.00 applied to loan {ref}: receipt {rep.receipt_number}." in r.content.decode()
    assert rep.amount == D("45.00") and rep.reference == "PBWEB-1"
    r = admin.post(f"/staff/mobile-money/{other['id']}/refund", {"reference": "cash at branch"}, follow=True)
    assert "Recorded as paid back: M12.00." in r.content.decode()
    assert "Nothing to apply or pay back." in r.content.decode()
    # loan officers do not resolve suspense money
    assert web(shop.officer).get("/staff/mobile-money/").status_code == 403
