"""The borrower's "Pay with mobile money" on the loan page, the panel that follows the payment, the staff page's
list, and ``manage.py mobile_money_simulate`` playing the provider against a live server (HTTP, real PostgreSQL)."""

from __future__ import annotations

import json
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
    assert "Mobile money to pay back" not in web(shop.officer).get("/staff/").content.decode()
    admin = web(shop.admin)
    worklist = admin.get("/staff/").content.decode()  # the admins' worklist on the queue page
    assert "Mobile money to pay back" in worklist and f"/staff/loans/{lid}/#mobile-money" in worklist
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
    assert "Mobile money to pay back" not in admin.get("/staff/").content.decode()  # done: off the worklist
