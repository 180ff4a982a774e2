"""Payoff as a transaction (foreclosure, waiving unearned interest) and overpayment refunds, through the API on the
real PostgreSQL (docs/repayments.md).

The loan of tests/test_repayments.py: 1000.00 at 36 %, 3 months, disbursed 2026-01-01:

    #  due         principal  interest
    1  2026-02-01     323.53     30.00
    2  2026-03-01     333.24     20.29
    3  2026-04-01     343.23     10.30      total due 1060.59

Payoff on 2026-02-15 with nothing paid: 1000.00 principal + 30.00 (installment 1, fallen due) + 20.29 x 14 / 28 =
10.145 -> 10.15 (installment 2's period, pro-rated) = 1040.15; waived: 20.29 - 10.15 = 10.14 on installment 2 and
10.30 on installment 3.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from node.audit.models import AuditEvent
from node.audit.selectors import audit_verify_chain
from node.ledger.selectors import trial_balance
from node.loans.models import Loan, LoanInstallment
from node.repayments.models import OverpaymentRefund, PayoffWaiver, Repayment
from tests.loan_fixtures import client_for, err, key, open_shop, post
from tests.test_repayments import FAR, balance, lines, paid, repay, small_loan

pytestmark = pytest.mark.django_db

D = Decimal


def payoff(user, lid, amount, on="2026-02-15", channel="cash", idem=None):
    return post(user, f"/api/v1/loans/{lid}/payoff", {"amount": amount, "payoff_date": on, "channel": channel},
                idem=idem or key())


def refund(user, lid, amount, on="2026-03-20", channel="cash", idem=None):
    return post(user, f"/api/v1/loans/{lid}/overpayment-refunds",
                {"amount": amount, "refund_date": on, "channel": channel}, idem=idem or key())


def interest_due(lid) -> dict[int, Decimal]:
    return dict(LoanInstallment.objects.filter(loan_id=lid, number__gte=1).values_list("number", "interest"))


# --- payoff ---------------------------------------------------------------------------------------------------------
def test_payoff_pays_the_quote_waives_unearned_interest_closes_and_a_reversal_restores_it():
    shop = open_shop()
    lid = small_loan(shop)
    assert balance(shop.officer, lid, "2026-02-15")["payoff_amount"] == "1040.15"

    wrong = err(payoff(shop.officer, lid, "1060.59"), 409, "payoff_amount_mismatch")
    assert wrong["details"]["payoff_amount"] == "1040.15"
    assert not Repayment.objects.filter(loan_id=lid).exists() and interest_due(lid)[3] == D("10.30")
    err(payoff(shop.analyst, lid, "1040.15"), 403, "permission_denied")

    r = payoff(shop.officer, lid, "1040.15")
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["closed_loan"] is True and body["overpayment"] == "0.00"
    assert body["allocation"] == {"principal": "1000.00", "interest": "40.15", "fees": "0.00", "penalties": "0.00",
                                  "total": "1040.15"}
    assert body["waived"] == [{"number": 2, "interest": "10.14", "fees": "0.00", "penalties": "0.00"},
                              {"number": 3, "interest": "10.30", "fees": "0.00", "penalties": "0.00"}]
    assert interest_due(lid) == {1: D("30.00"), 2: D("10.15"), 3: D("0.00")}
    assert Loan.objects.get(pk=lid).status == "closed"
    assert lines(f"repayment:{body['id']}") == [  # cash-based: only what was received is income
        ("1000", D("1040.15"), D("0.00")), ("1100", D("0.00"), D("1000.00")), ("4000", D("0.00"), D("40.15"))]
    audit = AuditEvent.objects.get(action="loan.payoff", target_id=str(lid))
    assert audit.after["amount"] == "1040.15" and [w["installment"] for w in audit.after["waived"]] == [2, 3]
    assert PayoffWaiver.objects.filter(repayment_id=body["id"]).count() == 2
    err(payoff(shop.officer, lid, "1.00"), 409, "illegal_transition")  # closed

    # reversing the payoff's repayment restores what was waived: the same quote again
    rev = post(shop.admin, f"/api/v1/repayments/{body['id']}/reverse", {"reason": "cheque bounced"}, idem=key())
    assert rev.status_code == 200, rev.content
    assert interest_due(lid) == {1: D("30.00"), 2: D("20.29"), 3: D("10.30")}
    assert paid(lid)[2] == paid(lid)[3] == (D("0.00"),) * 4
    assert Loan.objects.get(pk=lid).status == "active"
    assert balance(shop.officer, lid, "2026-02-15")["payoff_amount"] == "1040.15"
    assert trial_balance(mfi=shop.mfi, as_of=FAR).balanced
    assert audit_verify_chain().ok


def test_payoff_after_a_partial_payment_and_its_date_rules():
    shop = open_shop()
    lid = small_loan(shop)
    assert repay(shop.officer, lid, "100.00", on="2026-02-20").status_code == 201  # interest 30.00, principal 70.00
    # a payoff may not be dated before a repayment in effect
    bad = err(payoff(shop.officer, lid, "940.15", on="2026-02-15"), 400, "validation_error")
    assert bad["details"]["fields"]["payoff_date"] == ["on or after 2026-02-20"]
    # and the balance as of that day says so, with the first day a payoff can be dated
    before = balance(shop.officer, lid, "2026-02-15")["payoff"]
    assert (before["available"], before["earliest_date"]) == (False, "2026-02-20")
    err(payoff(shop.officer, lid, "1.00", on="2099-01-01"), 400, "validation_error")  # future
    # on 2026-02-20: principal 930.00 + installment 2's interest for 19 of 28 days (20.29 x 19 / 28 = 13.77)
    on_the_day = balance(shop.officer, lid, "2026-02-20")
    quote = on_the_day["payoff_amount"]
    assert quote == "943.77" and on_the_day["payoff"]["available"] is True
    r = payoff(shop.officer, lid, quote, on="2026-02-20")
    assert r.status_code == 201, r.content
    assert r.json()["closed_loan"] is True and r.json()["waived"][0] == {
        "number": 2, "interest": "6.52", "fees": "0.00", "penalties": "0.00"}
    assert balance(shop.officer, lid, "2026-02-20")["payoff"]["available"] is False  # closed: nothing to pay off
    assert trial_balance(mfi=shop.mfi, as_of=FAR).balanced


# --- overpayment refund ------------------------------------------------------------------------------------------
def test_overpayment_refund_pays_back_what_is_held_and_never_more():
    shop = open_shop()
    lid = small_loan(shop)
    r = repay(shop.officer, lid, "1100.00", on="2026-03-15")  # closes the loan, 39.41 held
    assert r.status_code == 201 and r.json()["overpayment"] == "39.41", r.content
    rep_id = r.json()["id"]

    err(refund(shop.officer, lid, "10.00"), 403, "permission_denied")
    err(refund(shop.admin, lid, "10.00", channel="payroll"), 400, "validation_error")
    assert "refund_date" in err(refund(shop.admin, lid, "10.00", on="2099-01-01"), 400,
                                "validation_error")["details"]["fields"]
    over = err(refund(shop.admin, lid, "50.00"), 409, "refund_exceeds_overpayment")
    assert over["details"] == {"held": "39.41", "amount": "50.00"}
    assert not OverpaymentRefund.objects.exists()

    k = key()
    first = refund(shop.admin, lid, "20.00", idem=k)
    assert first.status_code == 201, first.content
    again = refund(shop.admin, lid, "20.00", idem=k)  # a replay refunds nothing more
    assert again.json() == first.json() and OverpaymentRefund.objects.count() == 1
    body = first.json()
    assert (body["amount"], body["refund_date"], body["channel"]) == ("20.00", "2026-03-20", "cash")
    assert lines(f"overpayment_refund:{body['id']}") == [("1000", D("0.00"), D("20.00")),
                                                         ("2100", D("20.00"), D("0.00"))]
    assert trial_balance(mfi=shop.mfi, as_of=FAR).row("2100").balance == D("19.41")
    assert balance(shop.officer, lid, "2026-03-20")["overpayment_held"] == "19.41"
    assert balance(shop.officer, lid, "2026-03-16")["overpayment_held"] == "39.41"  # before the refund's date
    listed = client_for(shop.borrower_user).get(f"/api/v1/loans/{lid}/overpayment-refunds")
    assert listed.status_code == 200 and [x["id"] for x in listed.json()] == [body["id"]]
    assert AuditEvent.objects.get(action="repayment.overpayment_refund", target_id=str(body["id"])).after["held"] == \
        "19.41"

    # the overpaying repayment can no longer be reversed: part of its overpayment was paid out
    err(post(shop.admin, f"/api/v1/repayments/{rep_id}/reverse", {"reason": "wrong loan"}, idem=key()),
        409, "overpayment_refunded")
    assert refund(shop.admin, lid, "19.41").status_code == 201
    err(refund(shop.admin, lid, "0.01"), 409, "refund_exceeds_overpayment")
    assert trial_balance(mfi=shop.mfi, as_of=FAR).row("2100").balance == D("0.00")
    assert trial_balance(mfi=shop.mfi, as_of=FAR).balanced


def reverse_refund(user, refund_id, reason="mobile money transfer bounced", idem=None):
    return post(user, f"/api/v1/overpayment-refunds/{refund_id}/reverse", {"reason": reason}, idem=idem or key())


def test_a_reversed_refund_is_held_again_and_unblocks_the_reversal_of_the_overpaying_repayment():
    shop = open_shop()
    lid = small_loan(shop)
    r = repay(shop.officer, lid, "1100.00", on="2026-03-15")  # closes the loan, 39.41 held
    rep_id = r.json()["id"]
    refund_id = refund(shop.admin, lid, "39.41").json()["id"]
    cash_before = trial_balance(mfi=shop.mfi, as_of=FAR).row("1000").balance

    err(reverse_refund(shop.officer, refund_id), 403, "permission_denied")
    err(reverse_refund(shop.admin, refund_id, reason="oops"), 400, "validation_error")
    other = open_shop("other")
    assert err(reverse_refund(other.admin, refund_id), 404, "not_found")["message"] == \
        err(reverse_refund(other.admin, 987654321), 404, "not_found")["message"]
    assert OverpaymentRefund.objects.get().reversed_at is None

    k = key()
    first = reverse_refund(shop.admin, refund_id, idem=k)
    assert first.status_code == 200, first.content
    assert reverse_refund(shop.admin, refund_id, idem=k).json() == first.json()  # a replay reverses nothing more
    body = first.json()
    assert body["reversed"] is True and body["reversed_by"] == shop.admin.username
    assert body["reversal_reason"] == "mobile money transfer bounced"
    # the mirror entry: the cash is back, the borrower's money is held again
    assert lines(f"overpayment_refund:{refund_id}:reversal") == [("1000", D("39.41"), D("0.00")),
                                                                 ("2100", D("0.00"), D("39.41"))]
    tb = trial_balance(mfi=shop.mfi, as_of=FAR)
    assert tb.balanced and tb.row("2100").balance == D("39.41") and tb.row("1000").balance == cash_before + D("39.41")
    assert balance(shop.officer, lid, "2026-03-20")["overpayment_held"] == "39.41"
    listed = client_for(shop.officer).get(f"/api/v1/loans/{lid}/overpayment-refunds").json()
    assert [(x["id"], x["reversed"]) for x in listed] == [(refund_id, True)]
    audit = AuditEvent.objects.get(action="repayment.overpayment_refund_reverse", target_id=str(refund_id))
    assert (audit.before["held"], audit.after["held"]) == ("0.00", "39.41")
    assert err(reverse_refund(shop.admin, refund_id), 409, "already_reversed")["details"]["refund"] == refund_id

    # what is held can be refunded again, and the overpaying repayment can now be reversed (the loan re-opens)
    assert refund(shop.admin, lid, "9.41").status_code == 201
    err(post(shop.admin, f"/api/v1/repayments/{rep_id}/reverse", {"reason": "wrong loan"}, idem=key()),
        409, "overpayment_refunded")
    second = OverpaymentRefund.objects.filter(reversed_at__isnull=True).get()
    assert reverse_refund(shop.admin, second.pk).status_code == 200
    back = post(shop.admin, f"/api/v1/repayments/{rep_id}/reverse", {"reason": "wrong loan"}, idem=key())
    assert back.status_code == 200, back.content
    assert Loan.objects.get(pk=lid).status == "active"
    tb = trial_balance(mfi=shop.mfi, as_of=FAR)
    assert tb.balanced and tb.row("2100").balance == D("0.00")
    assert audit_verify_chain().ok


def test_the_balance_as_of_a_day_before_a_payoff_owes_what_the_payoff_waived_later():
    shop = open_shop()
    lid = small_loan(shop)
    assert repay(shop.officer, lid, "100.00", on="2026-02-10").status_code == 201
    before = balance(shop.officer, lid, "2026-02-12")
    quote = balance(shop.officer, lid, "2026-02-15")["payoff_amount"]
    assert payoff(shop.officer, lid, quote).status_code == 201
    assert interest_due(lid)[3] == D("0.00")  # the payoff waived installment 3's interest
    # as of a day before the payoff, the installments are what they were then: nothing waived yet
    after = balance(shop.officer, lid, "2026-02-12")
    # only whether and from when a payoff can be dated has changed: not any more, the loan is closed by one
    assert (before["payoff"].pop("available"), after["payoff"].pop("available")) == (True, False)
    assert (before["payoff"].pop("earliest_date"), after["payoff"].pop("earliest_date")) == ("2026-02-10",
                                                                                             "2026-02-15")
    assert after == before  # still active then, nothing waived yet
    assert before["status"] == "active" and before["closed_at"] is None
    assert before["installments"][3]["due"]["interest"] == "10.30"
    assert before["outstanding"]["total"] == "960.59"
    # as of the payoff's day and after: paid off, the waiver in place
    on_day = balance(shop.officer, lid, "2026-02-15")
    assert on_day["outstanding"]["total"] == "0.00" and on_day["installments"][3]["due"]["interest"] == "0.00"
    assert on_day["status"] == "closed" and on_day["closed_at"] is not None


# --- overpayment transfer -----------------------------------------------------------------------------------------
def transfer(user, lid, to_loan, amount, on="2026-04-02", idem=None):
    return post(user, f"/api/v1/loans/{lid}/overpayment-transfers",
                {"to_loan": to_loan, "amount": amount, "transfer_date": on}, idem=idem or key())


def test_an_overpayment_applied_to_the_borrowers_other_loan_is_a_repayment_paid_from_the_liability():
    from node.notifications.models import Notification
    from node.repayments.models import OverpaymentTransfer
    from tests.loan_fixtures import disbursed
    from tests.test_payroll import new_borrower

    shop = open_shop()
    a = small_loan(shop)
    b = small_loan(shop)  # the same borrower's second loan, nothing paid yet
    src = repay(shop.officer, a, "1100.00", on="2026-04-01").json()  # closes A, 39.41 held
    assert src["overpayment"] == "39.41"

    err(transfer(shop.officer, a, b, "10.00"), 403, "permission_denied")
    assert err(transfer(shop.admin, a, b, "50.00"), 409, "transfer_exceeds_overpayment")["details"] == {
        "held": "39.41", "amount": "50.00"}
    assert "to_loan" in err(transfer(shop.admin, a, a, "10.00"), 400, "validation_error")["details"]["fields"]
    err(transfer(shop.admin, a, 999999, "10.00"), 404, "not_found")
    other = disbursed(shop, borrower_user=new_borrower("Other", "Borrower")[1])
    assert "to_loan" in err(transfer(shop.admin, a, other, "10.00"), 400, "validation_error")["details"]["fields"]
    # "transfer" is not a way money can arrive
    err(repay(shop.officer, b, "10.00", channel="transfer"), 400, "validation_error")
    assert not OverpaymentTransfer.objects.exists()

    notifications = Notification.objects.count()
    k = key()
    r = transfer(shop.admin, a, b, "39.41", idem=k)
    assert r.status_code == 201, r.content
    assert transfer(shop.admin, a, b, "39.41", idem=k).json() == r.json()  # a replay moves nothing more
    body = r.json()
    receipt = body["receipt"]
    assert (body["from_loan"], body["to_loan"], body["amount"], body["reversed"]) == (a, b, "39.41", False)
    assert receipt["loan"] == b and receipt["channel"] == "transfer" and receipt["payment_date"] == "2026-04-02"
    assert receipt["allocation"] == {"principal": "9.41", "interest": "30.00", "fees": "0.00", "penalties": "0.00",
                                     "total": "39.41"}
    assert lines(f"repayment:{receipt['id']}") == [("1100", D("0.00"), D("9.41")), ("2100", D("39.41"), D("0.00")),
                                                   ("4000", D("0.00"), D("30.00"))]
    tb = trial_balance(mfi=shop.mfi, as_of=FAR)
    assert tb.balanced and tb.row("2100").balance == D("0.00")
    assert balance(shop.officer, a, "2026-04-02")["overpayment_held"] == "0.00"
    assert balance(shop.officer, a, "2026-04-01")["overpayment_held"] == "39.41"  # before the transfer's date
    assert Notification.objects.count() == notifications  # no money was received
    assert AuditEvent.objects.get(action="repayment.overpayment_transfer", target_id=str(body["id"])).after[
        "held"] == "0.00"
    err(refund(shop.admin, a, "0.01"), 409, "refund_exceeds_overpayment")
    # the overpaying repayment of A cannot be reversed while its overpayment sits on B
    err(post(shop.admin, f"/api/v1/repayments/{src['id']}/reverse", {"reason": "wrong loan"}, idem=key()),
        409, "overpayment_refunded")

    # reversing the transfer's repayment gives A its overpayment back
    assert post(shop.admin, f"/api/v1/repayments/{receipt['id']}/reverse", {"reason": "borrower wants cash"},
                idem=key()).status_code == 200
    listed = client_for(shop.officer).get(f"/api/v1/loans/{a}/overpayment-transfers").json()
    assert [(x["id"], x["reversed"]) for x in listed] == [(body["id"], True)]
    assert balance(shop.officer, a, "2026-04-02")["overpayment_held"] == "39.41"
    assert refund(shop.admin, a, "39.41").status_code == 201
    tb = trial_balance(mfi=shop.mfi, as_of=FAR)
    assert tb.balanced and tb.row("2100").balance == D("0.00")


def test_a_transfer_replayed_by_reprocessing_still_counts_against_the_source():
    from node.repayments.models import OverpaymentTransfer

    shop = open_shop()
    a = small_loan(shop)
    b = small_loan(shop)
    repay(shop.officer, a, "1100.00", on="2026-04-01")  # 39.41 held on A
    first = repay(shop.officer, b, "100.00", on="2026-02-10").json()
    moved = transfer(shop.admin, a, b, "39.41").json()
    r = post(shop.admin, f"/api/v1/repayments/{first['id']}/reverse",
             {"reason": "the cheque bounced", "reprocess_later": True}, idem=key())
    assert r.status_code == 200, r.content
    (replay,) = r.json()["replays"]
    assert replay["channel"] == "transfer" and replay["replay_of"] == moved["receipt"]["id"]
    assert OverpaymentTransfer.objects.get(pk=moved["id"]).repayment_id == replay["id"]
    assert balance(shop.officer, a, "2026-04-02")["overpayment_held"] == "0.00"
    assert lines(f"repayment:{replay['id']}")[1][0] == "2100"  # still paid from the liability
    tb = trial_balance(mfi=shop.mfi, as_of=FAR)
    assert tb.balanced and tb.row("2100").balance == D("0.00")
