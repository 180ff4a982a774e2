"""Payroll deduction (issue #5 item 3): employers, enrolments, the monthly deduction file (CSV/XLSX) and the
employer's result file, through the API and the management commands, on the real PostgreSQL.

Every loan below is 1000.00 at 36 %, 3 months, disbursed through the API on the 15th of May 2026 (or June), so each
installment is 353.53 (tests/test_repayments.py checks that schedule):

    #  due          principal  interest  total
    1  2026-06-15      323.53     30.00  353.53
    2  2026-07-15      333.24     20.29  353.53
    3  2026-08-15      343.23     10.30  353.53      schedule 1060.59

For July 2026 (due on or before 2026-07-31) a loan disbursed 2026-05-15 owes installments 1 and 2: 707.06.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from openpyxl import Workbook, load_workbook
from rest_framework.test import APIClient

from node.audit.models import AuditEvent
from node.borrowers.models import Borrower
from node.ledger.models import JournalEntry
from node.ledger.selectors import trial_balance
from node.loans.models import Loan, LoanInstallment
from node.payroll.models import Employer, PayrollExport, PayrollImport, PayrollImportRow
from node.payroll import services as P
from node.payroll.services import payroll_import
from node.repayments.models import Repayment
from node.users.models import User
from tests.borrower_factory import payload
from tests.factories import PASSWORD
from tests.loan_fixtures import apply, client_for, disbursed, err, key, open_shop, post

pytestmark = pytest.mark.django_db

D = Decimal
FAR = date(2099, 12, 31)
HEADER = "employee_number,loan_reference,amount_deducted,status,reason\r\n"


# --- helpers (set-up through the API) --------------------------------------------


def new_borrower(first: str, last: str) -> tuple[Borrower, User]:
    data = payload(password=PASSWORD, first_name=first, last_name=last)
    reg = APIClient().post("/api/v1/borrowers/register", data, format="json")
    assert reg.status_code == 201, reg.content
    user = User.objects.get(username=data["phone"])
    r = client_for(user).post(f"/api/v1/borrowers/{reg.json()['id']}/consents/", {"version": 1, "language": "en"},
                              format="json")
    assert r.status_code == 201, r.content
    return Borrower.objects.get(user=user), user


def disbursed_loan(shop, borrower_user, on="2026-05-15") -> Loan:
    return Loan.objects.get(pk=disbursed(shop, on=on, expected=on, borrower_user=borrower_user))


def repay(shop, loan, amount, on):
    r = post(shop.officer, f"/api/v1/loans/{loan.pk}/repayments",
             {"amount": amount, "payment_date": on, "channel": "cash"}, idem=key())
    assert r.status_code == 201, r.content
    return r.json()


def employer(shop, code, name) -> int:
    r = client_for(shop.admin).post("/api/v1/payroll/employers", {"code": code, "name": name}, format="json")
    assert r.status_code == 201, r.content
    return r.json()["id"]


def enrol(shop, employer_id, borrower, number) -> dict:
    r = client_for(shop.officer).post(f"/api/v1/payroll/employers/{employer_id}/enrolments",
                                      {"borrower": borrower.pk, "employee_number": number}, format="json")
    assert r.status_code == 201, r.content
    return r.json()


def paid(loan) -> dict[int, Decimal]:
    return {i.number: i.principal_paid + i.interest_paid + i.fees_paid + i.penalties_paid
            for i in LoanInstallment.objects.filter(loan_id=loan.pk, number__gte=1).order_by("number")}


def upload(user, employer_id, content: bytes, month="2026-07", name="result.csv", idem=None, **extra):
    return client_for(user).post(
        f"/api/v1/payroll/employers/{employer_id}/imports",
        {"file": SimpleUploadedFile(name, content), "month": month, **extra}, format="multipart",
        HTTP_IDEMPOTENCY_KEY=idem or key())


def result_csv(*rows: str) -> bytes:
    return (HEADER + "".join(r + "\r\n" for r in rows)).encode()


def _employer(pk) -> Employer:
    return Employer.objects.select_related("mfi").get(pk=pk)


def outcomes(report) -> list[tuple]:
    return [(r["row"], r["loan_reference"], r["amount_deducted"], r["outcome"], r["error_code"]) for r in report["rows"]]


@dataclass
class World:
    shop: object
    gov: int  # employer ids
    mine: int
    loans: dict[str, Loan]  # L1..L6


def world(n_gov: int = 5) -> World:
    """An MFI with employers gov-ls and mine-co; borrowers B1..B5 enrolled at gov-ls as GOV-001..GOV-005 and B6 at
    mine-co as MINE-6, one loan each (L1..L6, disbursed 2026-05-15). B1 has paid 100.00 in cash on 2026-06-20."""
    shop = open_shop("payroll", threshold="100000")
    gov = employer(shop, "gov-ls", "Government of Lesotho")
    mine = employer(shop, "mine-co", "Letseng Mine")
    people = [(shop.borrower, shop.borrower_user)] + [new_borrower(f"Name{i}", f"Surname{i}") for i in range(2, n_gov + 1)]
    loans = {}
    for i, (b, u) in enumerate(people, start=1):
        loans[f"L{i}"] = disbursed_loan(shop, u)  # applying makes the borrower a client of the MFI
        enrol(shop, gov, b, f"GOV-{i:03d}")
    b6, u6 = new_borrower("Other", "Employee")
    loans["L6"] = disbursed_loan(shop, u6)
    enrol(shop, mine, b6, "MINE-6")
    repay(shop, loans["L1"], "100.00", "2026-06-20")  # receipt R-00000001: interest 30.00, principal 70.00 of #1
    return World(shop=shop, gov=gov, mine=mine, loans=loans)


# --- employers and enrolments --------------------------------------------------------------------------------------
def test_employers_and_enrolments_belong_to_one_mfi():
    shop = open_shop("payroll")
    err(client_for(shop.officer).post("/api/v1/payroll/employers", {"code": "gov-ls", "name": "Gov"}, format="json"),
        403, "permission_denied")
    err(client_for(shop.admin).post("/api/v1/payroll/employers", {"code": "Gov LS!", "name": "Gov"}, format="json"),
        400, "validation_error")
    gov = employer(shop, "gov-ls", "Government of Lesotho")
    apply(shop)  # the borrower applies online: now a client of the MFI, so its staff may enrol them
    err(client_for(shop.admin).post("/api/v1/payroll/employers", {"code": "gov-ls", "name": "Again"}, format="json"),
        409, "employer_code_taken")
    assert [e["code"] for e in client_for(shop.analyst).get("/api/v1/payroll/employers").json()] == ["gov-ls"]

    e = enrol(shop, gov, shop.borrower, "GOV-0042")
    assert (e["employee_number"], e["borrower_name"], e["ended_at"]) == ("GOV-0042", "Mpho Nthane", None)
    other_b, _ = new_borrower("Thabo", "Mokoena")  # registered, but not a client of this MFI (never applied)
    path = f"/api/v1/payroll/employers/{gov}/enrolments"
    err(client_for(shop.officer).post(path, {"borrower": other_b.pk, "employee_number": "GOV-1"}, format="json"),
        404, "not_found")
    err(client_for(shop.officer).post(path, {"borrower": shop.borrower.pk, "employee_number": "GOV-2"}, format="json"),
        409, "borrower_already_enrolled")
    err(client_for(shop.analyst).post(path, {"borrower": shop.borrower.pk, "employee_number": "GOV-2"}, format="json"),
        403, "permission_denied")

    # another MFI sees none of it: its admin gets 404 exactly as for a missing employer (and it is audited)
    other = open_shop("other")
    err(client_for(other.admin).get(f"/api/v1/payroll/employers/{gov}"), 404, "not_found")
    err(client_for(other.admin).get(f"/api/v1/payroll/employers/{gov}/deductions", {"month": "2026-07"}),
        404, "not_found")
    assert AuditEvent.objects.filter(action="access.denied", target_type="payroll_employer",
                                     target_id=str(gov), actor_id=other.admin.pk).count() == 2
    assert client_for(other.admin).get("/api/v1/payroll/employers").json() == []

    # ending the enrolment frees the number; a second end is a conflict
    r = client_for(shop.officer).delete(f"/api/v1/payroll/enrolments/{e['id']}")
    assert r.status_code == 200 and r.json()["ended_at"] is not None
    err(client_for(shop.officer).delete(f"/api/v1/payroll/enrolments/{e['id']}"), 409, "enrolment_already_ended")
    e2 = enrol(shop, gov, shop.borrower, "GOV-0042")
    assert client_for(shop.officer).get(path).json()[0]["id"] == e2["id"]
    assert len(client_for(shop.officer).get(path, {"include_ended": "true"}).json()) == 2
    assert list(AuditEvent.objects.filter(action__startswith="payroll.").order_by("seq")
                .values_list("action", flat=True)) == [
        "payroll.employer_create", "payroll.enrol", "payroll.enrolment_end", "payroll.enrol"]


# --- export --------------------------------------------------------------------------------------------------------
def test_export_includes_arrears_excludes_paid_and_other_employers_and_csv_equals_xlsx(tmp_path):
    w = world(n_gov=3)
    shop, L = w.shop, w.loans
    repay(shop, L["L3"], "1060.59", "2026-07-01")  # L3 paid off: closed, not in the file
    L2b = disbursed_loan(shop, L["L2"].borrower.user, on="2026-06-20")  # B2's second loan: first due 2026-07-20

    r = client_for(shop.officer).get(f"/api/v1/payroll/employers/{w.gov}/deductions",
                                     {"month": "2026-07", "format": "csv"})
    assert r.status_code == 200, r.content
    code = shop.mfi.code
    assert r["Content-Type"] == "text/csv; charset=utf-8"
    assert r["Content-Disposition"] == f'attachment; filename="payroll-{code}-gov-ls-2026-07.csv"'
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8"))))
    expected = sorted([
        # L1: installment 1 less the 100.00 paid (253.53) + installment 2 (353.53); installment 3 (August) is not due
        ["GOV-001", "Mpho Nthane", L["L1"].reference, "607.06", "LSL", "2026-07"],
        ["GOV-002", "Name2 Surname2", L["L2"].reference, "707.06", "LSL", "2026-07"],  # June arrears + July
        ["GOV-002", "Name2 Surname2", L2b.reference, "353.53", "LSL", "2026-07"],  # only its July installment
    ])  # not L3 (closed, all paid) nor L6 (B6 is mine-co's)
    assert rows == [["employee_number", "borrower_name", "loan_reference", "amount_due", "currency", "month"]] + expected
    export = PayrollExport.objects.get(pk=int(r["X-Payroll-Export"]))
    assert (export.rows, export.total, export.sha256, export.created_by_id, export.due_by) == (
        3, D("1667.65"), hashlib.sha256(r.content).hexdigest(), shop.officer.pk, date(2026, 7, 31))
    assert (r["X-Payroll-Rows"], r["X-Payroll-Total"], r["X-Content-SHA256"]) == ("3", "1667.65", export.sha256)
    audit = AuditEvent.objects.get(action="payroll.export", target_id=str(export.pk))
    assert audit.after == {"employer": "gov-ls", "month": "2026-07", "format": "csv", "rows": 3,
                           "total": "1667.65", "sha256": export.sha256}

    x = client_for(shop.admin).get(f"/api/v1/payroll/employers/{w.gov}/deductions",
                                   {"month": "2026-07", "format": "xlsx"})
    assert x.status_code == 200
    assert x["Content-Disposition"].endswith('-2026-07.xlsx"')
    sheet = load_workbook(io.BytesIO(x.content), read_only=True).worksheets[0]
    assert [list(v) for v in sheet.iter_rows(values_only=True)] == rows  # every cell text, amounts included

    # June: L1 owes what is left of installment 1; B2's loans have nothing due by 2026-06-30 except L2's June one
    june = client_for(shop.officer).get(f"/api/v1/payroll/employers/{w.gov}/deductions", {"month": "2026-06"})
    assert [(r[0], r[3]) for r in csv.reader(io.StringIO(june.content.decode()))][1:] == sorted(
        [("GOV-001", "253.53"), ("GOV-002", "353.53")])

    # the command writes the same CSV and records the export too
    out = tmp_path / "july.csv"
    call_command("payroll_export", "--mfi", code, "--employer", "gov-ls", "--month", "2026-07", "--format", "csv",
                 "--out", str(out))
    assert out.read_bytes() == r.content
    assert PayrollExport.objects.filter(employer_id=w.gov).count() == 4

    err(client_for(shop.officer).get(f"/api/v1/payroll/employers/{w.gov}/deductions", {"month": "2026-7"}),
        400, "validation_error")
    err(client_for(shop.officer).get(f"/api/v1/payroll/employers/{w.gov}/deductions",
                                     {"month": "2026-07", "format": "pdf"}), 400, "validation_error")
    err(client_for(shop.analyst).get(f"/api/v1/payroll/employers/{w.gov}/deductions", {"month": "2026-07"}),
        403, "permission_denied")


# --- import --------------------------------------------------------------------------------------------------------
def test_import_posts_only_the_valid_rows_and_reports_every_row():
    w = world()
    shop, L = w.shop, w.loans
    ref = {k: v.reference for k, v in L.items()}
    before = {k: paid(v) for k, v in L.items()}
    content = result_csv(
        f"GOV-001,{ref['L1']},607.06,deducted,",
        f"GOV-002,{ref['L2']},200.00,partial,salary too low",
        f"GOV-003,{ref['L3']},0,not_deducted,unpaid leave",
        "GOV-009,NOPE-0001,100.00,deducted,",
        f"GOV-004,{ref['L4']},100.125,deducted,",
        f"GOV-005,{ref['L5']},50.00,deducted,",
        f"GOV-005,{ref['L5']},50.00,deducted,",
    )
    err(upload(shop.officer, w.gov, content), 403, "permission_denied")
    r = upload(shop.admin, w.gov, content, name="gov-july.csv")
    assert r.status_code == 201, r.content
    rep = r.json()
    imp = PayrollImport.objects.get(pk=rep["id"])
    assert (rep["status"], rep["month"], rep["payment_date"], rep["format"], rep["file_name"], rep["sha256"]) == (
        "completed", "2026-07", "2026-07-31", "csv", "gov-july.csv", hashlib.sha256(content).hexdigest())
    assert rep["summary"] == {"rows": 7, "posted": 2, "reversed": 0, "skipped": 1, "rejected": 4, "pending": 0,
                              "total_posted": "807.06",
                              "rejected_by_code": {"duplicate_loan_row": 2, "invalid_amount": 1, "unknown_loan": 1}}
    R = shop.mfi.code.upper() + "-R-"
    assert [(x["row"], x["outcome"], x["error_code"], x["receipt_number"]) for x in rep["rows"]] == [
        (2, "posted", None, R + "00000002"),
        (3, "posted", None, R + "00000003"),
        (4, "skipped", None, None),
        (5, "rejected", "unknown_loan", None),
        (6, "rejected", "invalid_amount", None),
        (7, "rejected", "duplicate_loan_row", None),
        (8, "rejected", "duplicate_loan_row", None),
    ]
    by_row = {x["row"]: x for x in rep["rows"]}
    assert by_row[5]["message"] == "No loan NOPE-0001 at this MFI."
    assert by_row[6]["message"] == "amount_deducted '100.125': at most 2 decimal places."
    assert by_row[6]["amount_deducted"] == "100.125"  # reported as written
    assert by_row[7]["message"] == by_row[8]["message"] == (
        f"Loan {ref['L5']} is on rows 7, 8 of this file; none of them is posted. Send one row per loan.")
    assert by_row[4]["message"] == "Not deducted: nothing to post."

    # the two posted rows are ordinary payroll repayments with their own journal entries
    reps = {x.loan_id: x for x in Repayment.objects.filter(channel="payroll")}
    assert set(reps) == {L["L1"].pk, L["L2"].pk}
    r1, r2 = reps[L["L1"].pk], reps[L["L2"].pk]
    assert (r1.amount, r1.reference, r1.payment_date, r1.receipt_number) == (
        D("607.06"), f"payroll:{imp.pk}:2", date(2026, 7, 31), R + "00000002")
    assert (r2.amount, r2.interest, r2.principal, r2.reference) == (D("200.00"), D("30.00"), D("170.00"),
                                                                    f"payroll:{imp.pk}:3")
    assert by_row[2]["repayment"] == r1.pk and by_row[3]["repayment"] == r2.pk
    # L1: 100.00 earlier + 607.06 = installments 1 and 2 exactly; 3 untouched
    assert paid(L["L1"]) == {1: D("353.53"), 2: D("353.53"), 3: D("0.00")}
    assert paid(L["L2"]) == {1: D("200.00"), 2: D("0.00"), 3: D("0.00")}
    entry = JournalEntry.objects.get(source_key=f"repayment:{r1.pk}")
    assert sorted((ln.account.code, ln.debit, ln.credit) for ln in entry.lines.select_related("account")) == [
        ("1000", D("607.06"), D("0.00")), ("1100", D("0.00"), D("586.77")), ("4000", D("0.00"), D("20.29"))]
    assert trial_balance(mfi=shop.mfi, as_of=FAR).balanced

    # nothing half-written for the other rows
    for k in ("L3", "L4", "L5", "L6"):
        assert paid(L[k]) == before[k]
        assert not Repayment.objects.filter(loan=L[k]).exists()
    assert Repayment.objects.filter(mfi=shop.mfi).count() == 3  # the cash one + 2 payroll
    # one audit event for the import (each repayment audits itself)
    audit = AuditEvent.objects.get(action="payroll.import")
    assert (audit.target_id, audit.actor_id) == (str(imp.pk), shop.admin.pk)
    assert audit.after == {"employer": "gov-ls", "month": "2026-07", "file_name": "gov-july.csv", "format": "csv",
                           "sha256": imp.sha256, "payment_date": "2026-07-31", "rows": 7, "posted": 2, "skipped": 1,
                           "rejected": 4, "total_posted": "807.06",
                           "rejected_by_code": {"duplicate_loan_row": 2, "invalid_amount": 1, "unknown_loan": 1}}
    assert AuditEvent.objects.filter(action="repayment.post", target_id__in=[str(r1.pk), str(r2.pk)]).count() == 2
    first = {k: v for k, v in rep.items() if k != "resumed"}
    assert rep["resumed"] is False
    assert client_for(shop.analyst).get(f"/api/v1/payroll/employers/{w.gov}/imports/{imp.pk}").json() == first

    # the same file again (another key, another name): nothing posted, the first report in the 409
    again = err(upload(shop.admin, w.gov, content, name="again.csv"), 409, "payroll_file_already_imported")
    assert again["details"]["import"] == imp.pk
    assert again["details"]["report"] == first
    assert Repayment.objects.filter(mfi=shop.mfi).count() == 3 and PayrollImport.objects.count() == 1
    assert AuditEvent.objects.filter(action="payroll.import").count() == 1

    # a different file of the same month: L1 and L2 were deducted already; L5 (refused before) is posted now
    repay(shop, L["L3"], "1060.59", "2026-07-20")  # L3 paid off in cash: closed
    second = upload(shop.admin, w.gov, result_csv(
        f"GOV-001,{ref['L1']},10.00,deducted,",
        f"GOV-005,{ref['L5']},50.00,deducted,",
        f"GOV-004,{ref['L4']},5.00,not_deducted,",
        f"GOV-999,{ref['L2']},10.00,deducted,",
        f"GOV-003,{ref['L3']},353.53,deducted,",
        f"MINE-6,{ref['L6']},100.00,deducted,",
        f" ,{ref['L4']}X,1.00,deducted,",
        "GOV-008,NOPE-3,1.00,paid,",
        f"GOV-002,{ref['L2']}-1,1.5e2,deducted,",
    ), name="gov-july-corrected.csv")
    assert second.status_code == 201, second.content
    s = second.json()
    assert outcomes(s) == [
        (2, ref["L1"], "10.00", "rejected", "already_deducted_this_month"),
        (3, ref["L5"], "50.00", "posted", None),
        (4, ref["L4"], "5.00", "rejected", "status_amount_mismatch"),
        (5, ref["L2"], "10.00", "rejected", "employee_number_mismatch"),
        (6, ref["L3"], "353.53", "rejected", "loan_not_active"),
        (7, ref["L6"], "100.00", "rejected", "loan_not_enrolled"),
        (8, ref["L4"] + "X", "1.00", "rejected", "missing_field"),
        (9, "NOPE-3", "1.00", "rejected", "invalid_status"),
        (10, ref["L2"] + "-1", "1.5e2", "rejected", "invalid_amount"),
    ]
    assert s["rows"][0]["message"] == (f"Loan {ref['L1']} already has a payroll deduction for 2026-07 (import "
                                       f"{imp.pk}, row 2, receipt {R}00000002).")
    assert s["summary"]["posted"] == 1 and s["summary"]["total_posted"] == "50.00"
    assert Repayment.objects.filter(loan=L["L1"], channel="payroll").count() == 1
    assert paid(L["L5"]) == {1: D("50.00"), 2: D("0.00"), 3: D("0.00")}
    assert trial_balance(mfi=shop.mfi, as_of=FAR).balanced
    # the database itself refuses a second posted row of one loan and month
    assert PayrollImportRow.objects.filter(loan=L["L1"], month=date(2026, 7, 1), outcome="posted").count() == 1

    # imports list (summaries, newest first); another MFI's admin cannot see them
    listed = client_for(shop.officer).get(f"/api/v1/payroll/employers/{w.gov}/imports").json()
    assert [(i["id"], i["summary"]["posted"]) for i in listed] == [(s["id"], 1), (imp.pk, 2)]
    assert "rows" not in listed[0]
    other = open_shop("other")
    err(client_for(other.admin).get(f"/api/v1/payroll/employers/{w.gov}/imports/{imp.pk}"), 404, "not_found")


def test_a_reversed_payroll_repayment_frees_its_month_for_a_corrected_deduction():
    """The employer's file said 100.00 for L2 in July; it was wrong and the MFI reversed that repayment. A corrected
    file for July then posts (it was refused ``already_deducted_this_month`` while the first one stood); the first
    import's row reads ``reversed``."""
    w = world(n_gov=2)
    shop, L = w.shop, w.loans
    ref = L["L2"].reference
    first = upload(shop.admin, w.gov, result_csv(f"GOV-002,{ref},100.00,partial,"), name="july.csv")
    assert first.status_code == 201, first.content
    (row,) = first.json()["rows"]
    assert row["outcome"] == "posted"
    corrected = result_csv(f"GOV-002,{ref},120.00,deducted,corrected")
    refused = upload(shop.admin, w.gov, corrected, name="july-corrected.csv")
    assert outcomes(refused.json()) == [(2, ref, "120.00", "rejected", "already_deducted_this_month")]

    r = post(shop.admin, f"/api/v1/repayments/{row['repayment']}/reverse", {"reason": "employer sent wrong amount"},
             idem=key())
    assert r.status_code == 200, r.content
    # the refused file itself counts as imported (same bytes: payroll_file_already_imported), so the employer's
    # re-issued file is what goes in
    err(upload(shop.admin, w.gov, corrected, name="july-corrected.csv"), 409, "payroll_file_already_imported")
    again = upload(shop.admin, w.gov, result_csv(f"GOV-002,{ref},120.00,deducted,corrected (re-issued)"),
                   name="july-corrected-2.csv", payment_date="2026-07-30")
    assert again.status_code == 201, again.content
    assert outcomes(again.json()) == [(2, ref, "120.00", "posted", None)]
    stood = client_for(shop.admin).get(f"/api/v1/payroll/employers/{w.gov}/imports/{first.json()['id']}").json()
    assert [x["outcome"] for x in stood["rows"]] == ["reversed"]
    assert (stood["summary"]["posted"], stood["summary"]["reversed"], stood["summary"]["total_posted"]) == (
        0, 1, "0.00")
    standing = Repayment.objects.filter(loan=L["L2"], reversed_at__isnull=True, channel="payroll")
    assert [r.amount for r in standing] == [D("120.00")]
    # still one standing deduction per loan and month: a third file is refused
    third = upload(shop.admin, w.gov, result_csv(f"GOV-002,{ref},5.00,partial,"), name="july-3.csv")
    assert outcomes(third.json()) == [(2, ref, "5.00", "rejected", "already_deducted_this_month")]
    assert trial_balance(mfi=shop.mfi, as_of=FAR).balanced


def test_an_mfi_may_post_payroll_deductions_without_a_message_to_each_borrower():
    """Thousands of "repayment received" messages per file cost money; the payslip already tells the employee. The
    MFI's admins switch them off for payroll files (audited); a repayment posted any other way still sends one."""
    from node.audit.models import AuditEvent
    from node.notifications.models import Notification

    w = world(n_gov=2)
    shop, L = w.shop, w.loans
    path = f"/api/v1/mfis/{shop.mfi.code}/notifications"
    err(client_for(shop.officer).put(path, {"payroll_repayments": False}, format="json"), 403, "permission_denied")
    err(client_for(shop.admin).put(path, {"payroll_repayments": "maybe"}, format="json"), 400, "validation_error")
    r = client_for(shop.admin).put(path, {"payroll_repayments": False}, format="json")
    assert r.status_code == 200 and r.json()["notify_payroll_repayments"] is False, r.content
    assert AuditEvent.objects.filter(action="mfi.notifications_set", mfi_id=shop.mfi.pk,
                                     after={"payroll_repayments": False}).exists()
    before = Notification.objects.filter(kind="repayment_received").count()
    report = upload(shop.admin, w.gov, result_csv(f"GOV-001,{L['L1'].reference},100.00,deducted,",
                                                  f"GOV-002,{L['L2'].reference},100.00,deducted,"))
    assert [o[3] for o in outcomes(report.json())] == ["posted", "posted"], report.content
    assert Notification.objects.filter(kind="repayment_received").count() == before  # none for the file
    repay(shop, L["L2"], "10.00", "2026-07-31")  # at the branch: told as always
    assert Notification.objects.filter(kind="repayment_received").count() == before + 1
    # switched back on: the next file's deductions are told again
    assert client_for(shop.admin).put(path, {"payroll_repayments": True}, format="json").status_code == 200
    report = upload(shop.admin, w.mine, result_csv(f"MINE-6,{L['L6'].reference},80.00,deducted,"))
    assert [o[3] for o in outcomes(report.json())] == ["posted"], report.content
    assert Notification.objects.filter(kind="repayment_received").count() == before + 2


def test_a_large_upload_is_validated_in_the_request_and_posted_in_the_background(settings,
                                                                                 django_capture_on_commit_callbacks):
    """More rows to post than LETSEMA_PAYROLL_SYNC_ROWS: the request validates and stores the file and answers 202
    (nothing posted, so it holds no loan or audit-chain lock for the posting); the task posts it in time slices, each
    batch its own transaction, and the report shows the progress."""
    settings.LETSEMA_PAYROLL_SYNC_ROWS = 2
    w = world()
    shop, L = w.shop, w.loans
    content = result_csv(*(f"GOV-00{i},{L[f'L{i}'].reference},{50 + i}.00,deducted," for i in (2, 3, 4, 5)),
                         f"GOV-001,{L['L1'].reference},0,not_deducted,leave")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        r = upload(shop.admin, w.gov, content, name="big.csv")
    assert r.status_code == 202, r.content
    body = r.json()
    assert r["Location"] == f"/api/v1/payroll/employers/{w.gov}/imports/{body['id']}"
    assert (body["status"], body["summary"]["pending"], body["summary"]["posted"], body["summary"]["skipped"]) == (
        "posting", 4, 0, 1)
    assert not Repayment.objects.filter(channel="payroll").exists()
    sent = [c for c in callbacks if getattr(c, "func", None) is P._send_posting_task]
    assert [c.args for c in sent] == [(body["id"],)]

    # the same file again while it posts: queued again (two posters would take different batches), not posted in the request
    with django_capture_on_commit_callbacks(execute=False) as again:
        r2 = upload(shop.admin, w.gov, content, name="big.csv")
    assert r2.status_code == 202 and r2.json()["resumed"] is True
    assert len([c for c in again if getattr(c, "func", None) is P._send_posting_task]) == 1

    # one time slice: a batch (of 1 here), then the deadline has passed
    imp, more = P.payroll_import_continue(import_id=body["id"], seconds=0, batch_size=1)
    assert more is True
    mid = client_for(shop.officer).get(r["Location"]).json()
    assert (mid["status"], mid["summary"]["posted"], mid["summary"]["pending"]) == ("posting", 1, 3)

    # the queued callback, through Celery (eager here: the shared cluster's workers use another database)
    from config.celery import app

    app.loader.import_default_modules()  # what a worker does at start-up: autodiscovery finds the task
    assert "node.payroll.tasks.payroll_import_continue" in app.tasks
    eager, app.conf.task_always_eager = app.conf.task_always_eager, True
    try:
        sent[0]()
    finally:
        app.conf.task_always_eager = eager
    done = client_for(shop.officer).get(r["Location"]).json()
    assert (done["status"], done["summary"]["posted"], done["summary"]["pending"], done["summary"]["total_posted"]) == (
        "completed", 4, 0, "214.00")
    reps = Repayment.objects.filter(channel="payroll")
    assert reps.count() == 4 and {rep.posted_by_id for rep in reps} == {shop.admin.pk}  # as the uploader
    assert AuditEvent.objects.filter(action="payroll.import", target_id=str(body["id"])).count() == 1
    assert P.payroll_import_continue(import_id=body["id"])[1] is False  # a late duplicate task: nothing to do
    assert Repayment.objects.filter(channel="payroll").count() == 4
    assert trial_balance(mfi=shop.mfi, as_of=FAR).balanced


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("parent", ["command", "celery pool process"])
def test_batches_posted_side_by_side_take_every_row_exactly_once(parent, monkeypatch):
    """LETSEMA_PAYROLL_POST_WORKERS > 1 (outside a transaction, e.g. the command or the Celery task): posters in
    forked processes, each with its own connection, claim batches with SKIP LOCKED; every row is posted once, the
    ledger balances and the audit chain verifies. A Celery pool process is daemonic, which multiprocessing would
    refuse children: the posters start anyway and the flag is put back."""
    import multiprocessing

    from node.audit.selectors import audit_verify_chain

    if parent == "celery pool process":
        monkeypatch.setitem(multiprocessing.current_process()._config, "daemon", True)
    forked = []
    real_fork = multiprocessing.get_context("fork").Process.start
    monkeypatch.setattr(multiprocessing.get_context("fork").Process, "start",
                        lambda self: (forked.append(self.name), real_fork(self))[1])
    w = world()
    shop, L = w.shop, w.loans
    content = result_csv(*(f"GOV-00{i},{L[f'L{i}'].reference},{40 + i}.00,deducted," for i in range(1, 6)))
    seen = []
    result = payroll_import(actor=shop.admin, employer=_employer(w.gov), month=date(2026, 7, 1), content=content,
                            file_name="side-by-side.csv", batch_size=1, workers=2,
                            progress=lambda done, total: seen.append((done, total)))
    imp = result.payroll_import
    assert (imp.status, imp.posted, imp.rejected) == ("completed", 5, 0)
    assert seen[0] == (0, 5) and seen[-1] == (5, 5) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    rows = list(PayrollImportRow.objects.filter(payroll_import=imp).order_by("row_number"))
    assert [r.outcome for r in rows] == ["posted"] * 5 and len({r.repayment_id for r in rows}) == 5
    reps = Repayment.objects.filter(channel="payroll", reference__startswith=f"payroll:{imp.pk}:")
    assert sorted(r.amount for r in reps) == [D(f"{40 + i}.00") for i in range(1, 6)]
    assert JournalEntry.objects.filter(source_key__in=[f"repayment:{r.pk}" for r in reps]).count() == 5
    assert audit_verify_chain().ok
    assert trial_balance(mfi=shop.mfi, as_of=FAR).balanced
    assert len(forked) == 2
    assert multiprocessing.current_process().daemon is (parent == "celery pool process")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("how", ["raises", "dies"])
def test_a_failed_poster_process_leaves_its_rows_pending_and_the_import_resumes(how, monkeypatch, tmp_path):
    """A poster process that fails mid-batch (an exception, or killed without a word) rolls that batch back; the
    other poster finishes, the parent raises, the import is left resumable (its rows pending), and importing the
    same file again posts them, once."""
    w = world()
    shop, L = w.shop, w.loans
    content = result_csv(*(f"GOV-00{i},{L[f'L{i}'].reference},{40 + i}.00,deducted," for i in range(1, 6)))
    real = P._post_batch

    def failing(imp, mfi, batch, actor):
        if any(r.row_number == 3 for r in batch):
            real(imp, mfi, batch, actor)  # the writes happen, then the transaction is rolled back
            if how == "dies":
                os._exit(9)
            raise RuntimeError("poster killed")
        return real(imp, mfi, batch, actor)

    monkeypatch.setattr(P, "_post_batch", failing)
    kwargs = dict(actor=shop.admin, employer=_employer(w.gov), month=date(2026, 7, 1), content=content,
                  file_name="flaky.csv", batch_size=1, workers=2)
    with pytest.raises(P.PosterFailed, match="poster killed" if how == "raises" else "exited with code 9"):
        payroll_import(**kwargs)
    imp = PayrollImport.objects.get(file_name="flaky.csv")
    assert imp.status == "posting"
    assert dict(PayrollImportRow.objects.filter(payroll_import=imp).values_list("row_number", "outcome"))[3] == "pending"
    assert not Repayment.objects.filter(reference=f"payroll:{imp.pk}:3").exists()
    if how == "raises":  # the command resumes it, fails the same way: exit 4, and says how to go on
        f = tmp_path / "flaky.csv"
        f.write_bytes(content)
        with pytest.raises(CommandError) as exc:
            call_command("payroll_import", str(f), "--mfi", shop.mfi.code, "--employer", "gov-ls", "--month",
                         "2026-07", "--batch-size", "1", "--workers", "2", "--user", shop.admin.username)
        assert exc.value.returncode == 4 and "run the same command with the same file again" in str(exc.value)
        assert PayrollImportRow.objects.get(payroll_import=imp, row_number=3).outcome == "pending"

    monkeypatch.setattr(P, "_post_batch", real)
    result = payroll_import(**kwargs)
    assert result.resumed and (result.payroll_import.status, result.payroll_import.posted) == ("completed", 5)
    assert Repayment.objects.filter(reference__startswith=f"payroll:{imp.pk}:").count() == 5
    assert trial_balance(mfi=shop.mfi, as_of=FAR).balanced


def test_import_of_an_xlsx_result_file_and_file_level_refusals():
    w = world(n_gov=2)
    shop, L = w.shop, w.loans
    wb = Workbook()
    ws = wb.active
    ws.append(["Employee Number", "Loan Reference", "Amount Deducted", "Status", "Reason"])
    ws.append(["GOV-001", L["L1"].reference, 607.06, "Deducted", None])  # a numeric cell, as payroll systems write
    ws.append(["GOV-002", L["L2"].reference, "353.53", "deducted", None])
    buf = io.BytesIO()
    wb.save(buf)
    r = upload(shop.admin, w.gov, buf.getvalue(), name="gov.xlsx", payment_date="2026-08-05")
    assert r.status_code == 201, r.content
    assert r.json()["format"] == "xlsx" and r.json()["payment_date"] == "2026-08-05"
    assert outcomes(r.json()) == [(2, L["L1"].reference, "607.06", "posted", None),
                                  (3, L["L2"].reference, "353.53", "posted", None)]
    assert Repayment.objects.get(loan=L["L1"], channel="payroll").payment_date == date(2026, 8, 5)

    bad = err(upload(shop.admin, w.gov, b"loan,amount\r\nX,1\r\n"), 400, "payroll_file_invalid")
    assert bad["details"]["missing_columns"] == ["employee_number", "loan_reference", "amount_deducted", "status"]
    err(upload(shop.admin, w.gov, b"PK\x03\x04not a zip"), 400, "payroll_file_invalid")
    err(upload(shop.admin, w.gov, HEADER.encode()), 400, "payroll_file_invalid")
    err(upload(shop.admin, w.gov, result_csv("A,B,1.00,deducted,"), month="2026-13"), 400, "validation_error")
    err(upload(shop.admin, w.gov, result_csv("A,B,1.00,deducted,"), month="2027-01"), 400, "validation_error")
    err(upload(shop.admin, w.gov, result_csv("A,B,1.00,deducted,"), payment_date="2026-06-30"), 400,
        "validation_error")
    err(client_for(shop.admin).post(f"/api/v1/payroll/employers/{w.gov}/imports",
                                    {"file": SimpleUploadedFile("a.csv", b"x"), "month": "2026-07"},
                                    format="multipart"), 400, "idempotency_key_required")
    assert PayrollImport.objects.count() == 1


def test_wrong_encoding_and_malformed_dates_are_refused_whole_and_a_utf8_bom_is_read():
    w = world(n_gov=2)
    shop, L = w.shop, w.loans
    rows = [f"GOV-001,{L['L1'].reference},607.06,deducted,", f"GOV-002,{L['L2'].reference},0,not_deducted,"]
    # Excel's plain "CSV" on Windows: Windows-1252, here a curly apostrophe in a reason on the third line
    cp1252 = (HEADER + rows[0] + "\r\n" + rows[1] + "Mokhethe\u2019s leave\r\n").encode("cp1252")
    bad = err(upload(shop.admin, w.gov, cp1252), 400, "payroll_file_invalid")
    assert "UTF-8" in bad["message"] and "line 3" in bad["message"] and bad["details"]["line"] == 3
    for payment_date in ("31/07/2026", "2026-07-32", "yesterday"):
        err(upload(shop.admin, w.gov, result_csv(*rows), payment_date=payment_date), 400, "validation_error")
    assert PayrollImport.objects.count() == 0 and not Repayment.objects.filter(channel="payroll").exists()
    # Excel's "CSV UTF-8" starts with a byte-order mark: read as any UTF-8 file
    r = upload(shop.admin, w.gov, b"\xef\xbb\xbf" + result_csv(*rows))
    assert r.status_code == 201, r.content
    assert [x["outcome"] for x in r.json()["rows"]] == ["posted", "skipped"]


def test_a_row_refused_at_posting_time_is_rolled_back_alone_and_its_batch_commits():
    """Rows are validated, stored, then posted; between the two, L2 is paid off (closed) and another import posts
    L3 for the month. Those two rows are rejected when posted; the rest of the same batch is posted."""
    w = world(n_gov=4)
    shop, L = w.shop, w.loans
    content = result_csv(*(f"GOV-{i:03d},{L[f'L{i}'].reference},100.00,partial," for i in range(1, 5)))

    def meanwhile(done, total):
        if done == 0:  # rows stored, nothing posted yet
            assert total == 4
            repay(shop, L["L2"], "1060.59", "2026-07-10")
            other = payroll_import(actor=shop.admin, employer=_employer(w.gov), month=date(2026, 7, 1),
                                   content=result_csv(f"GOV-003,{L['L3'].reference},40.00,partial,"))
            assert other.payroll_import.posted == 1

    result = payroll_import(actor=shop.admin, employer=_employer(w.gov), month=date(2026, 7, 1), content=content,
                            file_name="july.csv", batch_size=500, progress=meanwhile)
    imp = result.payroll_import
    rows = list(PayrollImportRow.objects.filter(payroll_import=imp).order_by("row_number")
                .values_list("row_number", "outcome", "error_code"))
    assert rows == [(2, "posted", ""), (3, "rejected", "loan_not_active"),
                    (4, "rejected", "already_deducted_this_month"), (5, "posted", "")]
    assert (imp.posted, imp.rejected, imp.total_posted) == (2, 2, D("200.00"))
    assert Repayment.objects.filter(loan=L["L3"]).count() == 1  # the other import's 40.00 only
    assert Repayment.objects.get(loan=L["L3"]).amount == D("40.00")
    assert not Repayment.objects.filter(loan=L["L2"], channel="payroll").exists()
    assert paid(L["L4"]) == {1: D("100.00"), 2: D("0.00"), 3: D("0.00")}
    assert trial_balance(mfi=shop.mfi, as_of=FAR).balanced

    # an import interrupted after its first batch (the process dies): the batch stays posted, the rest pending;
    # uploading the same file again resumes it and posts only what was pending
    august = result_csv(f"GOV-001,{L['L1'].reference},30.00,partial,", f"GOV-004,{L['L4'].reference},40.00,partial,")

    def crash(done, total):
        if done == 1:
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        payroll_import(actor=shop.admin, employer=_employer(w.gov), month=date(2026, 8, 1), content=august,
                       file_name="aug.csv", batch_size=1, progress=crash)
    stuck = PayrollImport.objects.get(month=date(2026, 8, 1))
    assert stuck.status == "posting"
    assert dict(stuck.lines.values_list("row_number", "outcome")) == {2: "posted", 3: "pending"}
    assert not AuditEvent.objects.filter(action="payroll.import", target_id=str(stuck.pk)).exists()
    r = upload(shop.admin, w.gov, august, month="2026-08", name="aug.csv")
    assert r.status_code == 200 and r.json()["resumed"] is True, r.content
    assert (r.json()["id"], r.json()["status"], r.json()["summary"]["posted"], r.json()["summary"]["total_posted"]) == (
        stuck.pk, "completed", 2, "70.00")
    assert Repayment.objects.filter(reference__startswith=f"payroll:{stuck.pk}:").count() == 2
    assert AuditEvent.objects.filter(action="payroll.import", target_id=str(stuck.pk)).count() == 1


# --- the command ---------------------------------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_import_command_progress_summary_and_exit_codes(tmp_path, capsys):
    """The real exit code comes from a real ``manage.py`` process (committed data: a transactional test)."""
    w = world(n_gov=2)
    shop, L = w.shop, w.loans
    f = tmp_path / "gov-july.csv"
    f.write_bytes(result_csv(f"GOV-001,{L['L1'].reference},607.06,deducted,", "GOV-002,NOPE-1,5.00,deducted,"))
    args = [str(f), "--mfi", shop.mfi.code, "--employer", "gov-ls", "--month", "2026-07", "--batch-size", "1"]

    # two MFI admins: the command must be told which one acts (exit 2, nothing written)
    with pytest.raises(CommandError) as exc:
        call_command("payroll_import", *args)
    assert exc.value.returncode == 2 and "--user" in str(exc.value)
    assert not PayrollImport.objects.exists()

    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.test_settings",
           "LETSEMA_CONFIG__postgres__name": f'"{connection.settings_dict["NAME"]}"'}
    proc = subprocess.run([sys.executable, "manage.py", "payroll_import", *args, "--user", shop.admin.username],
                          cwd=Path(__file__).resolve().parent.parent, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)  # a row was rejected
    assert "[..............................] 0/1 rows posted\n[##############################] 1/1 rows posted\n" \
        in proc.stderr
    assert "CommandError: 1 of 2 rows rejected" in proc.stderr
    imp = PayrollImport.objects.get()
    assert (f"import {imp.pk} (gov-ls 2026-07, gov-july.csv): 2 rows, posted 1 (total 607.06), skipped 0, rejected 1 "
            "(by code: unknown_loan 1)\n  row 3: unknown_loan: No loan NOPE-1 at this MFI.") in proc.stdout
    assert Repayment.objects.get(loan=L["L1"], channel="payroll").posted_by == shop.admin
    assert AuditEvent.objects.get(action="payroll.import").actor_id == shop.admin.pk

    # the same file again: exit 3, nothing posted
    with pytest.raises(CommandError) as exc:
        call_command("payroll_import", *args, "--user", shop.admin.username)
    assert exc.value.returncode == 3 and "payroll_file_already_imported" in str(exc.value)
    assert Repayment.objects.filter(channel="payroll").count() == 1

    # a clean file: exit 0, progress on stderr, JSON summary on stdout
    capsys.readouterr()
    g = tmp_path / "gov-july-2.csv"
    g.write_bytes(result_csv(f"GOV-002,{L['L2'].reference},707.06,deducted,"))
    call_command("payroll_import", str(g), "--mfi", shop.mfi.code, "--employer", "gov-ls", "--month", "2026-07",
                 "--user", shop.admin2.username, "--json")
    out, errout = capsys.readouterr()
    assert "1/1 rows posted" in errout
    assert '"posted": 1, "skipped": 0, "rejected": 0, "total_posted": "707.06", "rejected_by_code": {}' in out
    assert paid(L["L2"]) == {1: D("353.53"), 2: D("353.53"), 3: D("0.00")}
    assert trial_balance(mfi=shop.mfi, as_of=FAR).balanced


def test_the_background_task_retries_when_a_poster_process_fails(monkeypatch):
    """A poster process dying inside the Celery task is not the end of the import: the task is retried (5 s later,
    up to 5 times) and goes on from the rows still pending. Run eagerly here, so the retries run at once; a failure
    that persists ends as the task's error (the import stays resumable by uploading the file again)."""
    from node.payroll import tasks

    calls = []

    def failing(**kwargs):
        calls.append(kwargs["import_id"])
        raise P.PosterFailed("poster process exited with code -9")

    monkeypatch.setattr(P, "payroll_import_continue", failing)
    result = tasks.payroll_import_continue.apply(args=(42,))
    assert calls == [42] * 6  # the first run and 5 retries
    assert result.state == "FAILURE" and isinstance(result.result, P.PosterFailed)


def test_the_month_reconciliation_flags_what_the_employer_did_not_deduct_as_asked():
    w = world(n_gov=5)
    shop, L = w.shop, w.loans
    L2b = disbursed_loan(shop, L["L2"].borrower.user, on="2026-06-20")  # July: 353.53 asked
    path = f"/api/v1/payroll/employers/{w.gov}/reconciliation"
    body = client_for(shop.officer).get(path, {"month": "2026-07"}).json()
    assert body["code"] == "payroll_not_exported"  # nothing asked yet: nothing to reconcile against
    assert client_for(shop.officer).get(f"/api/v1/payroll/employers/{w.gov}/deductions",
                                        {"month": "2026-07"}).status_code == 200
    L3b = disbursed_loan(shop, L["L3"].borrower.user, on="2026-06-25")  # after the export: not asked for
    imported = upload(shop.admin, w.gov, result_csv(
        f"GOV-001,{L['L1'].reference},607.06,deducted,",
        f"GOV-002,{L['L2'].reference},300.00,partial,salary too low",
        f"GOV-003,{L['L3'].reference},,not_deducted,on leave",
        f"GOV-004,{L['L4'].reference},abc,deducted,",
        f"GOV-005,{L['L5'].reference},800.00,deducted,",
        f"GOV-003,{L3b.reference},100.00,deducted,",
        f"MINE-6,{L['L6'].reference},50.00,deducted,",  # another employer's borrower: rejected, not counted
    ))
    assert imported.status_code == 201, imported.content

    r = client_for(shop.analyst).get(path, {"month": "2026-07"})
    assert r.status_code == 200, r.content
    rec = r.json()
    lines = {x["loan_reference"]: (x["flag"], x["requested"], x["deducted"], x["difference"]) for x in rec["lines"]}
    assert lines == {
        L["L1"].reference: ("matched", "607.06", "607.06", "0.00"),
        L["L2"].reference: ("short", "707.06", "300.00", "407.06"),
        L["L3"].reference: ("not_deducted", "707.06", "0.00", "707.06"),
        L["L4"].reference: ("rejected", "707.06", "0.00", "707.06"),
        L["L5"].reference: ("over", "707.06", "800.00", "-92.94"),
        L2b.reference: ("missing", "353.53", "0.00", "353.53"),
        L3b.reference: ("not_requested", "0.00", "100.00", "-100.00"),
    }
    by_ref = {x["loan_reference"]: x for x in rec["lines"]}
    assert by_ref[L["L2"].reference]["employer_status"] == "partial"
    assert by_ref[L["L2"].reference]["reason"] == "salary too low"
    assert by_ref[L["L4"].reference]["error_code"] == "invalid_amount"
    assert rec["lines"][-1]["flag"] == "matched"  # the differences come first
    assert rec["summary"] == {"loans": 7, "total_requested": "3788.83", "total_deducted": "1807.06",
                              "difference": "1981.77",
                              "by_flag": {"matched": 1, "short": 1, "over": 1, "not_deducted": 1, "reversed": 0,
                                          "missing": 1, "rejected": 1, "not_requested": 1}}

    # the same lines as a sheet to download
    sheet = client_for(shop.officer).get(path, {"month": "2026-07", "format": "csv"})
    assert sheet.status_code == 200 and sheet["Content-Type"].startswith("text/csv")
    assert sheet["Content-Disposition"] == f'attachment; filename="reconciliation-{shop.mfi.code}-gov-ls-2026-07.csv"'
    table = list(csv.reader(io.StringIO(sheet.content.decode("utf-8"))))
    assert table[0] == ["employee_number", "loan_reference", "requested", "deducted", "difference", "flag",
                        "employer_status", "reason", "error_code"]
    assert [(x[1], x[5], x[4]) for x in table[1:]] == [(x["loan_reference"], x["flag"], x["difference"])
                                                       for x in rec["lines"]]
    xlsx = client_for(shop.officer).get(path, {"month": "2026-07", "format": "xlsx"})
    assert xlsx.status_code == 200
    ws = load_workbook(io.BytesIO(xlsx.content)).active
    assert [[v or "" for v in r] for r in ws.iter_rows(values_only=True)] == table  # an empty cell reads None
    err(client_for(shop.officer).get(path, {"month": "2026-07", "format": "pdf"}), 400, "validation_error")

    # a deduction reversed since no longer counts
    row = next(x for x in imported.json()["rows"] if x["loan_reference"] == L["L1"].reference)
    assert post(shop.admin, f"/api/v1/repayments/{row['repayment']}/reverse", {"reason": "employer recalled it"},
                idem=key()).status_code == 200
    again = client_for(shop.officer).get(path, {"month": "2026-07"}).json()
    l1 = next(x for x in again["lines"] if x["loan_reference"] == L["L1"].reference)
    assert (l1["flag"], l1["deducted"]) == ("reversed", "0.00")
    # another MFI's employer is not found; a bad month is a validation error
    err(client_for(open_shop("other").officer).get(path, {"month": "2026-07"}), 404, "not_found")
    err(client_for(shop.officer).get(path, {"month": "July"}), 400, "validation_error")


def test_a_payroll_deduction_replayed_by_reprocessing_still_counts_for_its_month():
    w = world(n_gov=1)
    shop, L = w.shop, w.loans
    cash = Repayment.objects.get(loan=L["L1"], channel="cash")  # 100.00 on 2026-06-20, posted before the file
    client_for(shop.officer).get(f"/api/v1/payroll/employers/{w.gov}/deductions", {"month": "2026-07"})
    imported = upload(shop.admin, w.gov, result_csv(f"GOV-001,{L['L1'].reference},607.06,deducted,"))
    assert imported.status_code == 201, imported.content
    r = post(shop.admin, f"/api/v1/repayments/{cash.pk}/reverse",
             {"reason": "counterfeit notes", "reprocess_later": True}, idem=key())
    assert r.status_code == 200, r.content
    (replay,) = r.json()["replays"]
    assert (replay["channel"], replay["amount"]) == ("payroll", "607.06")
    row = PayrollImportRow.objects.get(payroll_import_id=imported.json()["id"])
    assert (row.outcome, row.repayment_id, row.receipt_number) == ("posted", replay["id"], replay["receipt_number"])
    rec = client_for(shop.officer).get(f"/api/v1/payroll/employers/{w.gov}/reconciliation",
                                       {"month": "2026-07"}).json()
    assert [(x["flag"], x["deducted"]) for x in rec["lines"]] == [("matched", "607.06")]
    # the month's deduction is still taken: another file deducting it again is refused for that row
    again = upload(shop.admin, w.gov, result_csv(f"GOV-001,{L['L1'].reference},607.06,deducted,resent"),
                   name="again.csv")
    assert again.status_code == 201, again.content
    assert [(x["outcome"], x["error_code"]) for x in again.json()["rows"]] == [
        ("rejected", "already_deducted_this_month")]
