"""Every web view through the Django test client, on the real test cluster (PostgreSQL, the ring): status,
content, permission refusals and validation errors. The views call the API's services, so these tests check the
wiring and the pages, not the business rules again."""

from __future__ import annotations

import gzip
import json
import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone, translation

from node.borrowers.models import Borrower, Consent
from node.loans.models import Loan
from node.repayments.models import Repayment
from node.users.models import Role, User
from node.web.templatetags.web import format_money
from tests.borrower_factory import new_national_id, new_phone
from tests.factories import PASSWORD, make_user
from tests.loan_fixtures import apply, open_shop, to_approved
from tests.web.conftest import ARTIFACTS, last_otp

pytestmark = pytest.mark.django_db


def web(user=None) -> Client:
    c = Client()
    if user is not None:
        c.force_login(user)
    return c


def text(r) -> str:
    return r.content.decode()


def form_key(html: str) -> str:
    return re.search(r'name="form_key" value="([0-9a-f]{32})"', html).group(1)


def registration(**overrides) -> dict:
    data = {
        "first_name": "Palesa", "last_name": "Mokoena", "national_id": new_national_id(), "date_of_birth": "1988-02-03",
        "phone": new_phone(), "address": "Ha Abia, Maseru", "residence_district": "Maseru", "employer": "LEC",
        "employee_number": "77", "monthly_income": "9000.00", "next_of_kin_name": "Thabo Mokoena",
        "next_of_kin_phone": "+26658000001", "next_of_kin_relationship": "brother", "password": PASSWORD,
        "password2": PASSWORD,
    }
    data.update(overrides)
    return data


@pytest.fixture
def shop():
    return open_shop("web", threshold="5000")


# --- money ---------------------------------------------------------------------------------------
def test_money_filter_formats_maloti():
    assert format_money(Decimal("1234.5")) == "M1,234.50"
    assert format_money("1234567.005") == "M1,234,567.00"  # half-even, node.core.money's rule
    assert format_money(Decimal(-12)) == "-M12.00"
    assert format_money("10", "ZMW") == "K10.00"
    assert format_money("10", "ZAR") == "ZAR 10.00"
    assert format_money(None) == ""
    with pytest.raises(TypeError):
        format_money(12.5)


# --- public pages --------------------------------------------------------------------------------
def test_home_and_security_headers(shop):
    r = web().get("/")
    assert r.status_code == 200
    assert "Salary loan, 12 months" in text(r)
    csp = r["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "unsafe-inline" not in csp
    assert " style=" not in text(r) and "<script>" not in text(r)
    assert "Content-Security-Policy" not in web().get("/healthz")  # the API and health answers are untouched


def test_calculator_shows_schedule_in_maloti(shop):
    r = web().get("/calculator/", {"product": shop.product_id, "principal": "10000", "number_of_repayments": "12"})
    assert r.status_code == 200
    html = text(r)
    assert "Repayment schedule" in html and "M10,000.00" in html
    assert html.count("<tr><th scope=\"row\">") >= 12
    r = web().get("/calculator/", {"product": shop.product_id, "principal": "100", "number_of_repayments": "12"})
    assert "must be between 500.00 and 50000.00" in text(r) and "Repayment schedule" not in text(r)
    r = web().get("/calculator/", {"product": shop.product_id, "principal": "abc", "number_of_repayments": "12"})
    assert "Enter an amount" in text(r)


def test_login_with_local_phone_number_and_wrong_password(shop):
    phone = shop.borrower_user.username  # +2665xxxxxxx
    r = web().post("/login/", {"username": phone[4:], "password": "wrong-password"})
    assert r.status_code == 200 and "errorlist" in text(r)
    c = web()
    r = c.post("/login/", {"username": phone[4:], "password": PASSWORD})
    assert r.status_code == 302 and r["Location"] == "/"
    assert c.get("/")["Location"] == "/me/"


# --- borrower: register, verify, consent, apply --------------------------------------------------
def test_register_verify_consent_apply(shop):
    c = web()
    data = registration()
    r = c.post("/register/", data)
    assert r.status_code == 302 and r["Location"] == "/me/phone/", text(r)[:2000]
    b = Borrower.objects.get(phone=data["phone"])
    assert b.user.role == Role.BORROWER and b.phone_verified_at is None

    r = c.post("/me/phone/", {"action": "verify", "code": "000000" if last_otp(b.phone) != "000000" else "111111"})
    assert r.status_code == 200 and "The code is not correct." in text(r)
    r = c.post("/me/phone/", {"action": "send"}, follow=True)  # too soon after the first code: the service says so
    assert "wait a minute" in text(r)
    r = c.post("/me/phone/", {"action": "verify", "code": last_otp(b.phone)})
    assert r.status_code == 302 and r["Location"] == "/me/consent/"
    b.refresh_from_db()
    assert b.phone_verified_at is not None

    # applying before consent is refused with the service's rule
    payload = {"product": shop.product_id, "principal": "3000", "number_of_repayments": "6",
               "expected_disbursement_date": (timezone.localdate() + timedelta(days=5)).isoformat(), "purpose": "stock"}
    r = c.post("/me/apply/", payload)
    assert r.status_code == 200 and "has not given consent" in text(r)
    assert not Loan.objects.filter(borrower=b).exists()

    r = c.get("/me/consent/")
    assert r.status_code == 200 and 'name="agree"' in text(r)
    r = c.post("/me/consent/", {"version": "1", "language": "en"})  # box not ticked
    assert r.status_code == 200 and "errorlist" in text(r)
    r = c.post("/me/consent/", {"version": "1", "language": "en", "agree": "on"})
    assert r.status_code == 302
    assert Consent.objects.filter(borrower=b, withdrawn_at__isnull=True, channel="self_service").exists()

    r = c.post("/me/apply/", {**payload, "principal": "100"})  # outside the product's limits
    assert r.status_code == 200 and "must be between 500.00 and 50000.00" in text(r)
    r = c.post("/me/apply/", payload)
    loan = Loan.objects.get(borrower=b)
    assert r.status_code == 302 and r["Location"] == f"/me/loans/{loan.pk}/"
    assert loan.status == "submitted" and loan.principal == Decimal("3000.00")
    r = c.get(r["Location"])
    assert r.status_code == 200 and "Submitted" in text(r) and "M3,000.00" in text(r) and "Expected schedule" in text(r)
    r = c.get("/me/")
    assert loan.reference in text(r)


def test_register_validation_errors_write_nothing():
    data = registration(national_id="12", password2="something-else-123", monthly_income="lots")
    r = web().post("/register/", data)
    assert r.status_code == 200
    html = text(r)
    assert "The two passwords are not the same." in html
    assert not Borrower.objects.filter(phone=data["phone"]).exists()
    r = web().post("/register/", registration(national_id="12"))
    assert "Not a valid national ID number" in text(r)
    r = web().post("/register/", registration(next_of_kin_phone="12"))
    assert 'id="id_next_of_kin_phone"' in text(r) and "invalid" in text(r)


def test_borrower_pages_need_login_and_the_right_role(shop):
    r = web().get("/me/")
    assert r.status_code == 302 and r["Location"].startswith("/login/?next=/me/")
    assert web(shop.officer).get("/me/").status_code == 403
    assert web(shop.borrower_user).get("/staff/").status_code == 403
    lid = apply(shop)
    other = open_shop("other")
    r = web(other.borrower_user).get(f"/me/loans/{lid}/")
    assert r.status_code == 404 and "does not exist" in text(r)
    r = web(other.officer).get(f"/staff/loans/{lid}/")
    assert r.status_code == 404


def test_withdraw_application(shop):
    lid = apply(shop)
    c = web(shop.borrower_user)
    r = c.post(f"/me/loans/{lid}/withdraw")
    assert r.status_code == 302
    assert Loan.objects.get(pk=lid).status == "withdrawn"
    assert "Withdraw this application" not in text(c.get(f"/me/loans/{lid}/"))


# --- loan officer --------------------------------------------------------------------------------
def test_queue_review_approve_and_credit_report(shop):
    lid = apply(shop)
    c = web(shop.officer)
    c.post(f"/me/loans/{lid}/withdraw")  # an officer cannot use the borrower's pages
    r = web(shop.borrower_user).post(f"/api/v1/loans/{lid}/submit")  # session auth is not accepted by the API
    assert r.status_code == 401
    from tests.loan_fixtures import post as api_post

    assert api_post(shop.borrower_user, f"/api/v1/loans/{lid}/submit").status_code == 200
    r = c.get("/staff/")
    assert r.status_code == 200 and Loan.objects.get(pk=lid).reference in text(r)

    r = c.post(f"/staff/loans/{lid}/credit-report")
    assert r.status_code == 200
    html = text(r)
    assert 'class="grade g-' in html and "Reasons" in html and "Monthly debt service" in html
    r = c.post(f"/staff/loans/{lid}/credit-report", HTTP_HX_REQUEST="true")
    assert r.status_code == 200 and text(r).startswith('<div id="credit-report"') and "<html" not in text(r)

    assert c.post(f"/staff/loans/{lid}/review").status_code == 302
    r = c.post(f"/staff/loans/{lid}/approve", follow=True)
    assert "approved" in text(r) and Loan.objects.get(pk=lid).status == "approved"
    r = c.post(f"/staff/loans/{lid}/approve", follow=True)  # illegal now: the service's 409, shown as a message
    assert "does not allow" in text(r)
    assert c.post(f"/staff/loans/{lid}/bogus").status_code == 404


def test_reject_needs_a_reason_and_the_borrower_sees_it(shop):
    lid = apply(shop)
    from tests.loan_fixtures import post as api_post

    api_post(shop.borrower_user, f"/api/v1/loans/{lid}/submit")
    c = web(shop.officer)
    r = c.post(f"/staff/loans/{lid}/reject", {"reason": "", "note": ""})
    assert r.status_code == 400 and "errorlist" in text(r)
    r = c.post(f"/staff/loans/{lid}/reject", {"reason": "made_up", "note": ""})
    assert r.status_code == 400
    assert Loan.objects.get(pk=lid).status == "submitted"
    r = c.post(f"/staff/loans/{lid}/reject", {"reason": "over_indebted", "note": "three loans elsewhere"})
    assert r.status_code == 302 and Loan.objects.get(pk=lid).status == "rejected"
    r = web(shop.borrower_user).get(f"/me/loans/{lid}/")
    assert "Rejected" in text(r) and "Too much debt already" in text(r)


def test_disbursement_maker_checker_with_step_up_then_repayment(shop):
    lid = apply(shop, principal="10000.00")
    to_approved(shop, lid)
    officer = web(shop.officer)
    r = officer.post(f"/staff/loans/{lid}/initiate", {"channel": "nowhere"})
    assert r.status_code == 400
    r = officer.post(f"/staff/loans/{lid}/initiate", {"channel": "mobile_money", "reference": "MP-1"})
    assert r.status_code == 302
    r = officer.get("/staff/disbursements/")
    assert Loan.objects.get(pk=lid).reference in text(r)

    # the approver cannot be the checker
    r = officer.post(f"/staff/loans/{lid}/disburse", {"password": PASSWORD})
    assert r.status_code == 400 and "cannot confirm" in text(r)
    admin = web(shop.admin)
    r = admin.post(f"/staff/loans/{lid}/disburse", {"password": "not-my-password"})
    assert r.status_code == 400 and "The password is not correct." in text(r)
    assert Loan.objects.get(pk=lid).status == "approved"
    r = admin.post(f"/staff/loans/{lid}/disburse", {"password": PASSWORD})
    assert r.status_code == 302
    loan = Loan.objects.get(pk=lid)
    assert loan.status == "active" and loan.disbursed_by == shop.admin

    page = text(officer.get(f"/staff/loans/{lid}/"))
    key = form_key(page)
    bad = officer.post(f"/staff/loans/{lid}/repayments", {"amount": "-5", "channel": "cash", "form_key": key})
    assert bad.status_code == 400 and "errorlist" in text(bad)
    body = {"amount": "1,000.50".replace(",", ""), "channel": "cash", "reference": "R-1", "form_key": key}
    r = officer.post(f"/staff/loans/{lid}/repayments", body)
    assert r.status_code == 302
    again = officer.post(f"/staff/loans/{lid}/repayments", body, follow=True)  # a double click
    assert "already recorded" in text(again)
    assert Repayment.objects.filter(loan_id=lid).count() == 1
    r = officer.post(f"/staff/loans/{lid}/repayments", {**body, "form_key": "x"})
    assert r.status_code == 400 and Repayment.objects.filter(loan_id=lid).count() == 1

    mine = text(web(shop.borrower_user).get(f"/me/loans/{lid}/"))
    receipt = Repayment.objects.get(loan_id=lid).receipt_number
    assert "Repayment history" in mine and receipt in mine and "M1,000.50" in mine and "Still to pay" in mine
    messages = text(web(shop.borrower_user).get("/me/notifications/"))  # the SMS texts, on the borrower's page
    assert loan.reference in messages and receipt in messages


def test_borrower_search_only_finds_own_mfi_clients(shop):
    other = open_shop("search-other")
    c = web(shop.officer)
    r = c.get("/staff/borrowers/", {"q": shop.borrower.last_name})
    assert r.status_code == 200 and f"/staff/borrowers/{shop.borrower.pk}/" not in text(r)  # not a client yet
    apply(shop)  # applying makes the borrower a client of the MFI
    r = c.get("/staff/borrowers/", {"q": shop.borrower.phone})
    assert f"/staff/borrowers/{shop.borrower.pk}/" in text(r)
    assert f"/staff/borrowers/{other.borrower.pk}/" not in text(r)
    r = c.get("/staff/borrowers/", {"q": shop.borrower.phone}, HTTP_HX_REQUEST="true")
    assert text(r).startswith('<div id="results"')
    r = c.get(f"/staff/borrowers/{shop.borrower.pk}/")
    assert r.status_code == 200 and "Loans with your MFI" in text(r)
    assert c.get(f"/staff/borrowers/{other.borrower.pk}/").status_code == 404


# --- MFI admin ---------------------------------------------------------------------------------
def test_mfi_admin_manages_staff_and_sees_products(shop):
    c = web(shop.admin)
    r = c.get("/staff/team/")
    assert r.status_code == 200 and shop.officer.username in text(r)
    assert web(shop.officer).get("/staff/team/").status_code == 403
    r = c.post("/staff/team/", {"username": "x", "first_name": "Ntate", "last_name": "Mokhele", "role": "loan_officer",
                                "password": PASSWORD})
    assert r.status_code == 400 and "errorlist" in text(r)  # the API serializer's username rule
    r = c.post("/staff/team/", {"username": "nt.mokhele", "first_name": "Ntate", "last_name": "Mokhele",
                                "role": "loan_officer", "password": "password123"})
    assert r.status_code == 400 and "too common" in text(r)  # the service's password check
    r = c.post("/staff/team/", {"username": "nt.mokhele", "first_name": "Ntate", "last_name": "Mokhele",
                                "role": "loan_officer", "password": PASSWORD})
    assert r.status_code == 302
    new = User.objects.get(username="nt.mokhele")
    assert new.mfi == shop.mfi and new.role == Role.LOAN_OFFICER
    assert c.post(f"/staff/team/{new.pk}/", {"active": "0"}).status_code == 302
    new.refresh_from_db()
    assert not new.is_active
    other = open_shop("team-other")
    assert c.post(f"/staff/team/{other.officer.pk}/", {"active": "0"}).status_code == 404
    other.officer.refresh_from_db()
    assert other.officer.is_active
    r = c.get("/staff/products/")
    assert r.status_code == 200 and "salary-12" in text(r) and "36%" in text(r)


def test_mfi_admin_changes_the_mfis_settings(shop):
    from node.audit.models import AuditEvent
    from node.mfis.models import Mfi

    c = web(shop.admin)
    r = c.get("/staff/settings/")
    assert r.status_code == 200 and 'name="payroll_repayments"' in text(r) and "checked" in text(r)  # on by default
    assert web(shop.officer).get("/staff/settings/").status_code == 403
    number = f"9{shop.mfi.pk:05d}"
    assert c.post("/staff/settings/", {"paybill_number": number}).status_code == 302  # the box unticked: off
    shop.mfi.refresh_from_db()
    assert (shop.mfi.paybill_number, shop.mfi.notify_payroll_repayments) == (number, False)
    assert AuditEvent.objects.filter(action__in=["mfi.paybill_set", "mfi.notifications_set"],
                                     target_id=str(shop.mfi.pk)).count() == 2
    # a number another MFI has: refused, and the box's change is not saved either (one transaction)
    other = open_shop("settings-other")
    Mfi.objects.filter(pk=other.mfi.pk).update(paybill_number="77001")
    r = c.post("/staff/settings/", {"paybill_number": "77001", "payroll_repayments": "on"})
    assert r.status_code == 400 and "Another MFI has that business number." in text(r)
    shop.mfi.refresh_from_db()
    assert (shop.mfi.paybill_number, shop.mfi.notify_payroll_repayments) == (number, False)
    assert c.post("/staff/settings/", {"paybill_number": "12"}).status_code == 400


def test_mfi_admin_adds_a_product(shop):
    from node.audit.models import AuditEvent
    from node.loans.models import LoanProduct

    c = web(shop.admin)
    good = {"code": "school-fees", "name": "School fees loan", "annual_interest_rate": "24,5",
            "interest_method": "DECLINING_BALANCE", "amortization": "EQUAL_INSTALLMENTS", "repayment_frequency": "MONTHS",
            "min_principal": "500", "max_principal": "20000.00", "min_repayments": "3", "max_repayments": "12",
            "grace_on_principal_periods": "0", "fee_percent": "1.5", "overdue_penalty_amount": "25.00",
            "overdue_penalty_grace_days": "5"}
    r = c.post("/staff/products/", {**good, "max_principal": "100"})  # below the smallest amount: the service's rule
    assert r.status_code == 400 and "min_principal must be" in str(r.context["form"].errors["max_principal"])
    r = c.post("/staff/products/", {**good, "annual_interest_rate": "75"})  # above the MFI's cap (60 %)
    assert r.status_code == 400 and r.context["form"].errors["annual_interest_rate"] == [
        "The annual interest rate 75% is above Web's regulatory cap of 60%."]
    r = c.post("/staff/products/", {**good, "fee_percent": "abc"})
    assert r.status_code == 400 and "fee_percent" in r.context["form"].errors, r.context["form"].errors
    assert not LoanProduct.objects.filter(mfi=shop.mfi, code="school-fees").exists()  # nothing half-written
    r = c.post("/staff/products/", good)
    assert r.status_code == 302
    p = LoanProduct.objects.get(mfi=shop.mfi, code="school-fees")
    assert p.annual_interest_rate == Decimal("24.5") and p.max_principal == Decimal("20000.00")
    assert [(f["name"], Decimal(f["amount"]), f["calculation"], f["charge_time"]) for f in p.fees] == [
        ("Processing fee", Decimal("1.5"), "PERCENT_OF_PRINCIPAL", "DISBURSEMENT")]
    assert p.overdue_penalty == {"calculation": "FLAT", "amount": "25.00", "grace_days": 5}
    assert AuditEvent.objects.filter(action="product.create", target_id=str(p.pk)).exists()
    assert "school-fees" in text(c.get("/staff/products/"))
    assert c.post("/staff/products/", good).status_code == 400  # the same code twice
    assert web(shop.officer).post("/staff/products/", {**good, "code": "other"}).status_code == 403


def test_letsema_admin_onboards_an_mfi_and_operators_only_read(shop):
    from node.mfis.models import Mfi

    admin, operator = make_user(Role.LETSEMA_ADMIN), make_user(Role.OPERATOR)
    new = {"code": "thaba-credit", "name": "Thaba Credit", "registration_number": "CBL-2026-17",
           "interest_rate_cap": "48", "admin_username": "thaba.admin", "admin_first_name": "Lerato",
           "admin_last_name": "Thaba", "admin_email": "", "admin_password": PASSWORD}
    r = web(operator).get("/network/mfis/")
    assert r.status_code == 200 and shop.mfi.code in text(r) and "Onboard an MFI" not in text(r)
    assert web(operator).post("/network/mfis/", new).status_code == 200
    assert not Mfi.objects.filter(code="thaba-credit").exists()
    c = web(admin)
    r = c.post("/network/mfis/", {**new, "code": "Bad Code"})
    assert r.status_code == 400 and "errorlist" in text(r)
    r = c.post("/network/mfis/", {**new, "admin_username": shop.officer.username})  # the username is taken
    assert r.status_code == 400 and not Mfi.objects.filter(code="thaba-credit").exists()
    r = c.post("/network/mfis/", new)
    assert r.status_code == 302
    mfi = Mfi.objects.get(code="thaba-credit")
    boss = User.objects.get(username="thaba.admin")
    assert mfi.home_district == "maseru" and mfi.interest_rate_cap == Decimal("48")
    assert boss.mfi == mfi and boss.role == Role.MFI_ADMIN and boss.check_password(PASSWORD)
    assert "Thaba Credit" in text(c.get("/network/mfis/"))
    assert c.post("/network/mfis/", {**new, "admin_username": "thaba.admin2"}).status_code == 400  # code exists
    assert web(shop.admin).get("/network/mfis/").status_code == 403


# --- Letsema admin / operator -------------------------------------------------------------------
def test_node_status_for_operators_and_letsema_admins(shop):
    for role in (Role.OPERATOR, Role.LETSEMA_ADMIN):
        c = web(make_user(role))
        assert c.get("/")["Location"] == "/network/"
        r = c.get("/network/")
        html = text(r)
        assert r.status_code == 200 and "Every service answers." in html, html[:3000]
        assert "postgres" in html and "Events waiting" in html and shop.mfi.code in html
        assert 'id="policy"' in html
    assert web(shop.officer).get("/network/").status_code == 403
    assert web(shop.admin).get("/network/").status_code == 403


def test_district_nodes_page_pings_every_peer_and_shows_the_portfolio_to_letsema_admins(shop, settings):
    from node.peers.selectors import network_figures

    # what this page shows, not how fast the peers are: on a busy 2-core machine a ping can outlast the 0.3 s deadline
    settings.LETSEMA_FEDERATION = {**settings.LETSEMA_FEDERATION, "peer_timeout_seconds": 5.0}

    r = web(make_user(Role.OPERATOR)).get("/network/districts/")
    html = text(r)
    assert r.status_code == 200, html[:2000]
    rows = dict(re.findall(r'<tr id="district-(\w+)">(.*?)</tr>', html, re.S))
    assert {"maseru", "leribe", "mohales_hoek"} <= set(rows)
    assert "this node" in rows["maseru"]  # the test process is the maseru node
    assert ">answers<" in rows["leribe"] and ">answers<" in rows["mohales_hoek"]  # signed pings to the real peers
    assert "ed25519:" in rows["leribe"] and "valid" in rows["leribe"]
    assert 'id="figures"' not in html  # an operator sees reachability, not portfolios
    html = text(web(make_user(Role.LETSEMA_ADMIN)).get("/network/districts/"))
    assert 'id="figures"' in html and 'id="network-total"' in html
    total = network_figures()["network"]["outstanding_principal"]
    assert format_money(Decimal(total)) in re.search(r'<tr id="network-total">(.*?)</tr>', html, re.S).group(1)
    assert web(shop.officer).get("/network/districts/").status_code == 403


# --- language ------------------------------------------------------------------------------------
def test_language_switch_to_sesotho(shop, consent_texts):
    c = web(shop.borrower_user)
    assert "My loans" in text(c.get("/me/"))
    r = c.post("/language/", {"language": "st", "next": "/me/"})
    assert r.status_code == 302 and r["Location"] == "/me/"
    html = text(c.get("/me/"))
    assert 'lang="st"' in html and "Likalimo tsa ka" in html and "My loans" not in html
    consent = text(c.get("/me/consent/"))
    assert "Tumello" in consent  # the Sesotho consent text (data migration)
    r = c.post("/language/", {"language": "en", "next": "/me/"})
    assert "My loans" in text(c.get("/me/"))


# --- page weight ---------------------------------------------------------------------------------
def test_every_page_is_under_100_kb_gzip_on_first_load(shop):
    """First load = the HTML + the stylesheet + htmx, each gzip-compressed (WhiteNoise serves .gz/.br)."""
    from django.contrib.staticfiles import finders

    lid = apply(shop, principal="10000.00")
    to_approved(shop, lid)
    analyst = make_user(Role.ANALYST, mfi=shop.admin.mfi)
    statics = sum(len(gzip.compress(Path(finders.find(p)).read_bytes(), 9))
                  for p in ("web/app.css", "web/vendor/htmx-2.0.10.min.js"))
    pages = {
        "home": (None, "/"), "login": (None, "/login/"), "register": (None, "/register/"),
        "calculator": (None, f"/calculator/?product={shop.product_id}&principal=10000&number_of_repayments=24"),
        "borrower_dashboard": (shop.borrower_user, "/me/"), "borrower_consent": (shop.borrower_user, "/me/consent/"),
        "borrower_apply": (shop.borrower_user, "/me/apply/"), "borrower_loan": (shop.borrower_user, f"/me/loans/{lid}/"),
        "officer_queue": (shop.officer, "/staff/"), "officer_loan": (shop.officer, f"/staff/loans/{lid}/"),
        "officer_borrowers": (shop.officer, "/staff/borrowers/"), "checker_queue": (shop.admin, "/staff/disbursements/"),
        "borrower_messages": (shop.borrower_user, "/me/notifications/"), "admin_staff": (shop.admin, "/staff/team/"),
        "admin_products": (shop.admin, "/staff/products/"), "node_status": (make_user(Role.OPERATOR), "/network/"),
        "district_nodes": (make_user(Role.LETSEMA_ADMIN), "/network/districts/"),
        "reports": (analyst, "/reports/"), "report_par": (analyst, "/reports/par/"),
        "report_loans": (analyst, "/reports/loans/"), "report_flows": (analyst, "/reports/flows/"),
        "network_mfis": (make_user(Role.LETSEMA_ADMIN), "/network/mfis/"),
    }
    weights = {}
    for name, (user, url) in pages.items():
        r = web(user).get(url)
        assert r.status_code == 200, (name, r.status_code)
        html = len(gzip.compress(r.content, 9))
        # gunicorn sends the HTML itself uncompressed (no GZipMiddleware: BREACH), the static files as .gz copies
        weights[name] = {"html_raw": len(r.content), "html_gzip": html, "first_load_gzip": html + statics,
                         "first_load_as_served": len(r.content) + statics}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "page_weights.json").write_text(json.dumps(weights, indent=2))
    assert max(w["first_load_gzip"] for w in weights.values()) < 100 * 1024, weights
    assert max(w["first_load_as_served"] for w in weights.values()) < 100 * 1024, weights


@pytest.mark.parametrize("app", ["node.web", "node.reports"])
def test_compiled_sesotho_catalogue_matches_the_po_file(tmp_path, app):
    """The committed .mo is what msgfmt makes of the committed .po (no stale translations), and every message of
    the catalogue is translated."""
    import gettext
    import importlib
    import shutil
    import subprocess

    if shutil.which("msgfmt") is None:
        pytest.skip("gettext's msgfmt is not installed (./letsema install adds it)")
    messages_dir = Path(importlib.import_module(app).__file__).parent / "locale" / "st" / "LC_MESSAGES"
    fresh = tmp_path / "django.mo"
    out = subprocess.run(["msgfmt", "--check", "--statistics", "-o", str(fresh), str(messages_dir / "django.po")],
                         check=True, capture_output=True, text=True)
    assert "untranslated" not in out.stderr and "fuzzy" not in out.stderr, out.stderr
    with open(fresh, "rb") as a, open(messages_dir / "django.mo", "rb") as b:
        assert gettext.GNUTranslations(a)._catalog == gettext.GNUTranslations(b)._catalog


def test_an_admin_reverses_an_older_repayment_from_the_loan_page_and_the_later_one_is_posted_again(shop):
    from tests.test_repayments import repay

    lid = apply(shop, principal="10000.00")
    to_approved(shop, lid)
    web(shop.officer).post(f"/staff/loans/{lid}/initiate", {"channel": "cash"})
    assert web(shop.admin).post(f"/staff/loans/{lid}/disburse", {"password": PASSWORD}).status_code == 302
    today = timezone.localdate().isoformat()
    first = repay(shop.officer, lid, "300.00", on=today).json()
    second = repay(shop.officer, lid, "200.00", on=today).json()

    assert "Reverse a repayment" not in text(web(shop.officer).get(f"/staff/loans/{lid}/"))  # MFI admins only
    assert web(shop.officer).post(f"/staff/loans/{lid}/reversals", {}).status_code == 403
    admin = web(shop.admin)
    page = text(admin.get(f"/staff/loans/{lid}/"))
    assert "Reverse a repayment" in page and first["receipt_number"] in page
    body = {"repayment": first["id"], "reason": "the cheque bounced", "form_key": form_key(page)}
    # without "post the later repayments again" the service's refusal is shown on the form; nothing changes
    r = admin.post(f"/staff/loans/{lid}/reversals", body)
    assert r.status_code == 409 and "reverse them first" in text(r)
    assert not Repayment.objects.filter(loan_id=lid, reversed_at__isnull=False).exists()
    r = admin.post(f"/staff/loans/{lid}/reversals", {**body, "reason": "no"})
    assert r.status_code == 400 and "errorlist" in text(r)

    r = admin.post(f"/staff/loans/{lid}/reversals", {**body, "reprocess_later": "on"}, follow=True)
    assert r.status_code == 200
    replay = Repayment.objects.get(replay_of_id=second["id"])
    assert f"Repayment {first['receipt_number']} reversed." in text(r) and replay.receipt_number in text(r)
    assert Repayment.objects.filter(loan_id=lid, reversed_at__isnull=True).get() == replay
    assert replay.amount == Decimal("200.00")
    again = admin.post(f"/staff/loans/{lid}/reversals", {**body, "reprocess_later": "on"}, follow=True)  # double click
    assert "already made" in text(again) and Repayment.objects.filter(loan_id=lid).count() == 3


def test_an_officer_records_a_recovery_on_a_written_off_loan(shop):
    from node.repayments.models import Recovery
    from tests.loan_fixtures import key, post

    lid = apply(shop, principal="10000.00")
    to_approved(shop, lid)
    web(shop.officer).post(f"/staff/loans/{lid}/initiate", {"channel": "cash"})
    assert web(shop.admin).post(f"/staff/loans/{lid}/disburse", {"password": PASSWORD}).status_code == 302
    officer = web(shop.officer)
    assert "Record a recovery" not in text(officer.get(f"/staff/loans/{lid}/"))  # an active loan takes repayments
    assert post(shop.admin, f"/api/v1/loans/{lid}/write-off", {"reason": "absconded"}, idem=key()).status_code == 200

    page = text(officer.get(f"/staff/loans/{lid}/"))
    assert "Record a recovery" in page and "Record a repayment" not in page
    body = {"amount": "250.00", "channel": "cash", "reference": "COLL-1", "form_key": form_key(page)}
    too_much = officer.post(f"/staff/loans/{lid}/recoveries", {**body, "amount": "999999.00"})
    assert too_much.status_code == 409 and "still to be recovered" in text(too_much)
    r = officer.post(f"/staff/loans/{lid}/recoveries", body, follow=True)
    rec = Recovery.objects.get(loan_id=lid)
    assert r.status_code == 200 and f"Recovery recorded: receipt {rec.receipt_number}." in text(r)
    assert rec.amount == Decimal("250.00") and rec.reference == "COLL-1"
    assert 'id="movements"' in text(r) and "Recovered after the write-off" in text(r) and rec.receipt_number in text(r)
    again = officer.post(f"/staff/loans/{lid}/recoveries", body, follow=True)  # a double click
    assert "already recorded" in text(again) and Recovery.objects.filter(loan_id=lid).count() == 1
    assert Loan.objects.get(pk=lid).status == "written_off"


def test_log_out_everywhere_ends_the_other_browsers_and_the_api_tokens(shop):
    from node.audit.models import AuditEvent
    from node.users.tokens import access_token_for

    user = shop.borrower_user
    here, there = web(user), web(user)
    token = access_token_for(user)
    api = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert api.get("/api/v1/me/").status_code == 200
    assert "Log out everywhere" in text(here.get("/me/"))
    # a plain log-out ends this browser only
    other = web(user)
    assert other.post("/logout/").status_code == 302
    assert there.get("/me/").status_code == 200 and api.get("/api/v1/me/").status_code == 200

    r = here.post("/logout/", {"everywhere": "1"})
    assert r.status_code == 302
    assert here.get("/me/")["Location"].startswith("/login/")
    assert there.get("/me/")["Location"].startswith("/login/")  # the other browser too
    assert api.get("/api/v1/me/").status_code == 401  # and the app's token
    assert AuditEvent.objects.filter(action="auth.logout", actor_id=user.pk, after__everywhere=True).count() == 1


def test_an_admin_pays_back_or_applies_to_another_loan_what_was_paid_in_advance(shop):
    from node.repayments.models import OverpaymentRefund, OverpaymentTransfer
    from tests.test_repayments import repay

    loans = []
    for _ in range(2):
        lid = apply(shop, principal="1000.00", n=3)
        to_approved(shop, lid)
        web(shop.officer).post(f"/staff/loans/{lid}/initiate", {"channel": "cash"})
        assert web(shop.admin).post(f"/staff/loans/{lid}/disburse", {"password": PASSWORD}).status_code == 302
        loans.append(lid)
    a, b = loans
    from tests.loan_fixtures import client_for

    total = client_for(shop.officer).get(f"/api/v1/loans/{a}/balance").json()["outstanding"]["total"]
    today = timezone.localdate().isoformat()
    assert repay(shop.officer, a, str(Decimal(total) + Decimal("50.00")), on=today).status_code == 201  # 50 over

    assert 'id="paid-in-advance"' not in text(web(shop.officer).get(f"/staff/loans/{a}/"))  # MFI admins only
    admin = web(shop.admin)
    page = text(admin.get(f"/staff/loans/{a}/"))
    assert "Paid in advance: M50.00" in page and Loan.objects.get(pk=b).reference in page
    too_much = admin.post(f"/staff/loans/{a}/refunds", {"amount": "60.00", "channel": "cash", "form_key": form_key(page)})
    assert too_much.status_code == 409 and not OverpaymentRefund.objects.exists()
    keys = re.findall(r'name="form_key" value="([0-9a-f]{32})"', page)
    r = admin.post(f"/staff/loans/{a}/refunds", {"amount": "20.00", "channel": "cash", "form_key": keys[-2]},
                   follow=True)
    assert "Paid back to the borrower: M20.00." in text(r) and OverpaymentRefund.objects.get().amount == Decimal("20")
    r = admin.post(f"/staff/loans/{a}/transfers", {"to_loan": b, "amount": "30.00", "form_key": keys[-1]}, follow=True)
    transfer = OverpaymentTransfer.objects.get()
    assert f"Applied to the other loan: receipt {transfer.repayment.receipt_number}." in text(r)
    assert (transfer.to_loan_id, transfer.amount) == (b, Decimal("30.00"))
    assert 'id="paid-in-advance"' not in text(admin.get(f"/staff/loans/{a}/"))  # nothing left
    assert web(shop.officer).post(f"/staff/loans/{a}/transfers", {"to_loan": b, "amount": "1"}).status_code == 403


def test_an_admin_undoes_a_refund_and_a_recovery_from_the_loan_page(shop):
    from node.repayments.models import OverpaymentRefund, Recovery
    from tests.loan_fixtures import client_for, key, post
    from tests.test_repayments import repay

    lid = apply(shop, principal="1000.00", n=3)
    to_approved(shop, lid)
    web(shop.officer).post(f"/staff/loans/{lid}/initiate", {"channel": "cash"})
    assert web(shop.admin).post(f"/staff/loans/{lid}/disburse", {"password": PASSWORD}).status_code == 302
    total = client_for(shop.officer).get(f"/api/v1/loans/{lid}/balance").json()["outstanding"]["total"]
    today = timezone.localdate().isoformat()
    assert repay(shop.officer, lid, str(Decimal(total) + Decimal("50.00")), on=today).status_code == 201
    refund = post(shop.admin, f"/api/v1/loans/{lid}/overpayment-refunds",
                  {"amount": "50.00", "channel": "mobile_money", "reference": "MM-77"}, idem=key()).json()

    officer_page = text(web(shop.officer).get(f"/staff/loans/{lid}/"))
    assert 'id="movements"' in officer_page and "MM-77" in officer_page  # every officer sees what was paid back
    borrower_page = text(web(shop.borrower_user).get(f"/me/loans/{lid}/"))
    assert "Paid back to the borrower" in borrower_page and "M50.00" in borrower_page  # and the borrower
    assert "Undo a refund, a recovery or a waiver" not in officer_page  # MFI admins only
    assert web(shop.officer).post(f"/staff/loans/{lid}/undo", {}).status_code == 403
    admin = web(shop.admin)
    page = text(admin.get(f"/staff/loans/{lid}/"))
    assert "Undo a refund, a recovery or a waiver" in page and f'value="refund:{refund["id"]}"' in page
    body = {"entry": f"refund:{refund['id']}", "reason": "the mobile money transfer bounced", "form_key": form_key(page)}
    short = admin.post(f"/staff/loans/{lid}/undo", {**body, "reason": "no"})
    assert short.status_code == 400 and "errorlist" in text(short)
    assert OverpaymentRefund.objects.get().reversed_at is None
    r = admin.post(f"/staff/loans/{lid}/undo", body, follow=True)
    assert "Refund of M50.00 reversed: the loan holds it again." in text(r)
    assert OverpaymentRefund.objects.get().reversal_reason == "the mobile money transfer bounced"
    assert "Paid in advance: M50.00" in text(r) and "(reversed)" in text(r)
    again = admin.post(f"/staff/loans/{lid}/undo", body, follow=True)  # a double click
    assert "already made" in text(again)

    # a recovery keyed in error on a written-off loan
    other = apply(shop, principal="1000.00", n=3)
    to_approved(shop, other)
    web(shop.officer).post(f"/staff/loans/{other}/initiate", {"channel": "cash"})
    assert web(shop.admin).post(f"/staff/loans/{other}/disburse", {"password": PASSWORD}).status_code == 302
    assert post(shop.admin, f"/api/v1/loans/{other}/write-off", {"reason": "absconded"}, idem=key()).status_code == 200
    rec = post(shop.officer, f"/api/v1/loans/{other}/recoveries", {"amount": "100.00", "channel": "cash"},
               idem=key()).json()
    page = text(admin.get(f"/staff/loans/{other}/"))
    r = admin.post(f"/staff/loans/{other}/undo", {"entry": f"recovery:{rec['id']}", "reason": "keyed on the wrong loan",
                                                  "form_key": form_key(page)}, follow=True)
    assert f"Recovery {rec['receipt_number']} reversed." in text(r)
    assert Recovery.objects.get().reversed_at is not None
    assert "Undo a refund, a recovery or a waiver" not in text(r)  # nothing left to undo


def test_an_admin_waives_a_penalty_from_the_loan_page(shop):
    from node.loans.models import LoanInstallment
    from node.repayments.models import ChargeWaiver

    lid = apply(shop, principal="1000.00", n=3)
    to_approved(shop, lid)
    web(shop.officer).post(f"/staff/loans/{lid}/initiate", {"channel": "cash"})
    assert web(shop.admin).post(f"/staff/loans/{lid}/disburse", {"password": PASSWORD}).status_code == 302
    LoanInstallment.objects.filter(loan_id=lid, number=1).update(penalties=Decimal("40.00"))

    assert "Waive interest, fees or penalties" not in text(web(shop.officer).get(f"/staff/loans/{lid}/"))
    assert web(shop.officer).post(f"/staff/loans/{lid}/waivers", {}).status_code == 403
    admin = web(shop.admin)
    page = text(admin.get(f"/staff/loans/{lid}/"))
    assert "Waive interest, fees or penalties" in page
    body = {"component": "penalties", "amount": "", "installment": "", "reason": "the bank held the payment",
            "form_key": form_key(page)}
    r = admin.post(f"/staff/loans/{lid}/waivers", {**body, "amount": "50"})
    assert r.status_code == 409 and "cannot be waived" in text(r) and not ChargeWaiver.objects.exists()
    r = admin.post(f"/staff/loans/{lid}/waivers", {**body, "component": "fees"})
    assert r.status_code == 409 and not ChargeWaiver.objects.exists()
    r = admin.post(f"/staff/loans/{lid}/waivers", {**body, "amount": "25"}, follow=True)
    assert "Waived: M25.00." in text(r)
    assert LoanInstallment.objects.get(loan_id=lid, number=1).penalties == Decimal("15.00")
    again = admin.post(f"/staff/loans/{lid}/waivers", {**body, "amount": "25"}, follow=True)  # a double click
    assert "already made" in text(again) and ChargeWaiver.objects.count() == 1

    # made in error: undone from the same page, owed again
    page = text(admin.get(f"/staff/loans/{lid}/"))
    waiver = ChargeWaiver.objects.get()
    assert f'value="waiver:{waiver.pk}"' in page and "installment 1" in page
    undo = {"entry": f"waiver:{waiver.pk}", "reason": "waived on the wrong loan", "form_key": form_key(page)}
    r = admin.post(f"/staff/loans/{lid}/undo", undo, follow=True)
    assert "Waiver of M25.00 undone: installment 1 owes it again." in text(r), text(r)
    assert LoanInstallment.objects.get(loan_id=lid, number=1).penalties == Decimal("40.00")
    assert ChargeWaiver.objects.get().undo_reason == "waived on the wrong loan"
    assert f'value="waiver:{waiver.pk}"' not in text(r)  # nothing left to undo


def test_an_officer_adds_a_fee_from_the_loan_page(shop):
    from node.loans.models import LoanInstallment
    from node.repayments.models import LoanCharge

    lid = apply(shop, principal="1000.00", n=3)
    to_approved(shop, lid)
    web(shop.officer).post(f"/staff/loans/{lid}/initiate", {"channel": "cash"})
    assert web(shop.admin).post(f"/staff/loans/{lid}/disburse", {"password": PASSWORD}).status_code == 302
    officer = web(shop.officer)
    page = text(officer.get(f"/staff/loans/{lid}/"))
    assert "Add a fee or penalty" in page and "Waive interest, fees or penalties" not in page
    body = {"kind": "fees", "name": "field visit", "amount": "25", "due_date": "", "form_key": form_key(page)}
    bad = officer.post(f"/staff/loans/{lid}/charges", {**body, "amount": "-1"})
    assert bad.status_code == 400 and not LoanCharge.objects.exists()
    r = officer.post(f"/staff/loans/{lid}/charges", body, follow=True)
    charge = LoanCharge.objects.get()
    assert f"Charge added: M25.00 on installment {charge.installment.number}." in text(r)
    assert LoanInstallment.objects.get(pk=charge.installment_id).fees == Decimal("25.00")
    again = officer.post(f"/staff/loans/{lid}/charges", body, follow=True)  # a double click
    assert "already added" in text(again) and LoanCharge.objects.count() == 1
    assert web(shop.analyst).post(f"/staff/loans/{lid}/charges", body).status_code == 403


def test_a_browser_gets_an_html_error_page_and_programs_keep_the_json_error_body(shop, rf):
    from node.web.views.errors import server_error

    officer = shop.officer
    browser = {"HTTP_ACCEPT": "text/html,application/xhtml+xml,*/*;q=0.8"}
    r = web(officer).get("/staff/no-such-page/", **browser)
    assert r.status_code == 404 and r["Content-Type"].startswith("text/html")
    assert "This page does not exist, or you may not see it." in text(r) and "Applications" in text(r)  # the menu
    r = web().get("/nowhere", **browser)  # signed out: the same page, no menu
    assert r.status_code == 404 and r["Content-Type"].startswith("text/html") and "Log out" not in text(r)
    r = web(officer).get("/api/v1/no-such-resource/", **browser)  # the API answers JSON whatever is accepted
    assert r.status_code == 404 and r.json() == {"code": "not_found", "message": "No such resource.",
                                                 "details": {"path": "/api/v1/no-such-resource/"}}
    r = web(officer).get("/staff/no-such-page/", HTTP_ACCEPT="application/json")
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    c = web(officer)
    c.post("/language/", {"language": "st", "next": "/"})
    r = c.get("/nowhere", **browser)
    assert r.status_code == 404 and 'lang="st"' in text(r)
    assert "This page does not exist, or you may not see it." not in text(r)  # said in Sesotho

    with translation.override("en"):
        page = server_error(rf.get("/staff/queue/", HTTP_ACCEPT="text/html"))
        assert page.status_code == 500 and "Something went wrong on our side." in page.content.decode()
        api = server_error(rf.get("/api/v1/loans/", HTTP_ACCEPT="text/html"))
        assert api.status_code == 500 and json.loads(api.content)["code"] == "internal_error"
    with translation.override("st"):
        assert '<html lang="st">' in server_error(rf.get("/staff/queue/", HTTP_ACCEPT="text/html")).content.decode()
