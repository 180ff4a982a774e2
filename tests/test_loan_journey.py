"""Issue #5's whole journey for one loan on the real node database: a cash repayment, a reminder before the due
date, close of business making it late and moving it through the delinquency buckets (with an overdue penalty and
an overdue notice), then the employer's payroll file paying it off; the journal still balances and the credit
history got every change through the outbox."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from node.cob.services import cob_close
from node.ledger.selectors import trial_balance
from node.loans.models import Loan, LoanInstallment, LoanProduct
from node.notifications.models import Notification
from node.notifications.services import reminders_create
from node.repayments.models import Repayment
from replication.models import OutboxEvent
from tests.loan_fixtures import client_for
from tests.test_payroll import disbursed_loan, employer, enrol, open_shop, repay, result_csv, upload

pytestmark = pytest.mark.django_db


def owed(loan: Loan) -> D:
    return sum(((i.principal + i.interest + i.fees + i.penalties
                 - i.principal_paid - i.interest_paid - i.fees_paid - i.penalties_paid)
                for i in LoanInstallment.objects.filter(loan_id=loan.pk, number__gte=1)), D("0.00"))


def events(loan: Loan) -> list[OutboxEvent]:
    return [e for e in OutboxEvent.objects.order_by("seq") if e.payload.get("loan_ref") == loan.reference]


def kinds(loan: Loan) -> list[str]:
    return list(Notification.objects.filter(loan_id=loan.pk).order_by("id").values_list("kind", flat=True))


def test_a_loan_is_repaid_reminded_late_moves_buckets_and_is_paid_off_by_payroll(network_policy):
    shop = open_shop("journey", threshold="100000")
    LoanProduct.objects.filter(pk=shop.product_id).update(
        overdue_penalty={"calculation": "FLAT", "amount": "25.00", "grace_days": 0})
    gov = employer(shop, "gov-ls", "Government of Lesotho")
    loan = disbursed_loan(shop, shop.borrower_user)  # 1,000.00 over 3 months from 2026-05-15: due 06-15, 07-15, 08-15
    enrol(shop, gov, shop.borrower, "GOV-777")
    start = owed(loan)
    assert start > D("1000.00")

    # three days before the first due date the borrower is reminded; a cash repayment of part of it follows
    assert reminders_create(day=date(2026, 6, 12), days_before=3).upcoming_created >= 1
    assert kinds(loan)[-1] == "installment_due"
    repay(shop, loan, "100.00", "2026-06-10")
    assert owed(loan) == start - D("100.00")

    # close of business: the rest of installment 1 is late from 06-15
    cob_close(through=date(2026, 6, 20))
    loan.refresh_from_db()
    assert (loan.days_past_due, loan.delinquency_bucket, loan.overdue_since) == (5, "1-30", date(2026, 6, 15))
    assert reminders_create(day=date(2026, 6, 16), days_before=3).overdue_created >= 1
    assert "installment_overdue" in kinds(loan)
    # a skipped stretch of days is caught up: 35 days late on 07-20 -> 31-60; installment 2 (07-15) is late too
    cob_close(through=date(2026, 7, 20))
    loan.refresh_from_db()
    assert (loan.days_past_due, loan.delinquency_bucket) == (35, "31-60")
    penalties = [i.penalties for i in LoanInstallment.objects.filter(loan_id=loan.pk, number__gte=1).order_by("number")]
    assert penalties == [D("25.00"), D("25.00"), D("0.00")]  # once per overdue installment, never twice
    assert [e.payload["days_past_due"] for e in events(loan) if e.event_type == "loan.dpd_changed"] == [5, 35]

    # the employer's July payroll file deducts everything still owed: the loan is paid off and closes
    payoff = owed(loan)
    assert payoff == start - D("100.00") + D("50.00")
    export = client_for(shop.admin).get(f"/api/v1/payroll/employers/{gov}/deductions?month=2026-07&format=csv")
    assert export.status_code == 200 and loan.reference in export.content.decode()
    r = upload(shop.admin, gov, result_csv(f"GOV-777,{loan.reference},{payoff},deducted,"), name="gov-july.csv")
    assert r.status_code == 201, r.content
    assert r.json()["summary"]["posted"] == 1 and r.json()["summary"]["total_posted"] == str(payoff)
    loan.refresh_from_db()
    assert loan.status == "closed" and owed(loan) == D("0.00")
    assert (loan.days_past_due, loan.delinquency_bucket) == (0, "current")
    (payroll,) = Repayment.objects.filter(loan_id=loan.pk, channel="payroll")
    assert payroll.amount == payoff and payroll.payment_date == date(2026, 7, 31)
    assert {e.event_type for e in events(loan)} >= {"loan.disbursed", "loan.repaid", "loan.dpd_changed", "loan.closed"}

    # every shilling is accounted for: the MFI's books balance after all of it
    assert trial_balance(mfi=shop.mfi, as_of=date(2099, 12, 31)).balanced
