"""Close of business on the real PostgreSQL: days past due, buckets, penalties once, closures, credit events through
the outbox, resumable and safe to re-run; the business date moves on."""

from __future__ import annotations

import threading
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from node.cob.models import CobRun
from node.cob.services import COB_LOCK, business_date_get, closed_through, cob_close
from node.core.errors import ApplicationError
from node.loans.models import Loan, LoanInstallment, LoanProduct
from replication.models import OutboxEvent
from tests.loan_fixtures import client_for, open_shop
from tests.loan_fixtures import disbursed as shared_disbursed

pytestmark = pytest.mark.django_db


def disbursed(shop, *, principal="6000.00", on="2026-06-01", n=6) -> Loan:
    return Loan.objects.get(pk=shared_disbursed(shop, principal=principal, n=n, on=on, expected=on))


def with_penalty(shop, spec: dict) -> None:
    LoanProduct.objects.filter(pk=shop.product_id).update(overdue_penalty=spec)


def inst(loan: Loan, number: int) -> LoanInstallment:
    return LoanInstallment.objects.get(loan=loan, number=number)


def events(loan: Loan, event_type: str) -> list[OutboxEvent]:
    return [e for e in OutboxEvent.objects.filter(event_type=event_type).order_by("seq")
            if e.payload.get("loan_ref") == loan.reference]


def test_days_past_due_bucket_penalty_and_event(network_policy):
    shop = open_shop(threshold="100000")
    with_penalty(shop, {"calculation": "FLAT", "amount": "50.00", "grace_days": 5})
    loan = disbursed(shop)  # installments due 07-01, 08-01, 09-01, ...
    assert business_date_get() == timezone.localdate() and closed_through() is None

    r = cob_close(through=date(2026, 8, 15))
    assert r.completed and not r.already_closed and r.loans == 1
    loan.refresh_from_db()
    # the oldest unpaid installment fell due on 07-01: 45 days late on 08-15
    assert (loan.days_past_due, loan.delinquency_bucket, loan.overdue_since) == (45, "31-60", date(2026, 7, 1))
    assert [inst(loan, i).penalties for i in (1, 2, 3)] == [Decimal("50.00"), Decimal("50.00"), Decimal("0.00")]
    assert inst(loan, 1).penalty_applied_on == date(2026, 8, 15)
    (ev,) = events(loan, "loan.dpd_changed")
    assert ev.payload["days_past_due"] == 45 and ev.payload["outstanding_principal"] == "6000.00"
    assert ev.partition_key == shop.borrower.borrower_key
    assert r.summary["penalties_applied"] == 2 and r.summary["penalties_total"] == "100.00"
    assert r.summary["bucket_moves"] == {"current->31-60": 1} and r.summary["in_arrears"] == 1
    assert business_date_get() == date(2026, 8, 16) and closed_through() == date(2026, 8, 15)

    # the same day again: nothing changes, nothing is emitted twice
    again = cob_close(through=date(2026, 8, 15))
    assert again.already_closed
    assert [inst(loan, i).penalties for i in (1, 2)] == [Decimal("50.00"), Decimal("50.00")]
    assert len(events(loan, "loan.dpd_changed")) == 1

    # three weeks on: 66 days late (61-90); installment 3 (due 09-01) is 4 days late, inside the 5 grace days
    cob_close(through=date(2026, 9, 5))
    loan.refresh_from_db()
    assert (loan.days_past_due, loan.delinquency_bucket) == (66, "61-90")
    assert inst(loan, 3).penalties == Decimal("0.00")
    assert [e.payload["days_past_due"] for e in events(loan, "loan.dpd_changed")] == [45, 66]
    # one more day is still 61-90: days past due move, the bucket does not, so no new credit event
    cob_close(through=date(2026, 9, 6))
    loan.refresh_from_db()
    assert loan.days_past_due == 67 and len(events(loan, "loan.dpd_changed")) == 2
    assert inst(loan, 3).penalties == Decimal("0.00")  # 5 days late: not more than the grace
    cob_close(through=date(2026, 9, 7))
    assert inst(loan, 3).penalties == Decimal("50.00")


@pytest.mark.parametrize("day, dpd, below, bucket", [
    (date(2026, 7, 31), 30, "1-30", "1-30"), (date(2026, 8, 1), 31, "1-30", "31-60"),
    (date(2026, 9, 29), 90, "61-90", "61-90"), (date(2026, 9, 30), 91, "61-90", "90+"),
])
def test_bucket_boundaries_on_days_30_31_90_91(network_policy, day, dpd, below, bucket):
    """The oldest unpaid installment fell due on 07-01. Closed through the day before the boundary day, then the
    boundary day itself: the bucket moves exactly on day 31 and day 91, and each move is one credit event."""
    shop = open_shop(threshold="100000")
    loan = disbursed(shop)
    cob_close(through=day - timedelta(days=1))
    loan.refresh_from_db()
    assert (loan.days_past_due, loan.delinquency_bucket) == (dpd - 1, below)
    before = len(events(loan, "loan.dpd_changed"))
    r = cob_close(through=day)
    assert r.completed and r.loans == 1 and not r.already_closed
    loan.refresh_from_db()
    assert (loan.days_past_due, loan.delinquency_bucket, loan.overdue_since) == (dpd, bucket, date(2026, 7, 1))
    moved = events(loan, "loan.dpd_changed")[before:]
    if bucket == below:
        assert moved == [] and r.summary["bucket_moves"] == {}
    else:
        assert [e.payload["days_past_due"] for e in moved] == [dpd]
        assert r.summary["bucket_moves"] == {f"{below}->{bucket}": 1}


def test_percent_penalty_is_on_the_overdue_principal_and_interest(network_policy):
    shop = open_shop(threshold="100000")
    with_penalty(shop, {"calculation": "PERCENT_OF_OVERDUE", "amount": "2.5", "grace_days": 0})
    loan = disbursed(shop)
    first = inst(loan, 1)
    LoanInstallment.objects.filter(pk=first.pk).update(interest_paid=first.interest)  # interest paid, principal not
    cob_close(through=date(2026, 7, 2))
    expected = (first.principal * Decimal("0.025")).quantize(Decimal("0.01"))
    assert inst(loan, 1).penalties == expected
    loan.refresh_from_db()
    assert (loan.days_past_due, loan.delinquency_bucket) == (1, "1-30")


def test_an_installment_due_today_is_not_late_and_paid_ones_do_not_count(network_policy):
    shop = open_shop(threshold="100000")
    loan = disbursed(shop)
    cob_close(through=date(2026, 7, 1))
    loan.refresh_from_db()
    assert (loan.days_past_due, loan.delinquency_bucket, loan.overdue_since) == (0, "current", None)
    one = inst(loan, 1)
    LoanInstallment.objects.filter(pk=one.pk).update(principal_paid=one.principal, interest_paid=one.interest)
    cob_close(through=date(2026, 8, 10))
    loan.refresh_from_db()
    assert (loan.days_past_due, loan.overdue_since) == (9, date(2026, 8, 1))


def test_a_loan_with_nothing_left_to_pay_is_closed_and_its_hold_released(network_policy):
    shop = open_shop(threshold="100000")
    loan = disbursed(shop)
    for i in LoanInstallment.objects.filter(loan=loan):
        LoanInstallment.objects.filter(pk=i.pk).update(principal_paid=i.principal, interest_paid=i.interest,
                                                       fees_paid=i.fees, penalties_paid=i.penalties)
    r = cob_close(through=date(2026, 7, 15))
    loan.refresh_from_db()
    assert loan.status == "closed" and loan.closed_at is not None and r.summary["closed"] == 1
    (ev,) = events(loan, "loan.closed")
    assert ev.payload["outstanding_principal"] == "0.00"
    release = OutboxEvent.objects.filter(event_type="holds.set", partition_key=shop.borrower.borrower_key).last()
    assert release.payload["drop"] == [f"maseru/{loan.reference}"]


def test_an_interrupted_run_resumes_and_processes_each_loan_once(network_policy):
    network_policy(max_active_loans=10)
    shop = open_shop(threshold="100000")
    with_penalty(shop, {"calculation": "FLAT", "amount": "10.00", "grace_days": 0})
    loans = [disbursed(shop, principal="1000.00") for _ in range(5)]
    first = cob_close(through=date(2026, 7, 20), chunk_size=2, max_chunks=1)
    assert not first.completed and first.loans == 2
    run = CobRun.objects.get(business_date=date(2026, 7, 20))
    assert run.status == "running" and run.cursor == loans[1].pk
    assert closed_through() is None  # the business date moves only when the run completes
    # the next call (even for a later date) finishes the interrupted day first
    second = cob_close(through=date(2026, 7, 25))
    assert second.completed and second.business_date == date(2026, 7, 20) and second.loans == 5
    assert all(inst(x, 1).penalties == Decimal("10.00") for x in loans)
    assert second.summary["penalties_applied"] == 5 and second.summary["bucket_moves"] == {"current->1-30": 5}
    assert closed_through() == date(2026, 7, 20)


def test_future_dates_and_concurrent_runs_are_refused(test_cluster):
    with pytest.raises(ApplicationError) as exc:
        cob_close(through=date(2099, 1, 1))
    assert exc.value.code == "cob_future_date"
    held, release = threading.Event(), threading.Event()

    def hold_lock():
        from django.db import connections

        conn = connections.create_connection("default")
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", [COB_LOCK])
            held.set()
            release.wait(30)
            cur.execute("SELECT pg_advisory_unlock(%s)", [COB_LOCK])
        conn.close()

    t = threading.Thread(target=hold_lock)
    t.start()
    try:
        assert held.wait(10)
        with pytest.raises(ApplicationError) as exc:
            cob_close(through=date(2026, 7, 1))
        assert exc.value.code == "cob_running"
    finally:
        release.set()
        t.join(30)
    connection.close()


def test_product_overdue_penalty_is_validated(test_cluster):
    shop = open_shop()
    from tests.loan_fixtures import PRODUCT

    bad = {**PRODUCT, "code": "bad-penalty", "overdue_penalty": {"calculation": "DAILY", "amount": "5", "grace_days": -1}}
    r = client_for(shop.admin).post("/api/v1/products/", bad, format="json")
    assert r.status_code == 400 and r.json()["code"] == "validation_error", r.content
    assert set(r.json()["details"]["fields"]) == {"overdue_penalty.calculation", "overdue_penalty.grace_days"}
    good = {**PRODUCT, "code": "good-penalty", "overdue_penalty": {"calculation": "FLAT", "amount": "25", "grace_days": 3}}
    r = client_for(shop.admin).post("/api/v1/products/", good, format="json")
    assert r.status_code == 201, r.content
    assert LoanProduct.objects.get(pk=r.json()["id"]).overdue_penalty == {"calculation": "FLAT", "amount": "25",
                                                                         "grace_days": 3}


def test_the_command_prints_progress_and_a_summary(network_policy, capsys):
    shop = open_shop(threshold="100000")
    disbursed(shop)
    call_command("close_business_day", "--date", "2026-07-10")
    out, err = capsys.readouterr()
    assert "business day 2026-07-10 closed" in out and "bucket moves {'current->1-30': 1}" in out
    assert "1/1 loans" in err
    call_command("close_business_day", "--date", "2026-07-10")
    assert "already closed" in capsys.readouterr().out
