"""``Idempotency-Key`` (node/core/idempotency.py) around a money-moving endpoint: the work and the stored answer
commit together, and a claim left by a crash neither blocks the key forever nor lets the work run twice."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.utils import timezone

from node.core.idempotency import STALE_CLAIM, _request_hash
from node.core.models import IdempotencyRecord
from node.ledger.models import JournalEntry
from node.repayments.models import Repayment
from tests.loan_fixtures import err, key, open_shop
from tests.test_repayments import disbursed, repay

pytestmark = pytest.mark.django_db
BODY = {"amount": "120.00", "payment_date": "2026-02-10", "channel": "cash"}


def _crashed_claim(user, lid, k, age: timedelta) -> IdempotencyRecord:
    """The claim row a process leaves when it dies after claiming the key and before its work commits."""
    path = f"/api/v1/loans/{lid}/repayments"
    digest = _request_hash(SimpleNamespace(data=BODY, path=path, method="POST"), {"loan_id": lid})
    rec = IdempotencyRecord.objects.create(user=user, key=k, endpoint=f"POST {path}", request_hash=digest)
    IdempotencyRecord.objects.filter(pk=rec.pk).update(created_at=timezone.now() - age)
    return rec


def test_a_fresh_unfinished_claim_answers_in_progress_and_posts_nothing():
    shop = open_shop()
    lid = disbursed(shop)
    k = key()
    _crashed_claim(shop.officer, lid, k, timedelta(seconds=5))
    err(repay(shop.officer, lid, "120.00", idem=k), 409, "request_in_progress")
    assert Repayment.objects.filter(loan_id=lid).count() == 0


def test_a_claim_left_by_a_crash_runs_once_when_the_key_is_retried():
    shop = open_shop()
    lid = disbursed(shop)
    k = key()
    _crashed_claim(shop.officer, lid, k, STALE_CLAIM + timedelta(seconds=1))
    first = repay(shop.officer, lid, "120.00", idem=k)
    assert first.status_code == 201, first.content
    again = repay(shop.officer, lid, "120.00", idem=k)
    assert again.status_code == 201 and again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert Repayment.objects.filter(loan_id=lid).count() == 1
    assert IdempotencyRecord.objects.get(user=shop.officer, key=k).completed_at is not None


def test_the_work_is_rolled_back_when_the_answer_cannot_be_stored(monkeypatch):
    """The database dies between the repayment and its stored answer: before the fix the repayment stayed posted
    while the key answered 409 forever; now neither is written and the key is free for the retry."""
    shop = open_shop()
    lid = disbursed(shop)
    entries = JournalEntry.objects.filter(mfi=shop.mfi).count()
    real_save = IdempotencyRecord.save

    def dying_save(self, *args, **kwargs):
        if kwargs.get("update_fields"):
            raise RuntimeError("server closed the connection unexpectedly")
        return real_save(self, *args, **kwargs)

    monkeypatch.setattr(IdempotencyRecord, "save", dying_save)
    k = key()
    with pytest.raises(RuntimeError):
        repay(shop.officer, lid, "120.00", idem=k)
    assert Repayment.objects.filter(loan_id=lid).count() == 0
    assert JournalEntry.objects.filter(mfi=shop.mfi).count() == entries
    assert not IdempotencyRecord.objects.filter(user=shop.officer, key=k).exists()
    monkeypatch.setattr(IdempotencyRecord, "save", real_save)
    assert repay(shop.officer, lid, "120.00", idem=k).status_code == 201
    assert Repayment.objects.filter(loan_id=lid).count() == 1
