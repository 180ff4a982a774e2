"""Fees and penalties staff add to a loan (Fineract's "specified due date" charge), through the API on the real
PostgreSQL (docs/repayments.md). The loan of tests/test_repayments.py: 1000.00 at 36 %, 3 months, disbursed
2026-01-01; installments due 2026-02-01, 2026-03-01 and 2026-04-01."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from node.audit.models import AuditEvent
from node.ledger.models import JournalEntry
from node.ledger.selectors import trial_balance
from node.loans.models import LoanInstallment
from node.notifications.models import Notification
from node.notifications.texts import render
from node.repayments.models import LoanCharge
from tests.loan_fixtures import client_for, err, key, open_shop, post
from tests.test_repayments import FAR, balance, lines, repay, small_loan

pytestmark = pytest.mark.django_db

D = Decimal


def charge(user, lid, idem=None, **body):
    return post(user, f"/api/v1/loans/{lid}/charges", {"kind": "fees", "name": "field visit", "amount": "25.00",
                                                       **body}, idem=idem or key())


def fees(lid) -> dict[int, Decimal]:
    return dict(LoanInstallment.objects.filter(loan_id=lid, number__gte=1).values_list("number", "fees"))


def test_a_charge_falls_on_the_installment_due_on_or_after_its_date_and_is_paid_like_any_other():
    shop = open_shop()
    lid = small_loan(shop)
    entries = JournalEntry.objects.count()
    err(charge(shop.analyst, lid), 403, "permission_denied")
    err(charge(shop.officer, lid, kind="interest"), 400, "validation_error")
    err(charge(shop.officer, lid, name=" "), 400, "validation_error")
    err(charge(shop.officer, lid, amount="-5"), 400, "validation_error")
    err(charge(shop.officer, lid, amount=2.5), 400, "validation_error")  # a JSON float
    err(charge(shop.officer, lid, due_date="2025-12-31"), 400, "validation_error")  # before the disbursement
    assert not LoanCharge.objects.exists()

    k = key()
    r = charge(shop.officer, lid, due_date="2026-02-15", idem=k)
    assert r.status_code == 201, r.content
    assert charge(shop.officer, lid, due_date="2026-02-15", idem=k).json() == r.json()  # a replay adds nothing
    assert (r.json()["installment"], r.json()["amount"], r.json()["kind"]) == (2, "25.00", "fees")
    assert charge(shop.admin, lid, kind="penalties", name="bounced cheque", amount="40.00",
                  due_date="2026-02-01").json()["installment"] == 1
    assert charge(shop.officer, lid, due_date="2027-01-01").json()["installment"] == 3  # after the schedule: the last
    assert fees(lid) == {1: D("0.00"), 2: D("25.00"), 3: D("25.00")}
    assert LoanInstallment.objects.get(loan_id=lid, number=1).penalties == D("40.00")
    assert JournalEntry.objects.count() == entries  # income only when paid
    assert AuditEvent.objects.filter(action="loan.charge_add", target_id=str(lid)).count() == 3
    # the borrower is told of each, once (the replay above recorded nothing more)
    told = Notification.objects.filter(kind="charge_added", loan_id=lid).order_by("id")
    assert [n.context["installment"] for n in told] == [2, 1, 3]
    subject, body = render("charge_added", "en", "email", told[0].context, first_name="Mpho")
    assert "25.00 (field visit)" in subject + body and "2026-03-01" in body

    # paid by the allocation order: installment 1's penalty first, then its interest and principal; then #2's fee
    rep = repay(shop.officer, lid, "400.00", on="2026-02-10").json()
    assert rep["allocation"] == {"principal": "323.53", "interest": "30.00", "fees": "6.47", "penalties": "40.00",
                                 "total": "400.00"}
    assert lines(f"repayment:{rep['id']}") == [("1000", D("400.00"), D("0.00")), ("1100", D("0.00"), D("323.53")),
                                                ("4000", D("0.00"), D("30.00")), ("4100", D("0.00"), D("6.47")),
                                                ("4200", D("0.00"), D("40.00"))]  # income when paid
    assert trial_balance(mfi=shop.mfi, as_of=FAR).balanced

    # the balance as of a day before the charges were added does not owe them
    yesterday = (timezone.localdate() - timedelta(days=1)).isoformat()
    then = balance(shop.officer, lid, yesterday)["installments"]
    assert [r["due"]["fees"] for r in then[1:]] == ["0.00", "0.00", "0.00"]
    assert [r["due"]["fees"] for r in balance(shop.officer, lid, timezone.localdate().isoformat())["installments"][1:]] \
        == ["0.00", "25.00", "25.00"]
    listed = client_for(shop.borrower_user).get(f"/api/v1/loans/{lid}/charges").json()
    assert [(c["name"], c["installment"]) for c in listed] == [("field visit", 2), ("bounced cheque", 1),
                                                                ("field visit", 3)]
    # forgiven with a waiver
    assert post(shop.admin, f"/api/v1/loans/{lid}/waivers", {"component": "fees", "installment": 3,
                                                              "reason": "added by mistake"}, idem=key()).json()[
        "total"] == "25.00"


def test_a_charge_needs_an_active_loan():
    shop = open_shop()
    lid = small_loan(shop)
    assert repay(shop.officer, lid, "1060.59", on="2026-04-01").json()["closed_loan"] is True
    err(charge(shop.officer, lid), 409, "illegal_transition")
    assert not LoanCharge.objects.exists()
