"""Ledger invariants under a Hypothesis state machine, on the real test PostgreSQL.

Each example starts from a new MFI with the standard chart and runs a random sequence of operations —
disburse, charge a fee, collect (fees first, then principal, any excess as an overpayment), write off,
reverse a random earlier entry, replay an earlier posting by its source key (and a changed posting under a
used key), attempt an unbalanced posting — against a plain in-memory model of the account balances. After every
step the real trial balance must be balanced and equal to the model; a history check compares the trial
balance as of an earlier business date with the model's snapshot of that date.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from node.core.errors import ApplicationError
from node.ledger import chart as C
from node.ledger.models import JournalEntry, JournalLine, NormalBalance
from node.ledger.selectors import trial_balance
from node.ledger.services import PostingLine, journal_post, journal_reverse, ledger_ensure_chart
from node.mfis.models import Mfi

ZERO = Decimal("0.00")
amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("250000.00"), places=2)
small_amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("5000.00"), places=2)
#: What the examples did (checked after the run, so a precondition that never holds cannot go unnoticed).
STEPS: Counter[str] = Counter()


@dataclass
class Posted:
    entry_id: int
    kwargs: dict  # what was passed to journal_post / journal_reverse (replayable)
    deltas: dict[str, Decimal]  # per account: debit - credit
    is_reversal: bool


def deltas_of(lines: list[PostingLine]) -> dict[str, Decimal]:
    out: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for line in lines:
        out[line.account_code] += line.debit - line.credit
    return dict(out)


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.mfi = Mfi.objects.create(code=f"sm-{uuid.uuid4().hex[:10]}", name="State machine MFI",
                                      home_district="maseru")
        ledger_ensure_chart(mfi=self.mfi)
        self.model: dict[str, Decimal] = defaultdict(lambda: ZERO)  # debit - credit per account code
        self.turnover = ZERO  # sum of all debits
        self.day = dt.date(2026, 1, 5)
        self.snapshots: dict[dt.date, dict[str, Decimal]] = {}
        self.posted: list[Posted] = []
        self.reversed: set[int] = set()
        self.seq = 0

    # --- helpers ---------------------------------------------------------------------------------------------
    def _key(self, what: str) -> str:
        self.seq += 1
        return f"{self.mfi.code}:{what}:{self.seq}"

    def _apply(self, lines: list[PostingLine]) -> None:
        for code, delta in deltas_of(lines).items():
            self.model[code] += delta
        self.turnover += sum((line.debit for line in lines), ZERO)

    def _post(self, what: str, lines: list[PostingLine], days: int) -> None:
        STEPS[what] += 1
        self.day += dt.timedelta(days=days)
        kwargs = {"mfi": self.mfi, "entry_date": self.day, "lines": lines, "description": what,
                  "reference_type": "loan", "reference_id": str(self.seq), "source_key": self._key(what)}
        entry = journal_post(**kwargs)
        self._apply(lines)
        self.posted.append(Posted(entry.pk, kwargs, deltas_of(lines), is_reversal=False))

    def _counts(self) -> tuple[int, int]:
        return (JournalEntry.objects.filter(mfi=self.mfi).count(),
                JournalLine.objects.filter(entry__mfi=self.mfi).count())

    def _refused(self, code: str, fn) -> None:
        before = self._counts()
        with pytest.raises(ApplicationError) as info:
            fn()
        assert info.value.code == code, (info.value.code, info.value.message)
        assert self._counts() == before

    # --- rules -----------------------------------------------------------------------------------------------
    @rule(amount=amounts, days=st.integers(0, 3))
    def disburse(self, amount, days):
        self._post("disburse", [PostingLine(C.LOAN_PORTFOLIO, debit=amount), PostingLine(C.CASH, credit=amount)],
                   days)

    @rule(amount=small_amounts, at_disbursement=st.booleans(), days=st.integers(0, 3))
    def charge_fee(self, amount, at_disbursement, days):
        debit_account = C.CASH if at_disbursement else C.FEE_RECEIVABLE
        self._post("fee", [PostingLine(debit_account, debit=amount), PostingLine(C.FEE_INCOME, credit=amount)], days)

    @rule(amount=amounts, days=st.integers(0, 3))
    def collect(self, amount, days):
        fee_part = min(amount, max(self.model[C.FEE_RECEIVABLE], ZERO))
        principal_part = min(amount - fee_part, max(self.model[C.LOAN_PORTFOLIO], ZERO))
        excess = amount - fee_part - principal_part
        lines = [PostingLine(C.CASH, debit=amount)]
        for code, part in ((C.FEE_RECEIVABLE, fee_part), (C.LOAN_PORTFOLIO, principal_part),
                           (C.OVERPAYMENT_LIABILITY, excess)):
            if part > 0:
                lines.append(PostingLine(code, credit=part))
        self._post("collect", lines, days)

    @precondition(lambda self: self.model[C.LOAN_PORTFOLIO] > 0)
    @rule(days=st.integers(0, 3))
    def write_off(self, days):
        outstanding = self.model[C.LOAN_PORTFOLIO]
        self._post("write_off", [PostingLine(C.WRITE_OFF_EXPENSE, debit=outstanding),
                                 PostingLine(C.LOAN_PORTFOLIO, credit=outstanding)], days)

    @precondition(lambda self: self.posted)
    @rule(data=st.data())
    def reverse(self, data):
        target = data.draw(st.sampled_from(self.posted), label="target")
        entry = JournalEntry.objects.get(pk=target.entry_id)
        STEPS["reverse_reversal" if target.is_reversal else
              "reverse_again" if target.entry_id in self.reversed else "reverse"] += 1
        if target.is_reversal:
            self._refused("reversal_not_reversible", lambda: journal_reverse(entry=entry, actor=None, reason="undo"))
        elif target.entry_id in self.reversed:
            self._refused("already_reversed", lambda: journal_reverse(entry=entry, actor=None, reason="again"))
        else:
            kwargs = {"entry": entry, "actor": None, "reason": "correction", "entry_date": self.day,
                      "source_key": self._key("reverse")}
            reversal = journal_reverse(**kwargs)
            negated = {code: -delta for code, delta in target.deltas.items()}
            for code, delta in negated.items():
                self.model[code] += delta
            self.turnover += sum((line.debit for line in reversal.lines.all()), ZERO)
            self.reversed.add(target.entry_id)
            self.posted.append(Posted(reversal.pk, kwargs, negated, is_reversal=True))

    @precondition(lambda self: self.posted)
    @rule(data=st.data())
    def replay(self, data):
        target = data.draw(st.sampled_from(self.posted), label="target")
        STEPS["replay_reversal" if target.is_reversal else "replay"] += 1
        before = self._counts()
        if target.is_reversal:
            kwargs = dict(target.kwargs, entry=JournalEntry.objects.get(pk=target.kwargs["entry"].pk))
            again = journal_reverse(**kwargs)
        else:
            again = journal_post(**target.kwargs)
        assert again.pk == target.entry_id
        assert self._counts() == before

    @precondition(lambda self: any(not p.is_reversal for p in self.posted))
    @rule(data=st.data(), extra=small_amounts)
    def replay_changed(self, data, extra):
        STEPS["replay_changed"] += 1
        target = data.draw(st.sampled_from([p for p in self.posted if not p.is_reversal]), label="target")
        first, second = target.kwargs["lines"][:2]
        changed = [PostingLine(first.account_code, debit=first.debit + extra, credit=first.credit),
                   PostingLine(second.account_code, debit=second.debit, credit=second.credit + extra),
                   *target.kwargs["lines"][2:]]
        self._refused("idempotency_key_reused", lambda: journal_post(**dict(target.kwargs, lines=changed)))

    @rule(amount=amounts, off_by=small_amounts)
    def attempt_unbalanced(self, amount, off_by):
        STEPS["attempt_unbalanced"] += 1
        lines = [PostingLine(C.LOAN_PORTFOLIO, debit=amount), PostingLine(C.CASH, credit=amount + off_by)]
        self._refused("unbalanced_entry", lambda: journal_post(
            mfi=self.mfi, entry_date=self.day, lines=lines, description="broken", source_key=self._key("broken")))

    @precondition(lambda self: self.snapshots)
    @rule(data=st.data())
    def check_history(self, data):
        STEPS["check_history"] += 1
        day = data.draw(st.sampled_from(sorted(self.snapshots)), label="day")
        tb = trial_balance(mfi=self.mfi, as_of=day)
        assert tb.balanced
        self._assert_matches(tb, self.snapshots[day])

    # --- invariants ------------------------------------------------------------------------------------------
    def _assert_matches(self, tb, model: dict[str, Decimal]) -> None:
        for row in tb.rows:
            net = model.get(row.code, ZERO)
            expected = net if row.normal_balance == NormalBalance.DEBIT else -net
            assert row.balance == expected, (row.code, row.balance, expected)

    @invariant()
    def trial_balance_is_balanced_and_equals_the_model(self):
        tb = trial_balance(mfi=self.mfi, as_of=self.day)
        assert tb.balanced and tb.difference == 0
        assert tb.total_debit == tb.total_credit == self.turnover
        self._assert_matches(tb, self.model)
        assert sum(self.model.values(), ZERO) == 0
        assert self._counts()[0] == len(self.posted)
        # every entry is dated on or before the current business date, so this is the picture of that day
        self.snapshots[self.day] = dict(self.model)


@pytest.mark.django_db
def test_ledger_state_machine():
    STEPS.clear()
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(max_examples=25, stateful_step_count=15, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]),
    )
    print(dict(STEPS))
    assert {"disburse", "fee", "collect", "write_off", "reverse", "replay"} <= set(STEPS), STEPS
    # the trial balance of every MFI the examples created is zero (debits = credits), at any date
    mfis = Mfi.objects.filter(code__startswith="sm-")
    assert mfis.count() >= 1
    for mfi in mfis:
        for as_of in (dt.date(2026, 1, 4), dt.date(2026, 3, 1), dt.date(2099, 12, 31)):
            tb = trial_balance(mfi=mfi, as_of=as_of)
            assert tb.balanced and tb.difference == 0, (mfi.code, as_of)
