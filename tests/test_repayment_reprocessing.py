"""Reversing an older repayment while later ones stand (docs/repayments.md, "Reversal"): with ``reprocess_later``
the later repayments are reversed and posted again in their order over the schedule without the reversed one, as
Fineract reprocesses; through the API on the real PostgreSQL.

The loan of tests/test_repayments.py: 1000.00 at 36 %, 3 months, disbursed 2026-01-01, installment 1 due 2026-02-01
(323.53 principal + 30.00 interest), total due 1060.59; the default strategy pays penalties, fees, interest, then
principal, oldest installment first.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from node.audit.models import AuditEvent
from node.audit.selectors import audit_verify_chain
from node.ledger.models import JournalEntry
from node.ledger.selectors import trial_balance
from node.loans.credit_events import network_loan_key
from node.loans.models import Loan
from node.notifications.models import Notification
from node.repayments.models import Repayment
from replication.models import OutboxEvent
from tests.loan_fixtures import client_for, err, key, open_shop, post
from tests.test_repayment_payoff_refund import payoff, refund
from tests.test_repayments import FAR, balance, lines, paid, repay, small_loan

pytestmark = pytest.mark.django_db

D = Decimal
ZERO4 = (D("0.00"),) * 4


def reverse(user, rep_id, reason="the cheque bounced", **extra):
    return post(user, f"/api/v1/repayments/{rep_id}/reverse", {"reason": reason, **extra}, idem=key())


def last_seq() -> int:
    return OutboxEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


def test_reversing_an_older_repayment_replays_the_later_ones_in_order():
    shop = open_shop()
    lid = small_loan(shop)
    first = repay(shop.officer, lid, "100.00", on="2026-02-10").json()
    second = repay(shop.officer, lid, "200.00", on="2026-02-11", channel="mobile_money", reference="MPESA-9").json()
    third = repay(shop.officer, lid, "50.00", on="2026-02-12").json()
    # with the first in effect, the second paid principal only (the first had paid installment 1's interest)
    assert second["allocation"]["interest"] == "0.00" and second["allocation"]["principal"] == "200.00"
    notifications, seq = Notification.objects.count(), last_seq()

    body = err(reverse(shop.admin, first["id"]), 409, "reverse_later_first")
    assert body["details"]["later_repayments"] == [{"id": second["id"], "receipt_number": second["receipt_number"]},
                                                   {"id": third["id"], "receipt_number": third["receipt_number"]}]
    assert not Repayment.objects.filter(loan_id=lid, reversed_at__isnull=False).exists()

    r = reverse(shop.admin, first["id"], reprocess_later=True)
    assert r.status_code == 200, r.content
    out = r.json()
    assert out["reversed"] is True and out["reversal_reason"] == "the cheque bounced"
    replays = out["replays"]
    assert [x["replay_of"] for x in replays] == [second["id"], third["id"]]
    for new, old in zip(replays, (second, third), strict=True):
        assert new["id"] not in (second["id"], third["id"]) and new["receipt_number"] != old["receipt_number"]
        assert (new["amount"], new["payment_date"], new["channel"], new["reference"]) == (
            old["amount"], old["payment_date"], old["channel"], old["reference"])
        assert new["reversed"] is False
    # allocated anew without the first: the second now pays installment 1's interest first
    assert replays[0]["allocation"] == {"principal": "170.00", "interest": "30.00", "fees": "0.00",
                                        "penalties": "0.00", "total": "200.00"}
    assert replays[1]["allocation"]["principal"] == "50.00"
    assert replays[1]["outstanding_after"]["principal"] == "780.00"
    # the schedule is what posting only the second and the third gives
    assert paid(lid)[1] == (D("220.00"), D("30.00"), D("0.00"), D("0.00")) and paid(lid)[2] == ZERO4

    # the originals are reversed, their entries mirrored; the replays carry new entries dated as the originals
    for old, new in zip((second, third), replays, strict=True):
        rep = Repayment.objects.get(pk=old["id"])
        assert rep.reversed_at is not None
        assert rep.reversal_reason == f"Replayed as {new['receipt_number']} after the reversal of {first['receipt_number']}"
        reversal = JournalEntry.objects.get(source_key=f"repayment:{old['id']}:reversal")
        assert sorted((ln.account.code, ln.credit, ln.debit) for ln in reversal.lines.all()) == lines(
            f"repayment:{old['id']}")
        assert JournalEntry.objects.get(source_key=f"repayment:{new['id']}").entry_date.isoformat() == old["payment_date"]
    tb = trial_balance(mfi=shop.mfi, as_of=FAR)
    assert tb.balanced
    # cash: -980 disbursed net + 250 in effect; portfolio 1000 - 220; interest income 30
    assert tb.row("1000").balance == D("-730.00") and tb.row("1100").balance == D("780.00")

    history = client_for(shop.officer).get(f"/api/v1/loans/{lid}/repayments").json()
    assert [(h["id"], h["reversed"], h["replay_of"]) for h in history] == [
        (first["id"], True, None), (second["id"], True, None), (third["id"], True, None),
        (replays[0]["id"], False, second["id"]), (replays[1]["id"], False, third["id"])]
    # as of a date, only what is in effect and dated by then counts
    assert balance(shop.officer, lid, "2026-02-10")["outstanding"]["principal"] == "1000.00"
    assert balance(shop.officer, lid, "2026-02-11")["outstanding"]["principal"] == "830.00"

    # the borrower is not told twice about money received once — only that the reversed one no longer counts;
    # the network hears where the loan stands
    assert Notification.objects.count() == notifications + 1
    assert Notification.objects.get(kind="repayment_reversed").event_key == f"repayment:{first['id']}:reversed"
    new_events = list(OutboxEvent.objects.filter(seq__gt=seq).order_by("seq"))
    assert [e.event_type for e in new_events] == ["loan.repaid", "loan.repaid"]
    assert new_events[-1].payload["outstanding_principal"] == "780.00"
    # audited: three reversals (the first names its replays), two postings naming what they replay
    rev = AuditEvent.objects.get(action="repayment.reverse", target_id=str(first["id"]))
    assert [x["replayed_as"] for x in rev.after["replayed"]] == [replays[0]["id"], replays[1]["id"]]
    assert AuditEvent.objects.get(action="repayment.reverse", target_id=str(third["id"])).after["replayed_as"] == \
        replays[1]["id"]
    assert AuditEvent.objects.get(action="repayment.post", target_id=str(replays[0]["id"])).after["replay_of"] == \
        second["id"]
    assert audit_verify_chain().ok

    # the replays are ordinary repayments: newest first again, or reprocessed again
    err(reverse(shop.admin, second["id"], reprocess_later=True), 409, "already_reversed")
    assert reverse(shop.admin, replays[0]["id"], reprocess_later=True).status_code == 200
    assert paid(lid)[1] == (D("20.00"), D("30.00"), D("0.00"), D("0.00"))
    assert trial_balance(mfi=shop.mfi, as_of=FAR).balanced


@pytest.mark.parametrize(("second_amount", "stays_closed"), [("960.59", False), ("1100.00", True)])
def test_reprocessing_a_loan_the_later_repayment_closed(second_amount, stays_closed):
    shop = open_shop()
    lid = small_loan(shop)
    first = repay(shop.officer, lid, "100.00", on="2026-02-10").json()
    second = repay(shop.officer, lid, second_amount, on="2026-03-01").json()
    assert second["closed_loan"] is True and Loan.objects.get(pk=lid).status == "closed"
    seq = last_seq()

    r = reverse(shop.admin, first["id"], reprocess_later=True)
    assert r.status_code == 200, r.content
    (replay,) = r.json()["replays"]
    loan = Loan.objects.get(pk=lid)
    events = list(OutboxEvent.objects.filter(seq__gt=seq).order_by("seq"))
    types = [e.event_type for e in events]
    if stays_closed:  # 1100.00 still pays the 1060.59 off; 39.41 over
        assert replay["closed_loan"] is True and replay["overpayment"] == "39.41"
        assert loan.status == "closed" and loan.closed_at is not None
        assert types == ["loan.closed", "holds.set"]
        assert events[1].payload == {"drop": [network_loan_key(loan)], "put": {}}
        assert balance(shop.officer, lid, "2026-03-01")["overpayment_held"] == "39.41"
    else:  # 960.59 leaves 100.00 of installment 3 unpaid: the loan is open again and its hold restored
        assert replay["closed_loan"] is False and replay["outstanding_after"]["total"] == "100.00"
        assert loan.status == "active" and loan.closed_at is None
        assert types == ["loan.repaid", "loan.reopened", "holds.set"]
        assert list(events[2].payload["put"]) == [network_loan_key(loan)]
        assert AuditEvent.objects.filter(action="loan.reopen", target_id=str(lid)).count() == 1
        assert repay(shop.officer, lid, "100.00", on="2026-03-02").json()["closed_loan"] is True
    assert trial_balance(mfi=shop.mfi, as_of=FAR).balanced


def test_a_later_payoff_is_not_replayed():
    shop = open_shop()
    lid = small_loan(shop)
    first = repay(shop.officer, lid, "100.00", on="2026-02-10").json()
    quote = balance(shop.officer, lid, "2026-02-15")["payoff_amount"]
    done = payoff(shop.officer, lid, quote).json()
    before = paid(lid)
    body = err(reverse(shop.admin, first["id"], reprocess_later=True), 409, "reprocess_not_possible")
    assert body["details"]["payoff_repayment"] == done["id"]
    assert paid(lid) == before and not Repayment.objects.filter(loan_id=lid, reversed_at__isnull=False).exists()
    # reversing the payoff first, then the first with nothing later, works as before
    assert reverse(shop.admin, done["id"]).status_code == 200
    assert reverse(shop.admin, first["id"]).status_code == 200
    assert paid(lid)[1] == ZERO4 and trial_balance(mfi=shop.mfi, as_of=FAR).balanced


def test_a_refunded_overpayment_the_replay_no_longer_holds_refuses_the_whole_reversal():
    shop = open_shop()
    lid = small_loan(shop)
    first = repay(shop.officer, lid, "100.00", on="2026-02-10").json()
    second = repay(shop.officer, lid, "1000.00", on="2026-03-01").json()
    assert second["overpayment"] == "39.41"
    assert refund(shop.admin, lid, "39.41").status_code == 201
    before, count, seq = paid(lid), Repayment.objects.count(), last_seq()
    entries = JournalEntry.objects.count()

    body = err(reverse(shop.admin, first["id"], reprocess_later=True), 409, "overpayment_refunded")
    assert body["details"]["held_after"] == "-39.41"
    # nothing half-written: no reversal, no replay, no entry, no event; the loan stays closed
    assert paid(lid) == before and Repayment.objects.count() == count and JournalEntry.objects.count() == entries
    assert not Repayment.objects.filter(loan_id=lid, reversed_at__isnull=False).exists()
    assert last_seq() == seq and Loan.objects.get(pk=lid).status == "closed"
    assert trial_balance(mfi=shop.mfi, as_of=FAR).balanced
