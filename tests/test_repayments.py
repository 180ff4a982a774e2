"""Repayments (issue #5 items 1 and 5): allocation, journal entries, closure, overpayment, idempotency, reversal,
balance and payoff, concurrency — through the API, on the real PostgreSQL.

Most tests use one small loan whose schedule is checked first, so every figure below can be followed by hand:
1000.00 at 36 % a year, declining balance, equal installments, 3 months, disbursed 2026-01-01 (2 % processing fee
deducted at disbursement, installment 0):

    #  due         principal  interest
    1  2026-02-01     323.53     30.00
    2  2026-03-01     333.24     20.29
    3  2026-04-01     343.23     10.30      total due 1060.59
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import date
from decimal import Decimal

import pytest
from django.db import connection

from node.audit.models import AuditEvent
from node.ledger.models import JournalEntry
from node.ledger.selectors import trial_balance
from node.loans.credit_events import network_loan_key
from node.loans.models import Loan, LoanInstallment
from node.repayments.models import Repayment, RepaymentAllocation
from replication.models import OutboxEvent
from tests.loan_fixtures import apply, client_for, disbursed, err, key, make_user, open_shop, post, to_approved

pytestmark = pytest.mark.django_db

D = Decimal
FAR = date(2099, 12, 31)
SCHEDULE = [(1, "2026-02-01", "323.53", "30.00"), (2, "2026-03-01", "333.24", "20.29"),
            (3, "2026-04-01", "343.23", "10.30")]


def small_loan(shop) -> int:
    lid = disbursed(shop)
    rows = [(i.number, i.due_date.isoformat(), str(i.principal), str(i.interest))
            for i in LoanInstallment.objects.filter(loan_id=lid, number__gte=1).order_by("number")]
    assert rows == SCHEDULE
    return lid


def repay(user, lid, amount, on="2026-02-10", channel="cash", idem=None, **extra):
    return post(user, f"/api/v1/loans/{lid}/repayments",
                {"amount": amount, "payment_date": on, "channel": channel, **extra}, idem=idem or key())


def paid(lid) -> dict[int, tuple[Decimal, Decimal, Decimal, Decimal]]:
    return {i.number: (i.principal_paid, i.interest_paid, i.fees_paid, i.penalties_paid)
            for i in LoanInstallment.objects.filter(loan_id=lid).order_by("number")}


def lines(source_key):
    entry = JournalEntry.objects.get(source_key=source_key)
    return sorted((ln.account.code, ln.debit, ln.credit) for ln in entry.lines.select_related("account"))


def balance(user, lid, as_of):
    r = client_for(user).get(f"/api/v1/loans/{lid}/balance", {"as_of": as_of})
    assert r.status_code == 200, r.content
    return r.json()


def outbox_types(shop):
    return list(OutboxEvent.objects.filter(partition_key=shop.borrower.borrower_key).order_by("seq")
                .values_list("event_type", flat=True))


# --- allocation, journal, receipt ------------------------------------------------------------------------------
def test_partial_payment_pays_penalties_fees_interest_then_part_principal():
    shop = open_shop()
    lid = small_loan(shop)
    LoanInstallment.objects.filter(loan_id=lid, number=1).update(penalties=D("15.00"), fees=D("5.00"))
    r = repay(shop.officer, lid, "100.00", on="2026-02-10", channel="mobile_money", reference="MPESA-1")
    assert r.status_code == 201, r.content
    body = r.json()
    # 100.00 = penalties 15.00 + fees 5.00 + interest 30.00 + principal 50.00, all on installment 1
    assert body["allocation"] == {"principal": "50.00", "interest": "30.00", "fees": "5.00", "penalties": "15.00",
                                  "total": "100.00"}
    assert body["installments"] == [{"number": 1, "due_date": "2026-02-01", "principal": "50.00", "interest": "30.00",
                                     "fees": "5.00", "penalties": "15.00", "total": "100.00"}]
    assert body["overpayment"] == "0.00" and body["closed_loan"] is False
    assert body["allocation_strategy"] == "penalties_fees_interest_principal"
    assert body["outstanding_after"] == {"principal": "950.00", "interest": "30.59", "fees": "0.00",
                                         "penalties": "0.00", "total": "980.59"}
    assert body["receipt_number"] == f"{shop.mfi.code.upper()}-R-00000001"
    assert body["channel"] == "mobile_money" and body["reference"] == "MPESA-1" and body["posted_by"] == shop.officer.username
    assert paid(lid)[1] == (D("50.00"), D("30.00"), D("5.00"), D("15.00"))
    assert paid(lid)[2] == paid(lid)[3] == (D("0.00"),) * 4
    assert lines(f"repayment:{body['id']}") == [
        ("1000", D("100.00"), D("0.00")), ("1100", D("0.00"), D("50.00")), ("4000", D("0.00"), D("30.00")),
        ("4100", D("0.00"), D("5.00")), ("4200", D("0.00"), D("15.00"))]
    assert JournalEntry.objects.get(source_key=f"repayment:{body['id']}").entry_date == date(2026, 2, 10)
    ev = OutboxEvent.objects.filter(event_type="loan.repaid").get()
    assert ev.payload["outstanding_principal"] == "950.00" and ev.payload["status"] == "active"
    audit = AuditEvent.objects.get(action="repayment.post", target_id=str(body["id"]))
    assert audit.after["amount"] == "100.00" and audit.after["receipt_number"] == body["receipt_number"]

    # the next payment finishes installment 1's principal (273.53), then installment 2: interest 20.29, principal
    # 106.18; the receipt number follows on
    r2 = repay(shop.admin, lid, "400.00", on="2026-02-20")
    assert r2.status_code == 201, r2.content
    b2 = r2.json()
    assert b2["receipt_number"] == f"{shop.mfi.code.upper()}-R-00000002"
    assert [(x["number"], x["principal"], x["interest"]) for x in b2["installments"]] == [
        (1, "273.53", "0.00"), (2, "106.18", "20.29")]
    assert paid(lid)[1] == (D("323.53"), D("30.00"), D("5.00"), D("15.00"))
    assert paid(lid)[2] == (D("106.18"), D("20.29"), D("0.00"), D("0.00"))
    assert b2["outstanding_after"]["principal"] == "570.29" and b2["outstanding_after"]["total"] == "580.59"
    history = client_for(shop.borrower_user).get(f"/api/v1/loans/{lid}/repayments").json()
    assert [(h["receipt_number"], h["amount"], h["reversed"]) for h in history] == [
        (body["receipt_number"], "100.00", False), (b2["receipt_number"], "400.00", False)]
    # the receipt a posting answers is built from what it wrote (no read-back): it is exactly what is stored
    assert history == [body, b2]
    assert client_for(shop.officer).get(f"/api/v1/repayments/{b2['id']}").json() == b2
    assert trial_balance(mfi=shop.mfi, as_of=FAR).balanced


def test_alternative_strategy_pays_principal_and_interest_before_penalties_and_fees():
    shop = open_shop()
    lid = small_loan(shop)
    product = Loan.objects.get(pk=lid).product_id
    path = f"/api/v1/products/{product}/repayment-config"
    err(client_for(shop.officer).put(path, {"allocation_strategy": "principal_interest_penalties_fees"},
                                     format="json"), 403, "permission_denied")
    err(client_for(shop.admin).put(path, {"allocation_strategy": "fifo"}, format="json"), 400, "validation_error")
    r = client_for(shop.admin).put(path, {"allocation_strategy": "principal_interest_penalties_fees"}, format="json")
    assert r.status_code == 200 and r.json()["allocation_strategy"] == "principal_interest_penalties_fees"
    assert client_for(shop.officer).get(path).json()["allocation_strategy"] == "principal_interest_penalties_fees"
    other = open_shop("other")
    err(client_for(other.admin).get(path), 404, "not_found")
    LoanInstallment.objects.filter(loan_id=lid, number=1).update(penalties=D("15.00"), fees=D("5.00"))
    r = repay(shop.officer, lid, "330.00")
    assert r.status_code == 201, r.content
    # principal 323.53 first, then interest 6.47; penalties and fees wait
    assert r.json()["allocation"] == {"principal": "323.53", "interest": "6.47", "fees": "0.00", "penalties": "0.00",
                                      "total": "330.00"}
    assert r.json()["allocation_strategy"] == "principal_interest_penalties_fees"
    assert paid(lid)[1] == (D("323.53"), D("6.47"), D("0.00"), D("0.00"))
    assert AuditEvent.objects.filter(action="product.repayment_config", target_id=str(product)).count() == 1


def test_exact_payoff_of_the_schedule_closes_the_loan_and_releases_the_hold():
    shop = open_shop()
    lid = small_loan(shop)
    r = repay(shop.officer, lid, "1060.59", on="2026-04-01", channel="bank")
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["closed_loan"] is True and body["overpayment"] == "0.00"
    assert body["allocation"] == {"principal": "1000.00", "interest": "60.59", "fees": "0.00", "penalties": "0.00",
                                  "total": "1060.59"}
    assert [x["number"] for x in body["installments"]] == [1, 2, 3]
    assert body["outstanding_after"]["total"] == "0.00"
    loan = Loan.objects.get(pk=lid)
    assert loan.status == "closed"
    assert loan.closed_at is not None and loan.days_past_due == 0 and loan.delinquency_bucket == "current"
    assert lines(f"repayment:{body['id']}") == [
        ("1000", D("1060.59"), D("0.00")), ("1100", D("0.00"), D("1000.00")), ("4000", D("0.00"), D("60.59"))]
    assert outbox_types(shop)[-2:] == ["loan.closed", "holds.set"]
    closed = OutboxEvent.objects.filter(event_type="loan.closed").get()
    assert closed.payload["outstanding_principal"] == "0.00" and closed.payload["status"] == "closed"
    hold = OutboxEvent.objects.filter(event_type="holds.set").order_by("-seq").first()
    assert hold.payload == {"drop": [network_loan_key(Loan.objects.get(pk=lid))], "put": {}}
    b = balance(shop.borrower_user, lid, "2026-04-01")
    assert b["status"] == "closed" and b["closed_at"] is not None
    assert b["outstanding"]["total"] == "0.00" and b["payoff_amount"] == "0.00"
    assert {row["status"] for row in b["installments"]} == {"paid"}
    assert AuditEvent.objects.filter(action="loan.close", target_id=str(lid)).count() == 1
    # nothing more can be paid on a closed loan
    body409 = err(repay(shop.officer, lid, "1.00"), 409, "illegal_transition")
    assert body409["details"]["current_state"] == "closed"
    # the portfolio account is back to zero for this MFI: 1000 out, 1000 back
    tb = trial_balance(mfi=shop.mfi, as_of=FAR)
    assert tb.balanced and tb.row("1100").balance == D("0.00") and tb.row("4000").balance == D("60.59")


def test_overpayment_is_held_as_a_liability():
    shop = open_shop()
    lid = small_loan(shop)
    r = repay(shop.officer, lid, "1100.00", on="2026-03-15")
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["overpayment"] == "39.41" and body["closed_loan"] is True
    assert body["allocation"]["total"] == "1060.59"
    assert lines(f"repayment:{body['id']}") == [
        ("1000", D("1100.00"), D("0.00")), ("1100", D("0.00"), D("1000.00")), ("2100", D("0.00"), D("39.41")),
        ("4000", D("0.00"), D("60.59"))]
    assert trial_balance(mfi=shop.mfi, as_of=FAR).row("2100").balance == D("39.41")
    assert balance(shop.officer, lid, "2026-03-15")["overpayment_held"] == "39.41"
    assert Repayment.objects.get(pk=body["id"]).overpayment == D("39.41")


def test_early_repayment_pays_installments_not_yet_due():
    shop = open_shop()
    lid = small_loan(shop)
    # on 2026-01-20 nothing is due yet; 707.06 pays installments 1 and 2 (353.53 each) in full, early
    r = repay(shop.officer, lid, "707.06", on="2026-01-20")
    assert r.status_code == 201, r.content
    assert [(x["number"], x["total"]) for x in r.json()["installments"]] == [(1, "353.53"), (2, "353.53")]
    assert paid(lid)[2] == (D("333.24"), D("20.29"), D("0.00"), D("0.00"))
    assert paid(lid)[3] == (D("0.00"),) * 4
    b = balance(shop.officer, lid, "2026-01-25")
    assert [(row["number"], row["status"]) for row in b["installments"]] == [
        (0, "paid"), (1, "paid"), (2, "paid"), (3, "upcoming")]
    assert b["outstanding"] == {"principal": "343.23", "interest": "10.30", "fees": "0.00", "penalties": "0.00",
                                "total": "353.53"}
    assert Loan.objects.get(pk=lid).status == "active"
    # after installment 2's due date, installment 3 is still to come
    assert balance(shop.officer, lid, "2026-03-02")["installments"][3]["status"] == "upcoming"


# --- idempotency and bad input ---------------------------------------------------------------------------------
def test_replay_with_the_same_key_returns_the_same_receipt_and_posts_once():
    shop = open_shop()
    lid = small_loan(shop)
    k = key()
    first = repay(shop.officer, lid, "120.00", idem=k)
    again = repay(shop.officer, lid, "120.00", idem=k)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert Repayment.objects.filter(loan_id=lid).count() == 1
    assert JournalEntry.objects.filter(mfi=shop.mfi).count() == 2  # disbursement + one repayment
    assert paid(lid)[1] == (D("90.00"), D("30.00"), D("0.00"), D("0.00"))
    err(repay(shop.officer, lid, "121.00", idem=k), 422, "idempotency_key_reused")
    assert Repayment.objects.filter(loan_id=lid).count() == 1


def test_a_failing_audit_insert_rolls_the_repayment_back_and_the_same_key_posts_it_later(monkeypatch):
    """Fail closed (reliability S12): the audit row is written in the money transaction; when PostgreSQL refuses it,
    nothing of the repayment is kept, the client gets 500 ``internal_error``, and its retry with the same
    Idempotency-Key posts it once."""
    from node.repayments import services as R

    shop = open_shop()
    lid = small_loan(shop)
    client = client_for(shop.officer)  # (signing in is audited too: before the count)
    before = (AuditEvent.objects.count(), OutboxEvent.objects.count(), paid(lid))

    def audit_insert_refused(**kw):
        with connection.cursor() as cur:  # a real refusal by PostgreSQL, inside the service's transaction
            cur.execute(f"INSERT INTO {AuditEvent._meta.db_table} (id) VALUES (NULL)")

    monkeypatch.setattr(R, "audit_record_many", audit_insert_refused)
    k = key()
    client.raise_request_exception = False
    r = client.post(f"/api/v1/loans/{lid}/repayments", {"amount": "120.00", "payment_date": "2026-02-10",
                                                         "channel": "cash"}, format="json", HTTP_IDEMPOTENCY_KEY=k)
    assert r.status_code == 500 and r.json()["code"] == "internal_error"
    assert Repayment.objects.count() == RepaymentAllocation.objects.count() == 0
    assert JournalEntry.objects.filter(mfi=shop.mfi).count() == 1  # the disbursement's only
    assert (AuditEvent.objects.count(), OutboxEvent.objects.count(), paid(lid)) == before

    monkeypatch.undo()
    again = repay(shop.officer, lid, "120.00", idem=k)
    assert again.status_code == 201, again.content
    assert Repayment.objects.filter(loan_id=lid).count() == 1
    assert paid(lid)[1] == (D("90.00"), D("30.00"), D("0.00"), D("0.00"))


def test_missing_idempotency_key_is_refused():
    shop = open_shop()
    lid = small_loan(shop)
    r = client_for(shop.officer).post(f"/api/v1/loans/{lid}/repayments",
                                      {"amount": "10.00", "payment_date": "2026-02-10", "channel": "cash"}, format="json")
    err(r, 400, "idempotency_key_required")
    assert Repayment.objects.count() == 0 and JournalEntry.objects.filter(mfi=shop.mfi).count() == 1


@pytest.mark.parametrize("amount", ["10.001", "0", "0.00", "-5.00", 10.5, "ten"])
def test_bad_amount_is_refused_and_nothing_is_written(amount):
    shop = open_shop()
    lid = small_loan(shop)
    not_sign_ins = AuditEvent.objects.exclude(action__startswith="auth.")  # (each test client signs in)
    before_audit = not_sign_ins.count()
    before_outbox = OutboxEvent.objects.count()
    body = err(repay(shop.officer, lid, amount), 400, "validation_error")
    assert "amount" in body["details"]["fields"]
    assert Repayment.objects.count() == RepaymentAllocation.objects.count() == 0
    assert JournalEntry.objects.filter(mfi=shop.mfi).count() == 1
    assert paid(lid) == {0: (D("0.00"), D("0.00"), D("20.00"), D("0.00")), **{n: (D("0.00"),) * 4 for n in (1, 2, 3)}}
    assert not_sign_ins.count() == before_audit and OutboxEvent.objects.count() == before_outbox


def test_bad_dates_and_channel_are_refused():
    shop = open_shop()
    lid = small_loan(shop)
    body = err(repay(shop.officer, lid, "10.00", on="2025-12-31"), 400, "validation_error")
    assert "payment_date" in body["details"]["fields"]
    body = err(repay(shop.officer, lid, "10.00", on="2099-01-01"), 400, "validation_error")
    assert body["details"]["fields"]["payment_date"] == ["must not be in the future"]
    body = err(repay(shop.officer, lid, "10.00", channel="cheque"), 400, "validation_error")
    assert "channel" in body["details"]["fields"]
    err(repay(shop.officer, lid, "10.00", tip="yes"), 400, "validation_error")
    assert Repayment.objects.count() == 0 and JournalEntry.objects.filter(mfi=shop.mfi).count() == 1


def test_repayment_on_a_loan_that_is_not_active_is_a_conflict():
    shop = open_shop()
    lid = apply(shop, principal="1000.00", n=3)
    to_approved(shop, lid)
    body = err(repay(shop.officer, lid, "50.00"), 409, "illegal_transition")
    assert body["details"]["current_state"] == "approved" and body["details"]["action"] == "repay"
    written_off = small_loan(shop)
    assert post(shop.admin, f"/api/v1/loans/{written_off}/write-off", {"reason": "borrower emigrated"},
                idem=key()).status_code == 200
    body = err(repay(shop.officer, written_off, "50.00"), 409, "illegal_transition")
    assert body["details"]["current_state"] == "written_off"
    assert Repayment.objects.count() == 0


def test_roles_and_other_mfis():
    shop, other = open_shop("a"), open_shop("b")
    lid = small_loan(shop)
    rep = repay(shop.officer, lid, "50.00").json()
    # the borrower sees their history and balance but cannot post; an analyst cannot post
    err(repay(shop.borrower_user, lid, "50.00"), 403, "permission_denied")
    err(repay(shop.analyst, lid, "50.00"), 403, "permission_denied")
    assert len(client_for(shop.borrower_user).get(f"/api/v1/loans/{lid}/repayments").json()) == 1
    # another MFI's staff: exactly like a missing loan / repayment, and nothing written
    c = client_for(other.admin)
    for method, template, body in (
        ("post", "/api/v1/loans/{loan}/repayments", {"amount": "10.00", "channel": "cash"}),
        ("get", "/api/v1/loans/{loan}/repayments", None),
        ("get", "/api/v1/loans/{loan}/balance", None),
        ("get", "/api/v1/repayments/{rep}", None),
        ("post", "/api/v1/repayments/{rep}/reverse", {"reason": "wrong loan entirely"}),
    ):
        path, missing = template.format(loan=lid, rep=rep["id"]), template.format(loan=987654321, rep=987654321)
        kwargs = {"format": "json", "HTTP_IDEMPOTENCY_KEY": key()} if method == "post" else {}
        rf = getattr(c, method)(path, body, **kwargs)
        kwargs = {"format": "json", "HTTP_IDEMPOTENCY_KEY": key()} if method == "post" else {}
        rm = getattr(c, method)(missing, body, **kwargs)
        assert rf.status_code == rm.status_code == 404, (path, rf.content)
        assert rf.json() == rm.json()
    assert Repayment.objects.count() == 1 and Repayment.objects.get().reversed_at is None
    # another borrower does not see this loan either
    err(client_for(other.borrower_user).get(f"/api/v1/loans/{lid}/balance"), 404, "not_found")


# --- reversal --------------------------------------------------------------------------------------------------
def test_reversal_restores_the_installments_exactly_and_the_books_balance():
    shop = open_shop()
    lid = small_loan(shop)
    LoanInstallment.objects.filter(loan_id=lid, number=1).update(penalties=D("15.00"))
    first = repay(shop.officer, lid, "100.00", on="2026-02-10").json()
    before = paid(lid)
    second = repay(shop.officer, lid, "500.00", on="2026-02-20").json()
    assert paid(lid) != before
    path = f"/api/v1/repayments/{second['id']}/reverse"
    err(post(shop.officer, path, {"reason": "cashier keyed the wrong loan"}, idem=key()), 403, "permission_denied")
    err(post(shop.admin, path, {"reason": "oops"}, idem=key()), 400, "validation_error")
    err(post(shop.admin, path, {"reason": "cashier keyed the wrong loan"}), 400, "idempotency_key_required")
    r = post(shop.admin, path, {"reason": "cashier keyed the wrong loan"}, idem=key())
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["reversed"] is True and body["reversed_by"] == shop.admin.username
    assert body["reversal_reason"] == "cashier keyed the wrong loan"
    assert paid(lid) == before
    # the reversal mirrors the repayment's entry
    reversal = JournalEntry.objects.get(source_key=f"repayment:{second['id']}:reversal")
    assert reversal.reverses.source_key == f"repayment:{second['id']}"
    assert sorted((ln.account.code, ln.credit, ln.debit) for ln in reversal.lines.all()) == lines(
        f"repayment:{second['id']}")
    tb = trial_balance(mfi=shop.mfi, as_of=FAR)
    assert tb.balanced
    # cash: -980 disbursed net, +100 first, +500 -500 second; portfolio 1000 less the first's 55.00 principal
    assert tb.row("1000").balance == D("-880.00") and tb.row("1100").balance == D("945.00")
    err(post(shop.admin, path, {"reason": "cashier keyed the wrong loan"}, idem=key()), 409, "already_reversed")
    history = client_for(shop.officer).get(f"/api/v1/loans/{lid}/repayments").json()
    assert [(h["id"], h["reversed"]) for h in history] == [(first["id"], False), (second["id"], True)]
    assert AuditEvent.objects.filter(action="repayment.reverse", target_id=str(second["id"])).count() == 1
    # the balance no longer counts the reversed repayment
    assert balance(shop.officer, lid, "2026-02-25")["outstanding"]["principal"] == "945.00"


def test_reversals_go_newest_first():
    shop = open_shop()
    lid = small_loan(shop)
    first = repay(shop.officer, lid, "100.00", on="2026-02-10").json()
    second = repay(shop.officer, lid, "100.00", on="2026-02-11").json()
    body = err(post(shop.admin, f"/api/v1/repayments/{first['id']}/reverse", {"reason": "duplicate entry"}, idem=key()),
               409, "reverse_later_first")
    assert body["details"]["latest_repayment"] == second["id"]
    assert Repayment.objects.filter(reversed_at__isnull=False).count() == 0
    for rep in (second, first):
        assert post(shop.admin, f"/api/v1/repayments/{rep['id']}/reverse", {"reason": "duplicate entry"},
                    idem=key()).status_code == 200
    assert paid(lid)[1] == (D("0.00"),) * 4
    assert trial_balance(mfi=shop.mfi, as_of=FAR).balanced


def test_reversing_the_closing_repayment_reopens_the_loan():
    shop = open_shop()
    lid = small_loan(shop)
    rep = repay(shop.officer, lid, "1060.59", on="2026-04-01").json()
    assert Loan.objects.get(pk=lid).status == "closed"
    seq = OutboxEvent.objects.order_by("-seq").values_list("seq", flat=True).first()
    r = post(shop.admin, f"/api/v1/repayments/{rep['id']}/reverse", {"reason": "the bank transfer bounced"}, idem=key())
    assert r.status_code == 200, r.content
    loan = Loan.objects.get(pk=lid)
    assert loan.status == "active" and loan.closed_at is None
    assert paid(lid)[3] == (D("0.00"),) * 4
    new = list(OutboxEvent.objects.filter(seq__gt=seq).order_by("seq"))
    assert [e.event_type for e in new] == ["loan.reopened", "holds.set"]
    assert new[0].payload["outstanding_principal"] == "1000.00" and new[0].payload["status"] == "active"
    assert new[1].payload["drop"] == [] and list(new[1].payload["put"]) == [network_loan_key(loan)]
    assert new[1].payload["put"][network_loan_key(loan)]["state"] == "active"
    b = balance(shop.officer, lid, "2026-04-01")
    assert b["status"] == "active" and b["closed_at"] is None and b["outstanding"]["total"] == "1060.59"
    assert AuditEvent.objects.filter(action="loan.reopen", target_id=str(lid)).count() == 1
    # it can be repaid again
    assert repay(shop.officer, lid, "1060.59", on="2026-04-02").status_code == 201
    assert Loan.objects.get(pk=lid).status == "closed"
    assert trial_balance(mfi=shop.mfi, as_of=FAR).balanced


# --- balance and payoff ----------------------------------------------------------------------------------------
def test_payoff_as_of_a_mid_period_date():
    shop = open_shop()
    lid = small_loan(shop)
    # as of 2026-02-15 with nothing paid: installment 1 (interest 30.00) has fallen due; installment 2's period
    # runs 2026-02-01..2026-03-01 (28 days), 14 days elapsed: 20.29 x 14 / 28 = 10.145 -> 10.15 (half-up)
    b = balance(shop.officer, lid, "2026-02-15")
    assert b["payoff"] == {
        "principal": "1000.00", "interest_due": "30.00", "current_period_interest": "10.15", "fees": "0.00",
        "penalties": "0.00", "available": True, "earliest_date": "2026-01-01",
        "current_period": {"installment": 2, "period_start": "2026-02-01", "due_date": "2026-03-01",
                           "days_in_period": 28, "days_elapsed": 14, "scheduled_interest": "20.29",
                           "accrued_interest": "10.15", "interest_paid": "0.00", "interest_owed": "10.15"}}
    assert b["payoff_amount"] == "1040.15"
    assert [(r["number"], r["status"]) for r in b["installments"]] == [
        (0, "paid"), (1, "overdue"), (2, "upcoming"), (3, "upcoming")]
    assert b["overdue"]["total"] == "353.53" and b["outstanding"]["total"] == "1060.59"
    # first period: 2026-01-01..2026-02-01 (31 days), 19 elapsed: 30.00 x 19 / 31 = 18.387 -> 18.39
    assert balance(shop.officer, lid, "2026-01-20")["payoff_amount"] == "1018.39"
    # a payment of 100.00 on 2026-02-10 (interest 30.00, principal 70.00) ...
    assert repay(shop.officer, lid, "100.00", on="2026-02-10").status_code == 201
    b = balance(shop.borrower_user, lid, "2026-02-15")
    assert b["payoff_amount"] == "940.15"  # 930.00 + 0.00 + 10.15
    assert b["installments"][1]["status"] == "overdue"
    assert b["installments"][1]["paid"]["total"] == "100.00"
    # ... is not counted as of a date before it: 2026-02-05 = 1000.00 + 30.00 + 20.29 x 4 / 28 (2.8986 -> 2.90)
    early = balance(shop.officer, lid, "2026-02-05")
    assert early["payoff_amount"] == "1032.90" and early["installments"][1]["paid"]["total"] == "0.00"
    # on the due date itself the installment is "due" and the next period has just started (0 days)
    on_due = balance(shop.officer, lid, "2026-03-01")
    assert on_due["installments"][2]["status"] == "due"
    assert on_due["payoff"]["current_period"]["installment"] == 3 and on_due["payoff"]["current_period_interest"] == "0.00"
    assert on_due["payoff_amount"] == "950.29"  # 930.00 principal + 20.29 interest of installment 2
    err(client_for(shop.officer).get(f"/api/v1/loans/{lid}/balance", {"as_of": "2025-12-01"}), 400, "validation_error")
    err(client_for(shop.officer).get(f"/api/v1/loans/{lid}/balance", {"as_of": "15/02/2026"}), 400, "validation_error")


def test_balance_of_a_loan_not_yet_disbursed():
    shop = open_shop()
    lid = apply(shop, principal="1000.00", n=3)
    err(client_for(shop.borrower_user).get(f"/api/v1/loans/{lid}/balance"), 409, "loan_not_disbursed")


# --- concurrency -----------------------------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_repayments_on_one_loan():
    shop = open_shop(threshold="100000")
    lid = disbursed(shop, principal="10000.00", n=12)
    cashiers = [shop.officer, shop.officer2, shop.admin, shop.admin2] + [make_user("loan_officer", shop.mfi)
                                                                          for _ in range(2)]
    amounts = [D("150.00") + D(i) for i in range(20)]  # 150.00 .. 169.00, 3190.00 in all
    statuses: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(20)

    def worker(i):
        try:
            barrier.wait()
            r = repay(cashiers[i % len(cashiers)], lid, str(amounts[i]), on="2026-03-10")
            with lock:
                statuses.append(r.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(statuses) == [201] * 20
    reps = list(Repayment.objects.filter(loan_id=lid))
    assert sum((r.amount for r in reps), D(0)) == sum(amounts) == D("3190.00")
    allocated = sum((a.total for a in RepaymentAllocation.objects.filter(repayment__loan_id=lid)), D(0))
    assert allocated == D("3190.00") and sum((r.overpayment for r in reps), D(0)) == D("0.00")
    numbers = sorted(int(r.receipt_number.rsplit("-", 1)[1]) for r in reps)
    assert numbers == list(range(1, 21))
    installments = list(LoanInstallment.objects.filter(loan_id=lid).order_by("number"))
    for i in installments:
        assert i.principal_paid <= i.principal and i.interest_paid <= i.interest
        assert i.fees_paid <= i.fees and i.penalties_paid <= i.penalties
    assert sum((i.principal_paid + i.interest_paid for i in installments), D(0)) == D("3190.00")
    # oldest first: every installment before the last one touched is fully paid
    touched = [i for i in installments if i.number >= 1 and i.principal_paid + i.interest_paid > 0]
    for i in touched[:-1]:
        assert i.principal_paid == i.principal and i.interest_paid == i.interest
    # one allocation per (repayment, installment), and each repayment's allocation sums to its amount
    per_rep = Counter()
    for a in RepaymentAllocation.objects.filter(repayment__loan_id=lid):
        per_rep[a.repayment_id] += a.total
    assert all(per_rep[r.pk] == r.amount for r in reps)
    assert JournalEntry.objects.filter(mfi=shop.mfi, source_key__startswith="repayment:").count() == 20
    tb = trial_balance(mfi=shop.mfi, as_of=FAR)
    assert tb.balanced and tb.row("1000").balance == D("-9800.00") + D("3190.00")


@pytest.mark.django_db(transaction=True)
def test_taking_receipt_numbers_holds_no_lock_until_commit():
    """Receipt numbers come from the MFI's sequence: a transaction that has drawn numbers and is still open holds
    nothing a posting on another loan of the same MFI needs. (A counter row bumped by UPDATE stayed locked until
    commit, so every posting of an MFI waited for the previous posting's commit. The audit chain's lock is still
    taken by both, but only for the last statements before commit.)"""
    from django.db import transaction

    from node.repayments.services import _receipts_and_ids

    shop = open_shop(threshold="100000")
    lid = disbursed(shop)
    assert repay(shop.officer, lid, "10.00").status_code == 201  # R-00000001, and the MFI's sequence exists
    drawn, release, errors = threading.Event(), threading.Event(), []

    def open_draw():
        try:
            with transaction.atomic():
                assert _receipts_and_ids(shop.mfi, 2)[0] == [f"{shop.mfi.code.upper()}-R-0000000{n}" for n in (2, 3)]
                drawn.set()
                assert release.wait(60)
        except BaseException as exc:  # noqa: BLE001  (reported by the main thread)
            errors.append(exc)
            drawn.set()
        finally:
            connection.close()

    holder = threading.Thread(target=open_draw)
    holder.start()
    try:
        assert drawn.wait(60) and not errors
        answers = []
        other = threading.Thread(target=lambda: (answers.append(repay(shop.officer, lid, "30.00")),
                                                 connection.close()))
        other.start()
        other.join(15)
        assert not other.is_alive(), "the posting waited for another transaction's receipt numbers"
        assert answers[0].status_code == 201, answers[0].content
        assert answers[0].json()["receipt_number"] == f"{shop.mfi.code.upper()}-R-00000004"
    finally:
        release.set()
        holder.join(60)
    assert not errors
    # the open transaction committed nothing but its draw: 2 and 3 are a gap, as after a rolled-back posting
    assert sorted(Repayment.objects.filter(mfi=shop.mfi).values_list("receipt_number", flat=True)) == [
        f"{shop.mfi.code.upper()}-R-0000000{n}" for n in (1, 4)]


# --- the pure allocation function ------------------------------------------------------------------------------
def test_allocate_orders_and_overpayment_without_the_database():
    from node.repayments import allocation as A

    dues = [A.Due(key=1, principal=D("100.00"), interest=D("10.00"), fees=D("2.00"), penalties=D("3.00")),
            A.Due(key=2, principal=D("100.00"), interest=D("5.00"), fees=D("0.00"), penalties=D("0.00"))]
    plan = A.allocate(D("120.00"), dues)
    assert plan.portions == (A.Portion(1, principal=D("100.00"), interest=D("10.00"), fees=D("2.00"), penalties=D("3.00")),
                             A.Portion(2, interest=D("5.00")))
    assert plan.overpayment == D("0.00")
    plan = A.allocate(D("120.00"), dues, A.PRINCIPAL_INTEREST_PENALTIES_FEES)
    assert plan.portions == (A.Portion(1, principal=D("100.00"), interest=D("10.00"), penalties=D("3.00"), fees=D("2.00")),
                             A.Portion(2, principal=D("5.00")))
    plan = A.allocate(D("300.00"), dues)
    assert plan.overpayment == D("80.00") and plan.component("principal") == D("200.00")
    for bad in (D("0"), D("-1"), 5):
        with pytest.raises(ValueError):
            A.allocate(bad, dues)
    with pytest.raises(ValueError):
        A.allocate(D("1.00"), dues, "fifo")
