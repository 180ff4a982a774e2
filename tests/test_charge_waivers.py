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
from node.repayments.models import ChargeWaiver, Repayment
from replication.models import OutboxEvent
from tests.loan_fixtures import client_for, err, key, open_shop, post
from tests.openapi_helpers import assert_documented
from tests.test_repayment_payoff_refund import payoff, refund
from tests.test_repayments import FAR, balance, paid, repay, small_loan

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


def test_undoing_a_waiver_reprocesses_the_repayments_made_since_so_they_pay_what_is_owed_again_first(late_loan):
    """Fineract's "undo waive" reprocesses: a repayment posted after the waiver is allocated again as if the waiver
    had never been made — installment 1's penalty (15.00, owed again) before its interest and principal — under a
    new receipt; the original is reversed; the books stay balanced."""
    shop, lid = late_loan
    wid = waive(shop.admin, lid, component="penalties", installment=1).json()["waivers"][0]["id"]
    first = repay(shop.officer, lid, "400.00", on="2026-02-10").json()
    # with the waiver: 30.00 interest + 323.53 principal of #1, then #2's 25.00 penalty, 20.29 interest, 1.18 principal
    assert first["allocation"]["penalties"] == "25.00" and first["allocation"]["principal"] == "324.71"
    owed_before = D(balance(shop.officer, lid, timezone.localdate().isoformat())["outstanding"]["total"])

    r = undo(shop.admin, wid)
    assert r.status_code == 200, r.content
    body = assert_documented(r, "post", "/api/v1/waivers/{waiver_id}/reverse")
    (replay,) = body["replays"]
    assert (replay["amount"], replay["payment_date"], replay["channel"]) == ("400.00", "2026-02-10", "cash")
    assert replay["receipt_number"] != first["receipt_number"]
    # now: #1's 15.00 penalty, 30.00 interest, 323.53 principal, then #2's 25.00 penalty and 6.47 of its interest
    assert (replay["allocation"]["penalties"], replay["allocation"]["interest"], replay["allocation"]["principal"]) == (
        "40.00", "36.47", "323.53")
    assert body["loan_reopened"] is False
    old = Repayment.objects.get(pk=first["id"])
    assert old.reversed_at is not None and old.reversal_reason == f"Replayed as {replay['receipt_number']} after undoing waiver {wid}"
    assert Repayment.objects.get(pk=replay["id"]).replay_of_id == old.pk
    # the loan owes the 15.00 again: same money paid, 15.00 more owed
    owed_after = D(balance(shop.officer, lid, timezone.localdate().isoformat())["outstanding"]["total"])
    assert owed_after == owed_before + D("15.00")
    assert paid(lid)[1] == (D("323.53"), D("30.00"), D("0.00"), D("15.00"))
    assert trial_balance(mfi=shop.mfi, as_of=FAR).balanced
    audit = AuditEvent.objects.get(action="loan.charges_waive_undo", target_id=str(wid))
    assert audit.after["replayed"] == [{"repayment": old.pk, "receipt_number": old.receipt_number,
                                        "replayed_as": replay["id"], "new_receipt_number": replay["receipt_number"]}]
    assert AuditEvent.objects.filter(action="repayment.reverse", target_id=str(old.pk)).count() == 1


def test_an_overpayment_made_since_the_waiver_pays_the_amount_owed_again_and_the_loan_reopens():
    shop = open_shop()
    lid = small_loan(shop)
    LoanInstallment.objects.filter(loan_id=lid, number=3).update(penalties=D("12.00"))
    wid = waive(shop.admin, lid, component="penalties").json()["waivers"][0]["id"]
    r = repay(shop.officer, lid, "1065.59", on="2026-04-01")  # everything owed (1060.59) and 5.00 more
    assert r.status_code == 201 and r.json()["closed_loan"] is True, r.content
    assert r.json()["overpayment"] == "5.00"
    # 3.00 of the overpayment is refunded: the replay would hold 5.00 less than before, 3.00 of it already paid out
    refund_id = refund(shop.admin, lid, "3.00", on="2026-04-02").json()["id"]
    refused = err(undo(shop.admin, wid), 409, "overpayment_refunded")
    assert refused["details"]["waiver"] == wid
    assert ChargeWaiver.objects.get(pk=wid).undone_at is None and Loan.objects.get(pk=lid).status == "closed"
    assert penalties(lid)[3] == D("0.00") and not Repayment.objects.filter(loan_id=lid, reversed_at__isnull=False)
    assert post(shop.admin, f"/api/v1/overpayment-refunds/{refund_id}/reverse", {"reason": "the transfer bounced"},
                idem=key()).status_code == 200

    r = undo(shop.admin, wid)
    assert r.status_code == 200, r.content
    (replay,) = r.json()["replays"]
    # the 5.00 that was overpaid pays the penalty now; 7.00 of it is still owed, so the loan is open again
    assert replay["overpayment"] == "0.00" and r.json()["loan_reopened"] is True
    loan = Loan.objects.get(pk=lid)
    assert (loan.status, loan.closed_at) == ("active", None)
    owed = balance(shop.officer, lid, timezone.localdate().isoformat())
    assert owed["outstanding"]["total"] == "7.00" and owed["overpayment_held"] == "0.00"
    assert OutboxEvent.objects.filter(event_type="loan.reopened", payload__loan_ref=loan.reference).count() == 1
    assert trial_balance(mfi=shop.mfi, as_of=FAR).balanced


def test_a_payoff_made_since_the_waiver_is_not_reprocessed():
    from node.repayments.models import PayoffWaiver
    from tests.loan_fixtures import disbursed

    shop = open_shop()
    today = timezone.localdate()
    lid = disbursed(shop, on=(today - timedelta(days=3)).isoformat())  # nothing due yet: a payoff waives interest
    LoanInstallment.objects.filter(loan_id=lid, number=1).update(penalties=D("15.00"))
    wid = waive(shop.admin, lid, component="penalties").json()["waivers"][0]["id"]
    # a payoff dated before the waiver: the schedule as it stands is not what was owed then (it used to be a 500)
    yesterday = (today - timedelta(days=1)).isoformat()
    as_of_yesterday = balance(shop.officer, lid, yesterday)
    quote = as_of_yesterday["payoff_amount"]
    assert as_of_yesterday["payoff"]["available"] is False
    assert as_of_yesterday["payoff"]["earliest_date"] == today.isoformat()
    e = err(payoff(shop.officer, lid, quote, on=yesterday), 400, "validation_error")
    assert e["details"]["fields"]["payoff_date"] == [f"on or after {today}"]
    done = payoff(shop.officer, lid, balance(shop.officer, lid, today.isoformat())["payoff_amount"],
                  on=today.isoformat()).json()
    assert Loan.objects.get(pk=lid).status == "closed" and PayoffWaiver.objects.filter(repayment_id=done["id"])
    body = err(undo(shop.admin, wid), 409, "reprocess_not_possible")
    assert body["details"] == {"waiver": wid, "payoff_repayment": done["id"],
                               "payoff_receipt_number": done["receipt_number"]}
    assert ChargeWaiver.objects.get(pk=wid).undone_at is None and penalties(lid)[1] == D("0.00")
