"""Waiving interest, fees or penalties (Fineract's "waive charge" / "waive interest"), through the API on the real
PostgreSQL (docs/repayments.md). The loan of tests/test_repayments.py: 1000.00 at 36 %, 3 months, disbursed
2026-01-01; installment 1 owes 323.53 principal and 30.00 interest, installment 2 333.24 and 20.29, installment 3
343.23 and 10.30. Penalties are put on installments 1 and 2 as close of business would have charged them."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from node.audit.models import AuditEvent
from node.ledger.models import JournalEntry
from node.ledger.selectors import trial_balance
from node.loans.models import Loan, LoanInstallment
from node.repayments.models import ChargeWaiver
from replication.models import OutboxEvent
from tests.loan_fixtures import client_for, err, key, open_shop, post
from tests.openapi_helpers import assert_documented
from tests.test_repayments import FAR, balance, repay, small_loan

pytestmark = pytest.mark.django_db

D = Decimal


def waive(user, lid, idem=None, **body):
    return post(user, f"/api/v1/loans/{lid}/waivers", {"reason": "branch manager's decision", **body},
                idem=idem or key())


def penalties(lid) -> dict[int, Decimal]:
    return dict(LoanInstallment.objects.filter(loan_id=lid, number__gte=1).values_list("number", "penalties"))


@pytest.fixture
def late_loan():
    shop = open_shop()
    lid = small_loan(shop)
    LoanInstallment.objects.filter(loan_id=lid, number=1).update(penalties=D("15.00"))
    LoanInstallment.objects.filter(loan_id=lid, number=2).update(penalties=D("25.00"))
    return shop, lid


def test_penalties_are_waived_oldest_first_without_a_journal_entry_and_the_past_balance_still_owes_them(late_loan):
    shop, lid = late_loan
    entries = JournalEntry.objects.count()
    assert repay(shop.officer, lid, "5.00").json()["allocation"]["penalties"] == "5.00"  # 10.00 still unpaid on #1

    err(waive(shop.officer, lid, component="penalties"), 403, "permission_denied")
    err(waive(shop.admin, lid, component="principal"), 400, "validation_error")
    err(waive(shop.admin, lid, component="penalties", reason="no"), 400, "validation_error")
    err(waive(shop.admin, lid, component="penalties", amount="0.001"), 400, "validation_error")
    over = err(waive(shop.admin, lid, component="penalties", amount="40.00"), 409, "waiver_exceeds_unpaid")
    assert over["details"] == {"component": "penalties", "unpaid": "35.00", "amount": "40.00"}
    err(waive(shop.admin, lid, component="fees"), 409, "nothing_to_waive")
    assert "installment" in err(waive(shop.admin, lid, component="penalties", installment=9), 400,
                                "validation_error")["details"]["fields"]
    assert not ChargeWaiver.objects.exists() and penalties(lid) == {1: D("15.00"), 2: D("25.00"), 3: D("0.00")}

    k = key()
    r = waive(shop.admin, lid, component="penalties", amount="20.00", idem=k)
    assert r.status_code == 201, r.content
    assert waive(shop.admin, lid, component="penalties", amount="20.00", idem=k).json() == r.json()  # a replay
    body = r.json()
    assert (body["total"], body["closed_loan"]) == ("20.00", False)
    assert [(w["installment"], w["amount"]) for w in body["waivers"]] == [(1, "10.00"), (2, "10.00")]
    # the paid part of installment 1's penalty stays charged; only what was unpaid is forgiven
    assert penalties(lid) == {1: D("5.00"), 2: D("15.00"), 3: D("0.00")}
    assert JournalEntry.objects.count() == entries + 1  # the repayment's only: cash-based books never booked them
    assert trial_balance(mfi=shop.mfi, as_of=FAR).balanced
    audit = AuditEvent.objects.get(action="loan.charges_waive", target_id=str(lid))
    assert audit.after["amount"] == "20.00" and audit.before["unpaid"] == "35.00"

    today = timezone.localdate()
    now = balance(shop.officer, lid, today.isoformat())
    before = balance(shop.officer, lid, (today - timedelta(days=1)).isoformat())
    assert [r["due"]["penalties"] for r in now["installments"][1:]] == ["5.00", "15.00", "0.00"]
    assert [r["due"]["penalties"] for r in before["installments"][1:]] == ["15.00", "25.00", "0.00"]
    listed = client_for(shop.borrower_user).get(f"/api/v1/loans/{lid}/waivers").json()
    assert [(w["installment"], w["component"], w["amount"]) for w in listed] == [(1, "penalties", "10.00"),
                                                                                   (2, "penalties", "10.00")]
    # one installment only, all of what it still owes of the component
    r = waive(shop.admin, lid, component="interest", installment=3)
    assert r.status_code == 201 and r.json()["total"] == "10.30"
    assert LoanInstallment.objects.get(loan_id=lid, number=3).interest == D("0.00")


def test_a_waiver_that_leaves_nothing_to_pay_closes_the_loan_and_tells_the_network():
    shop = open_shop()
    lid = small_loan(shop)
    product = Loan.objects.get(pk=lid).product_id
    assert client_for(shop.admin).put(f"/api/v1/products/{product}/repayment-config",
                                      {"allocation_strategy": "principal_interest_penalties_fees"},
                                      format="json").status_code == 200
    LoanInstallment.objects.filter(loan_id=lid, number=3).update(penalties=D("12.00"))
    r = repay(shop.officer, lid, "1060.59", on="2026-04-01")  # principal and interest: the penalty stays unpaid
    assert r.status_code == 201 and r.json()["closed_loan"] is False, r.content
    assert Loan.objects.get(pk=lid).status == "active"

    r = waive(shop.admin, lid, component="penalties")
    assert r.status_code == 201 and (r.json()["total"], r.json()["closed_loan"]) == ("12.00", True)
    loan = Loan.objects.get(pk=lid)
    assert loan.status == "closed" and loan.closed_at is not None and loan.days_past_due == 0
    assert OutboxEvent.objects.filter(event_type="loan.closed", payload__loan_ref=loan.reference).count() == 1
    assert AuditEvent.objects.filter(action="loan.close", target_id=str(lid), after__waiver=True).count() == 1
    err(waive(shop.admin, lid, component="penalties"), 409, "illegal_transition")
    # as of yesterday the loan still owed the penalty: active then
    yesterday = (timezone.localdate() - timedelta(days=1)).isoformat()
    assert balance(shop.officer, lid, yesterday)["status"] == "active"
    assert trial_balance(mfi=shop.mfi, as_of=FAR).balanced


def undo(user, wid, reason="keyed on the wrong loan", idem=None):
    return post(user, f"/api/v1/waivers/{wid}/reverse", {"reason": reason}, idem=idem or key())


def test_a_waiver_made_in_error_is_undone_owed_again_from_that_day_and_the_past_still_shows_it(late_loan):
    shop, lid = late_loan
    r = waive(shop.admin, lid, component="penalties", amount="30.00")
    assert r.status_code == 201 and [w["amount"] for w in r.json()["waivers"]] == ["15.00", "15.00"]
    first, second = (w["id"] for w in r.json()["waivers"])
    assert penalties(lid) == {1: D("0.00"), 2: D("10.00"), 3: D("0.00")}
    today = timezone.localdate()
    ChargeWaiver.objects.filter(pk=second).update(waived_on=today - timedelta(days=10))  # made ten days ago

    err(undo(shop.officer, second), 403, "permission_denied")
    err(undo(shop.admin, second, reason="no"), 400, "validation_error")
    err(undo(open_shop("other").admin, second), 404, "not_found")
    err(undo(shop.admin, 999_999_999), 404, "not_found")
    assert penalties(lid) == {1: D("0.00"), 2: D("10.00"), 3: D("0.00")}  # nothing written by the refusals

    k = key()
    r = undo(shop.admin, second, idem=k)
    assert r.status_code == 200, r.content
    assert undo(shop.admin, second, idem=k).json() == r.json()  # a replay
    body = assert_documented(r, "post", "/api/v1/waivers/{waiver_id}/reverse")
    assert (body["undone_on"], body["undone_by"], body["undo_reason"], body["loan_reopened"]) == (
        today.isoformat(), shop.admin.username, "keyed on the wrong loan", False)
    assert penalties(lid) == {1: D("0.00"), 2: D("25.00"), 3: D("0.00")}  # owed again; the other waiver stands
    err(undo(shop.admin, second), 409, "already_reversed")
    audit = AuditEvent.objects.get(action="loan.charges_waive_undo", target_id=str(second))
    assert audit.before == {"undone": False, "penalties": "10.00"} and audit.after["penalties"] == "25.00"

    # as of a day it was in effect the installment owed 15.00 less; before it was made and from today, all of it
    due2 = lambda day: balance(shop.officer, lid, day.isoformat())["installments"][2]["due"]["penalties"]
    assert (due2(today - timedelta(days=11)), due2(today - timedelta(days=5)), due2(today)) == (
        "25.00", "10.00", "25.00")
    listed = {w["id"]: w for w in client_for(shop.borrower_user).get(f"/api/v1/loans/{lid}/waivers").json()}
    assert listed[second]["undone_at"] is not None and listed[first]["undone_at"] is None
    moves = client_for(shop.officer).get(f"/api/v1/loans/{lid}/transactions").json()
    assert sorted((t["id"], t["reversed"]) for t in moves if t["type"] == "waiver") == [(first, False), (second, True)]
    assert trial_balance(mfi=shop.mfi, as_of=FAR).balanced


def test_undoing_the_waiver_that_closed_the_loan_reopens_it_and_tells_the_network():
    shop = open_shop()
    lid = small_loan(shop)
    LoanInstallment.objects.filter(loan_id=lid, number=3).update(penalties=D("12.00"))
    product = Loan.objects.get(pk=lid).product_id
    assert client_for(shop.admin).put(f"/api/v1/products/{product}/repayment-config",
                                      {"allocation_strategy": "principal_interest_penalties_fees"},
                                      format="json").status_code == 200
    assert repay(shop.officer, lid, "1060.59", on="2026-04-01").json()["closed_loan"] is False
    wid = waive(shop.admin, lid, component="penalties").json()["waivers"][0]["id"]
    assert Loan.objects.get(pk=lid).status == "closed"

    r = undo(shop.admin, wid)
    assert r.status_code == 200 and r.json()["loan_reopened"] is True, r.content
    loan = Loan.objects.get(pk=lid)
    assert (loan.status, loan.closed_at) == ("active", None)
    reopened = OutboxEvent.objects.get(event_type="loan.reopened", payload__loan_ref=loan.reference)
    assert reopened.payload["outstanding_principal"] == "0.00"
    assert AuditEvent.objects.filter(action="loan.reopen", target_id=str(lid), after__undone_waiver=wid).count() == 1
    assert balance(shop.officer, lid, timezone.localdate().isoformat())["installments"][3]["outstanding"][
        "penalties"] == "12.00"
    # the borrower pays the penalty: closed again, as any final repayment closes it
    r = repay(shop.officer, lid, "12.00", on=timezone.localdate().isoformat())
    assert r.status_code == 201 and r.json()["closed_loan"] is True, r.content
    assert trial_balance(mfi=shop.mfi, as_of=FAR).balanced


def test_a_waiver_is_not_undone_while_the_loan_holds_an_overpayment():
    shop = open_shop()
    lid = small_loan(shop)
    LoanInstallment.objects.filter(loan_id=lid, number=3).update(penalties=D("12.00"))
    wid = waive(shop.admin, lid, component="penalties").json()["waivers"][0]["id"]
    r = repay(shop.officer, lid, "1065.59", on="2026-04-01")  # everything owed (1060.59) and 5.00 more
    assert r.status_code == 201 and r.json()["closed_loan"] is True, r.content
    refused = err(undo(shop.admin, wid), 409, "overpayment_held")
    assert refused["details"] == {"waiver": wid, "held": "5.00"}
    assert ChargeWaiver.objects.get(pk=wid).undone_at is None and Loan.objects.get(pk=lid).status == "closed"
    assert penalties(lid)[3] == D("0.00")
