"""Recoveries on written-off loans (docs/repayments.md, "Recoveries"): money collected after a write-off, through
the API on the real PostgreSQL; the credit report and score read it back from the ring events.

The loan of tests/test_repayments.py: 1000.00 at 36 %, 3 months, disbursed 2026-01-01, total due 1060.59 (principal
1000.00, interest 60.59). 100.00 repaid on 2026-02-10 pays installment 1's 30.00 interest and 70.00 principal; a
write-off then takes 930.00 of principal off the books with 960.59 unpaid in all.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from node.audit.models import AuditEvent
from node.credit.report import RingRow, fold
from node.credit.score import score_report
from node.ledger.models import JournalEntry
from node.ledger.selectors import trial_balance
from node.loans.models import Loan, LoanInstallment
from node.repayments.models import Recovery
from replication.models import OutboxEvent
from tests.loan_fixtures import client_for, err, key, open_shop, post
from tests.test_repayments import FAR, lines, paid, repay, small_loan

pytestmark = pytest.mark.django_db

D = Decimal


def recover(user, lid, amount, on=None, channel="cash", idem=None, **extra):
    body = {"amount": amount, "channel": channel, **extra}
    if on:
        body["payment_date"] = on
    return post(user, f"/api/v1/loans/{lid}/recoveries", body, idem=idem or key())


def written_off(shop) -> int:
    lid = small_loan(shop)
    assert repay(shop.officer, lid, "100.00", on="2026-02-10").status_code == 201
    r = post(shop.admin, f"/api/v1/loans/{lid}/write-off", {"reason": "borrower left the country"}, idem=key())
    assert r.status_code == 200, r.content
    assert Loan.objects.get(pk=lid).status == "written_off"
    return lid


def test_recoveries_on_a_written_off_loan_post_to_recovery_income_and_tell_the_network():
    shop = open_shop()
    lid = written_off(shop)
    schedule = paid(lid)
    err(recover(shop.officer, lid, "50.00", on="2026-01-15"), 400, "validation_error")  # before the write-off
    err(recover(shop.analyst, lid, "50.00"), 403, "permission_denied")
    body = err(recover(shop.officer, lid, "960.60"), 409, "recovery_exceeds_written_off")
    assert body["details"] == {"written_off_unpaid": "960.59", "remaining": "960.59"}

    k = key()
    r = recover(shop.officer, lid, "400.00", channel="mobile_money", reference="MPESA-77", idem=k)
    assert r.status_code == 201, r.content
    first = r.json()
    assert first["written_off_unpaid"] == "960.59" and first["remaining"] == "560.59"
    assert first["receipt_number"].startswith(shop.mfi.code.upper() + "-R-") and first["reversed"] is False
    assert recover(shop.officer, lid, "400.00", channel="mobile_money", reference="MPESA-77", idem=k).json() == first
    assert Recovery.objects.filter(loan_id=lid).count() == 1  # the replayed key posted nothing
    # the schedule is not touched and the loan stays written off
    assert paid(lid) == schedule and Loan.objects.get(pk=lid).status == "written_off"
    assert lines(f"recovery:{first['id']}") == [("1000", D("400.00"), D("0.00")), ("4300", D("0.00"), D("400.00"))]
    tb = trial_balance(mfi=shop.mfi, as_of=FAR)
    assert tb.balanced and tb.row("4300").balance == D("400.00")
    event = OutboxEvent.objects.filter(event_type="loan.recovered").order_by("-seq").first()
    assert event.payload["recovered"] == "400.00" and event.payload["written_off_unpaid"] == "960.59"
    assert event.payload["status"] == "written_off"
    assert AuditEvent.objects.filter(action="loan.recovery", target_id=str(first["id"])).count() == 1

    second = recover(shop.officer, lid, "560.59").json()
    assert second["remaining"] == "0.00"
    err(recover(shop.officer, lid, "0.01"), 409, "recovery_exceeds_written_off")

    # reversal: MFI admins, once; what it took back is recoverable again
    path = f"/api/v1/recoveries/{second['id']}/reverse"
    err(post(shop.officer, path, {"reason": "the transfer bounced"}, idem=key()), 403, "permission_denied")
    r = post(shop.admin, path, {"reason": "the transfer bounced"}, idem=key())
    assert r.status_code == 200, r.content
    assert r.json()["reversed"] is True and r.json()["remaining"] == "560.59"
    err(post(shop.admin, path, {"reason": "the transfer bounced"}, idem=key()), 409, "already_reversed")
    reversal = JournalEntry.objects.get(source_key=f"recovery:{second['id']}:reversal")
    assert sorted((ln.account.code, ln.credit, ln.debit) for ln in reversal.lines.all()) == lines(
        f"recovery:{second['id']}")
    listed = client_for(shop.officer).get(f"/api/v1/loans/{lid}/recoveries").json()
    assert [(x["id"], x["reversed"], x["remaining"]) for x in listed] == [
        (first["id"], False, "560.59"), (second["id"], True, "560.59")]
    assert OutboxEvent.objects.filter(event_type="loan.recovered").order_by("-seq").first().payload["recovered"] == \
        "400.00"
    tb = trial_balance(mfi=shop.mfi, as_of=FAR)
    assert tb.balanced and tb.row("4300").balance == D("400.00")


def test_a_loan_that_is_not_written_off_takes_repayments_not_recoveries():
    shop = open_shop()
    lid = small_loan(shop)
    body = err(recover(shop.officer, lid, "10.00"), 409, "illegal_transition")
    assert body["details"]["allowed_from"] == ["written_off"]
    assert not Recovery.objects.exists() and LoanInstallment.objects.filter(loan_id=lid, principal_paid__gt=0).count() == 0
    err(recover(shop.officer, 999999, "10.00"), 404, "not_found")


def test_the_credit_report_and_score_show_what_was_recovered():
    t = datetime(2026, 3, 1, tzinfo=UTC)
    base = {"mfi": "pioneer", "district": "maseru", "loan_ref": "L-1", "principal": "1000.00", "currency": "LSL"}
    rows = [RingRow(t.replace(day=1), "e1", "loan.disbursed", "maseru", {**base, "status": "active",
                                                                        "outstanding_principal": "1000.00"}),
            RingRow(t.replace(day=2), "e2", "loan.written_off", "maseru", {**base, "status": "written_off",
                                                                          "outstanding_principal": "930.00"}),
            RingRow(t.replace(day=3), "e3", "loan.recovered", "maseru",
                    {**base, "status": "written_off", "outstanding_principal": "0", "recovered": "400.00",
                     "written_off_unpaid": "960.59"})]
    report = fold("k", rows, as_of=t.replace(day=4))
    (line,) = report.loans
    assert line.status == "written_off" and line.written_off_amount == D("930.00")
    assert line.recovered_amount == D("400.00") and line.outstanding == D("0")
    reasons = " ".join(r.text for r in score_report(report, monthly_income=D("9000.00")).reasons)
    assert "written off with M930.00 unpaid" in reasons and "M400.00 has been recovered since" in reasons


def test_the_migration_gives_existing_charts_the_recovery_account():
    import importlib

    from django.apps import apps

    from node.ledger.models import Account
    from node.ledger.services import ledger_ensure_chart

    shop = open_shop()
    ledger_ensure_chart(mfi=shop.mfi)
    Account.objects.filter(mfi=shop.mfi, code="4300").delete()  # a chart made before the account existed
    migration = importlib.import_module("node.ledger.migrations.0004_recovery_income_account")
    migration.add_recovery_account(apps, None)
    migration.add_recovery_account(apps, None)  # idempotent
    account = Account.objects.get(mfi=shop.mfi, code="4300")
    assert (account.name, account.type, account.is_contra) == ("Recoveries of loans written off", "INCOME", False)
    assert ledger_ensure_chart(mfi=shop.mfi)["4300"].pk == account.pk


def test_the_balance_as_of_a_day_before_the_write_off_shows_the_loan_active():
    from django.utils import timezone

    from tests.test_repayments import balance

    shop = open_shop()
    lid = written_off(shop)
    then = balance(shop.officer, lid, "2026-02-12")
    assert then["status"] == "active" and then["outstanding"]["total"] == "960.59"
    assert balance(shop.officer, lid, timezone.localdate().isoformat())["status"] == "written_off"
