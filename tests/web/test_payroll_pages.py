"""Payroll pages (staff web): an officer downloads the month's deduction file; an MFI admin uploads the employer's
result file and reads the report row by row; a bad file is refused whole with the reason; the same file twice posts
nothing twice. Same services as the API (tests/test_payroll.py holds the arithmetic); the world of that module."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from node.payroll.models import PayrollExport, PayrollImport
from node.repayments.models import Repayment
from tests.loan_fixtures import apply, open_shop
from tests.test_payroll import result_csv, world

pytestmark = pytest.mark.django_db


def web(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def text(r) -> str:
    return r.content.decode()


def test_officer_downloads_the_deduction_file_and_an_admin_imports_the_result_file():
    w = world(n_gov=3)
    shop, L = w.shop, w.loans
    officer, admin = web(shop.officer), web(shop.admin)

    page = text(officer.get("/staff/payroll/"))
    assert "Government of Lesotho" in page and f"/staff/payroll/{w.gov}/" in page
    page = text(officer.get(f"/staff/payroll/{w.gov}/"))
    assert "3 employees enrolled" in page and "Deduction file" in page
    assert "Import the employer" not in page  # MFI admins only
    r = officer.get(f"/staff/payroll/{w.gov}/deductions", {"month": "2026-07", "format": "csv"})
    assert r.status_code == 200 and r["Content-Type"].startswith("text/csv"), text(r)[:300]
    assert 'filename="payroll-' in r["Content-Disposition"]
    lines = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert sorted(x["employee_number"] for x in lines) == ["GOV-001", "GOV-002", "GOV-003"]
    assert PayrollExport.objects.filter(employer_id=w.gov).count() == 1  # recorded, as over the API
    bad = officer.get(f"/staff/payroll/{w.gov}/deductions", {"month": "July", "format": "csv"})
    assert bad.status_code == 400 and "errorlist" in text(bad)
    upload = {"month": "2026-07", "payment_date": "",
              "file": SimpleUploadedFile("gov.csv", result_csv(f"GOV-001,{L['L1'].reference},1.00,deducted,"))}
    assert officer.post(f"/staff/payroll/{w.gov}/imports", upload).status_code == 403

    content = result_csv(f"GOV-001,{L['L1'].reference},607.06,deducted,",
                         f"GOV-002,{L['L2'].reference},0,not_deducted,unpaid leave",
                         "GOV-009,NOPE-0001,100.00,deducted,")
    page = text(admin.get(f"/staff/payroll/{w.gov}/"))
    assert "Import the employer" in page and 'enctype="multipart/form-data"' in page
    r = admin.post(f"/staff/payroll/{w.gov}/imports",
                   {"month": "2026-07", "payment_date": "", "file": SimpleUploadedFile("gov-july.csv", content)},
                   follow=True)
    imp = PayrollImport.objects.get(employer_id=w.gov)
    assert r.redirect_chain[-1][0] == f"/staff/payroll/{w.gov}/imports/{imp.pk}/"
    page = text(r)
    assert "File imported." in page and "gov-july.csv" in page
    assert "unknown_loan" in page and "No loan NOPE-0001 at this MFI." in page and "Not deducted" in page
    assert "M607.06" in page and "<progress" not in page  # completed: no progress bar
    assert Repayment.objects.filter(channel="payroll").count() == 1

    # the same file again: nothing posted twice, the first import shown
    again = admin.post(f"/staff/payroll/{w.gov}/imports",
                       {"month": "2026-07", "payment_date": "", "file": SimpleUploadedFile("again.csv", content)},
                       follow=True)
    assert "already imported" in text(again) and again.redirect_chain[-1][0].endswith(f"/imports/{imp.pk}/")
    assert Repayment.objects.filter(channel="payroll").count() == 1 and PayrollImport.objects.count() == 1

    # a file that cannot be read is refused whole, with the reason, and nothing is written
    broken = admin.post(f"/staff/payroll/{w.gov}/imports",
                        {"month": "2026-07", "payment_date": "",
                         "file": SimpleUploadedFile("latin1.csv", "employee_number,loan\r\nGOV-001,é\r\n".encode("latin-1"))})
    assert broken.status_code in (400, 409) and "errorlist" in text(broken)
    assert PayrollImport.objects.count() == 1
    # another MFI's staff do not see the employer
    assert web(open_shop("other").admin).get(f"/staff/payroll/{w.gov}/").status_code == 404


def test_a_large_file_shows_its_progress_while_it_is_posted_in_the_background(settings):
    settings.LETSEMA_PAYROLL_SYNC_ROWS = 1  # more than one row to post: the rest goes to the background task
    settings.CELERY_TASK_ALWAYS_EAGER = False
    w = world(n_gov=3)
    shop, L = w.shop, w.loans
    content = result_csv(*(f"GOV-00{i},{L[f'L{i}'].reference},100.00,deducted," for i in (1, 2, 3)))
    admin = web(shop.admin)
    r = admin.post(f"/staff/payroll/{w.gov}/imports",
                   {"month": "2026-07", "payment_date": "", "file": SimpleUploadedFile("big.csv", content)}, follow=True)
    imp = PayrollImport.objects.get(employer_id=w.gov)
    page = text(r)
    assert "being posted" in page and imp.status == "posting"
    assert '<progress id="posting-bar" max="3" value="0"' in page and 'hx-trigger="every 2s"' in page
    panel = admin.get(f"/staff/payroll/{w.gov}/imports/{imp.pk}/", HTTP_HX_REQUEST="true")
    assert text(panel).startswith('<div id="import-progress"') and "Row by row" not in text(panel)


def test_an_admin_adds_an_employer_and_an_officer_enrols_and_unenrols_a_client():
    from node.payroll.models import Employer, PayrollEnrolment

    shop = open_shop("payweb")
    admin, officer = web(shop.admin), web(shop.officer)
    assert officer.post("/staff/payroll/", {"name": "X", "code": "x"}).status_code == 403  # MFI admins add employers
    bad = admin.post("/staff/payroll/", {"name": "Letseng Mine", "code": "Not A Code!"})
    assert bad.status_code == 400 and "errorlist" in text(bad) and not Employer.objects.exists()
    r = admin.post("/staff/payroll/", {"name": "Letseng Mine", "code": "mine-co"}, follow=True)
    emp = Employer.objects.get(code="mine-co", mfi=shop.mfi)
    assert r.redirect_chain[-1][0] == f"/staff/payroll/{emp.pk}/" and "Employer added." in text(r)

    apply(shop, principal="1000.00", n=3)  # applying makes the borrower a client of the MFI
    url = f"/staff/payroll/{emp.pk}/enrolments"
    stranger = officer.post(url, {"who": "999999999999", "employee_number": "M-1"})
    assert stranger.status_code == 400 and "No client of your MFI" in text(stranger)
    r = officer.post(url, {"who": shop.borrower.phone, "employee_number": "M-1"}, follow=True)
    assert "enrolled as M-1" in text(r) and "1 employee enrolled" in text(r)
    e = PayrollEnrolment.objects.get(employer=emp)
    assert (e.borrower_id, e.employee_number, e.ended_at) == (shop.borrower.pk, "M-1", None)
    again = officer.post(url, {"who": shop.borrower.national_id, "employee_number": "M-2"})
    assert again.status_code == 409 and "already enrolled" in text(again)  # one live enrolment per borrower
    r = officer.post(f"/staff/payroll/{emp.pk}/enrolments/{e.pk}/end", follow=True)
    assert "Enrolment of M-1 ended." in text(r) and "Nobody is enrolled yet." in text(r)
    e.refresh_from_db()
    assert e.ended_at is not None


def test_an_officer_reconciles_the_month_on_the_page_and_downloads_the_same_lines_as_the_api():
    from tests.factories import client_for

    w = world(n_gov=3)
    shop, L = w.shop, w.loans
    officer, admin = web(shop.officer), web(shop.admin)
    url = f"/staff/payroll/{w.gov}/reconciliation"
    assert "Reconciliation" in text(officer.get(f"/staff/payroll/{w.gov}/"))
    before = officer.get(url, {"month": "2026-07"})  # nothing exported yet: said on the form, nothing else
    assert before.status_code == 409 and "No deduction file was exported" in text(before) and "<table" not in text(before)
    assert officer.get(url, {"month": "July"}).status_code == 400

    asked = officer.get(f"/staff/payroll/{w.gov}/deductions", {"month": "2026-07", "format": "csv"})
    due = {x["loan_reference"]: x["amount_due"] for x in csv.DictReader(io.StringIO(asked.content.decode("utf-8-sig")))}
    short = str(Decimal(due[L["L1"].reference]) - Decimal("7.00"))  # 7.00 short (text, as the employer writes it)
    admin.post(f"/staff/payroll/{w.gov}/imports", {"month": "2026-07", "payment_date": "", "file": SimpleUploadedFile(
        "gov.csv", result_csv(f"GOV-001,{L['L1'].reference},{short},partial,overtime cut",
                              f"GOV-002,{L['L2'].reference},0,not_deducted,unpaid leave"))})

    r = officer.get(url, {"month": "2026-07"})
    page = text(r)
    assert r.status_code == 200
    assert "Short" in page and "overtime cut" in page and "M7.00" in page  # L1: the difference
    assert "Not deducted" in page and "unpaid leave" in page  # L2
    assert "No answer from the employer" in page  # L3: no row in the result file
    api = client_for(shop.officer).get(f"/api/v1/payroll/employers/{w.gov}/reconciliation", {"month": "2026-07"}).json()
    assert [x["flag"] for x in api["lines"]] == ["short", "not_deducted", "missing"]
    assert api["summary"]["total_deducted"] == short and f"/staff/loans/{L['L1'].pk}/" in page
    positions = [page.index(L[k].reference) for k in ("L1", "L2", "L3")]
    assert positions == sorted(positions)  # the API's order

    sheet = officer.get(url, {"month": "2026-07", "format": "csv"})
    assert sheet.status_code == 200 and sheet["Content-Type"].startswith("text/csv")
    assert 'filename="reconciliation-' in sheet["Content-Disposition"]
    api_sheet = client_for(shop.officer).get(f"/api/v1/payroll/employers/{w.gov}/reconciliation",
                                             {"month": "2026-07", "format": "csv"})
    assert sheet.content == api_sheet.content
    rows = list(csv.DictReader(io.StringIO(sheet.content.decode("utf-8-sig"))))
    assert [(x["flag"], x["difference"]) for x in rows][0] == ("short", "7.00")
    xlsx = officer.get(url, {"month": "2026-07", "format": "xlsx"})
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
    assert web(open_shop("other2").officer).get(url, {"month": "2026-07"}).status_code == 404
