"""The whole loan journey in a real browser (Debian's Chromium driven by Playwright) against this process's live
server on the test cluster's PostgreSQL and ring: a borrower registers on a phone-sized screen, verifies the phone
with the SMS code, consents and applies; an officer pulls the credit report and approves; a checker confirms the
payout with step-up; the officer records a repayment and the borrower sees it; the Sesotho switch. Screenshots of
the key pages go to var/test/artifacts/screenshots/."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from node.borrowers.models import Borrower
from node.loans.models import Loan
from node.repayments.models import Repayment
from tests.borrower_factory import new_national_id, new_phone
from tests.factories import PASSWORD
from tests.loan_fixtures import open_shop
from tests.web.conftest import ARTIFACTS, last_otp

SHOTS = ARTIFACTS / "screenshots"
PHONE = {"width": 360, "height": 740}


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def log_in(context, base: str, username: str):
    page = context.new_page()
    page.goto(f"{base}/login/")
    page.get_by_label("Phone number or username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    return page


@pytest.mark.django_db(transaction=True)
def test_loan_journey_in_chromium(live_server, browser, consent_texts):
    shop = open_shop("browser", threshold="5000")  # above M5,000 the checker must be an MFI admin with step-up
    base = live_server.url
    csp_errors: list[str] = []

    # --- the borrower, on a phone ---------------------------------------------------------------------------
    borrower_ctx = browser.new_context(viewport=PHONE)
    page = borrower_ctx.new_page()
    page.on("console", lambda m: csp_errors.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(f"{base}/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    shot(page, "01-home")
    page.get_by_role("link", name="Register", exact=True).first.click()
    phone = new_phone()
    page.get_by_label("First name").fill("Lineo")
    page.get_by_label("Surname").fill("Ramaili")
    page.get_by_label("National ID number").fill(new_national_id())
    page.get_by_label("Date of birth").fill("1991-07-19")
    page.get_by_label("Mobile phone number").fill(phone[4:])  # as people type it: 5xxxxxxx
    page.get_by_label("Home address").fill("Ha Hoohlo, Maseru")
    page.get_by_label("District you live in").select_option("Maseru")
    page.get_by_label("Employer").fill("Lesotho Post")
    page.get_by_label("Monthly income (maloti)").fill("12000")
    page.get_by_label("Next of kin: name").fill("Rethabile Ramaili")
    page.get_by_label("Next of kin: phone number").fill("+26658000002")
    page.get_by_label("Next of kin: relationship").fill("mother")
    page.get_by_label("Choose a password").fill(PASSWORD)
    page.get_by_label("Password again").fill(PASSWORD)
    shot(page, "02-register")
    page.get_by_role("button", name="Register").last.click()
    page.wait_for_url(f"{base}/me/phone/")
    assert "We sent a 6-digit code" in page.content()
    shot(page, "03-verify-phone")
    page.get_by_label("The 6-digit code from the SMS").fill(last_otp(phone))
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(f"{base}/me/consent/")
    shot(page, "04-consent")
    page.get_by_label(re.compile("I agree")).check()
    page.get_by_role("button", name="I give my consent").click()
    page.wait_for_url(f"{base}/me/")
    b = Borrower.objects.get(phone=phone)
    assert b.phone_verified_at is not None

    # the calculator (htmx swaps the result in) leads to the application
    page.goto(f"{base}/calculator/")
    page.get_by_label("Loan product").select_option(str(shop.product_id))
    page.get_by_label("Amount to borrow (maloti)").fill("10000")
    page.get_by_label("Number of repayments").fill("12")
    page.get_by_role("button", name="Show repayments").click()
    page.wait_for_selector("#result table.schedule")
    assert "M10,000.00" in page.inner_text("#result")
    shot(page, "05-calculator")
    page.get_by_role("link", name="Apply for this loan").click()
    page.wait_for_url(re.compile(r"/me/apply/"))
    page.get_by_label("When do you need the money?").fill((timezone.localdate() + timedelta(days=3)).isoformat())
    page.get_by_label("What is the loan for?").fill("sewing machine")
    page.get_by_role("button", name="Send my application").click()
    page.wait_for_url(re.compile(r"/me/loans/\d+/$"))
    loan = Loan.objects.get(borrower=b)
    assert loan.status == "submitted" and page.inner_text("#loan-status") == "Submitted"
    shot(page, "06-application-sent")

    # --- the loan officer ------------------------------------------------------------------------------------
    officer_ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    officer = log_in(officer_ctx, base, shop.officer.username)
    officer.on("console", lambda m: csp_errors.append(m.text) if "Content Security Policy" in m.text else None)
    officer.wait_for_url(f"{base}/staff/")
    officer.get_by_role("link", name=loan.reference).click()
    officer.get_by_role("button", name="Pull the credit report").click()
    officer.wait_for_selector("#credit-report .grade")  # swapped in by htmx
    assert officer.url.endswith(f"/staff/loans/{loan.pk}/")  # no navigation: the fragment came by htmx
    shot(officer, "07-officer-credit-report")
    officer.get_by_role("button", name="Start review").click()
    officer.get_by_role("button", name="Approve").click()
    officer.wait_for_selector("text=approved.")
    officer.get_by_label("Pay out by").select_option("mobile_money")
    officer.get_by_role("button", name="Initiate").click()
    officer.wait_for_selector("text=another colleague must confirm")
    loan.refresh_from_db()
    assert loan.status == "approved" and loan.disbursement_initiated_by == shop.officer

    # --- the checker (MFI admin) confirms with step-up ---------------------------------------------------------
    checker_ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    checker = log_in(checker_ctx, base, shop.admin.username)
    checker.goto(f"{base}/staff/disbursements/")
    shot(checker, "08-checker-queue")
    checker.get_by_label("Your password (step-up confirmation)").fill("wrong-password-1")
    checker.get_by_role("button", name="Confirm and pay out").click()
    checker.wait_for_selector("text=The password is not correct.")
    loan.refresh_from_db()
    assert loan.status == "approved"
    checker.goto(f"{base}/staff/disbursements/")
    checker.get_by_label("Your password (step-up confirmation)").fill(PASSWORD)
    checker.get_by_role("button", name="Confirm and pay out").click()
    checker.wait_for_selector("text=disbursed.")
    loan.refresh_from_db()
    assert loan.status == "active" and loan.disbursed_by == shop.admin

    # --- the officer records a repayment -------------------------------------------------------------------
    officer.goto(f"{base}/staff/loans/{loan.pk}/")
    officer.get_by_label("Amount received (maloti)").fill("1000.00")
    officer.get_by_label("Received by").select_option("cash")
    officer.get_by_role("button", name="Record repayment").click()
    officer.wait_for_selector("text=Repayment recorded")
    receipt = Repayment.objects.get(loan=loan).receipt_number
    shot(officer, "09-officer-repayment")

    # --- the borrower sees it, then switches to Sesotho -----------------------------------------------------
    page.goto(f"{base}/me/loans/{loan.pk}/")
    history = page.inner_text("#repayments")
    assert receipt in history and "M1,000.00" in history
    assert page.inner_text("#loan-status") == "Active"
    shot(page, "10-borrower-repayment")
    page.get_by_role("button", name="Sesotho").click()
    page.wait_for_selector("html[lang=st]")
    assert page.inner_text("#loan-status") == "E sebetsa"
    assert "Histori ea litefo" in page.content() and "Repayment history" not in page.content()
    shot(page, "11-borrower-sesotho")
    with page.expect_download() as pdf:  # the statement, as the borrower downloads it
        page.locator("#documents a").first.click()
    assert pdf.value.suggested_filename == f"{loan.reference}-statement.pdf"
    assert open(pdf.value.path(), "rb").read(5) == b"%PDF-"

    # --- the analyst reads the portfolio at risk and downloads it --------------------------------------------
    analyst_ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    analyst = log_in(analyst_ctx, base, shop.analyst.username)
    analyst.on("console", lambda m: csp_errors.append(m.text) if "Content Security Policy" in m.text else None)
    analyst.get_by_role("link", name="Reports").click()
    analyst.get_by_role("link", name="Portfolio at risk").click()
    analyst.get_by_label("Break down by").select_option("product")
    analyst.get_by_role("button", name="Show").click()
    analyst.wait_for_selector("#table-par")
    outstanding = sum(i.principal - i.principal_paid for i in loan.installments.all())
    table = analyst.inner_text("#table-par")
    assert f"{shop.mfi.code} / salary-12" in table and f"M{outstanding:,.2f}" in table
    assert analyst.locator("svg.chart").count() == 1
    shot(analyst, "12-analyst-par")
    with analyst.expect_download() as xlsx:
        analyst.get_by_role("link", name="XLSX").click()
    assert open(xlsx.value.path(), "rb").read(2) == b"PK"

    assert csp_errors == []
    for ctx in (borrower_ctx, officer_ctx, checker_ctx, analyst_ctx):
        ctx.close()


@pytest.mark.django_db(transaction=True)
def test_core_forms_work_without_javascript(live_server, browser, consent_texts):
    """With JavaScript off (no htmx), the calculator, the credit report pull and a staff action still work as plain
    form posts and full pages."""
    shop = open_shop("nojs")
    from tests.loan_fixtures import apply, post

    lid = apply(shop)
    assert post(shop.borrower_user, f"/api/v1/loans/{lid}/submit").status_code == 200
    base = live_server.url
    ctx = browser.new_context(java_script_enabled=False, viewport=PHONE)
    page = ctx.new_page()
    page.goto(f"{base}/calculator/")
    page.get_by_label("Loan product").select_option(str(shop.product_id))
    page.get_by_label("Amount to borrow (maloti)").fill("2500")
    page.get_by_label("Number of repayments").fill("6")
    page.get_by_role("button", name="Show repayments").click()
    page.wait_for_url(re.compile(r"/calculator/\?.*principal=2500"))  # a full GET navigation
    assert "M2,500.00" in page.inner_text("#result")
    shot(page, "12-calculator-no-js")

    officer = log_in(ctx, base, shop.officer.username)
    officer.goto(f"{base}/staff/loans/{lid}/")
    officer.get_by_role("button", name="Pull the credit report").click()
    officer.wait_for_url(f"{base}/staff/loans/{lid}/credit-report")  # the form posted; the page came back whole
    assert officer.locator("#credit-report .grade").count() == 1
    officer.goto(f"{base}/staff/loans/{lid}/")
    officer.get_by_label("Reason").select_option("policy")
    officer.get_by_role("button", name="Reject the application").click()
    officer.wait_for_url(f"{base}/staff/loans/{lid}/")
    assert Loan.objects.get(pk=lid).status == "rejected"
    ctx.close()
