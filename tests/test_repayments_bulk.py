"""Set-based posting (issue #5 performance): ``repayment_post_many`` (the payroll import's path),
``journal_post_many`` and ``audit_record_many`` — on the real PostgreSQL, against the one-by-one services.

The central check: a batch posted by ``repayment_post_many`` leaves exactly what the same requests posted one by one
through ``repayment_post`` leave (installments, repayments, allocations, journal lines, loan states, credit events,
notifications, audit actions), and the statement counts stay fixed whatever the batch size.

Loans as in tests/test_repayments.py: 1000.00 at 36 %, 3 months, disbursed 2026-01-01; installments 353.53 each
(principal 323.53 / 333.24 / 343.23, interest 30.00 / 20.29 / 10.30), 1060.59 in all.
"""

from __future__ import annotations

import datetime as dt
from datetime import date
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from node.audit.models import AuditEvent
from node.audit.selectors import audit_verify_chain
from node.audit.services import AuditSpec, audit_record, audit_record_many
from node.core.errors import ApplicationError
from node.ledger import chart as C
from node.ledger.models import JournalEntry, JournalLine
from node.ledger.selectors import trial_balance
from node.ledger.services import (
    PostingEntry,
    PostingLine,
    journal_post,
    journal_post_many,
    ledger_ensure_chart,
)
from node.loans.models import Loan, LoanInstallment
from node.mfis.models import Mfi
from node.notifications.models import Notification
from node.payroll.models import PayrollImportRow
from node.payroll.services import payroll_import
from node.repayments import services as S
from node.repayments.models import Repayment, RepaymentAllocation
from replication.models import OutboxEvent
from tests.loan_fixtures import apply, disbursed, key, open_shop
from tests.test_payroll import _employer, new_borrower, result_csv, world

pytestmark = pytest.mark.django_db

D = Decimal
FAR = date(2099, 12, 31)
FEB10 = date(2026, 2, 10)


def disbursed_for(shop, borrower_user, on="2026-01-01") -> Loan:
    return Loan.objects.get(pk=disbursed(shop, on=on, expected=on, borrower_user=borrower_user))


# --- normalised views of what a posting left ------------------------------------------------------------------
def installments(loan) -> list[tuple]:
    return [(i.number, i.principal_paid, i.interest_paid, i.fees_paid, i.penalties_paid)
            for i in LoanInstallment.objects.filter(loan_id=loan.pk).order_by("number")]


def repayment_view(rep: Repayment) -> tuple:
    allocations = [(a.installment.number, a.principal, a.interest, a.fees, a.penalties)
                   for a in RepaymentAllocation.objects.filter(repayment=rep).select_related("installment")
                   .order_by("installment__number")]
    entry = JournalEntry.objects.get(source_key=f"repayment:{rep.pk}")
    assert rep.journal_entry_id == entry.pk and entry.reference_id == str(rep.pk)
    lines = sorted((ln.account.code, ln.debit, ln.credit, ln.memo.replace(rep.receipt_number, "R"))
                   for ln in entry.lines.select_related("account"))
    return (rep.amount, rep.payment_date, rep.channel, rep.reference, rep.allocation_strategy, rep.principal,
            rep.interest, rep.fees, rep.penalties, rep.overpayment, rep.outstanding_principal_after,
            rep.outstanding_interest_after, rep.outstanding_fees_after, rep.outstanding_penalties_after,
            rep.closed_loan, allocations, lines, entry.entry_date,
            entry.description.replace(rep.receipt_number, "R").replace(rep.loan.reference, "LOAN"))


def loan_view(loan) -> tuple:
    loan = Loan.objects.get(pk=loan.pk)
    events = []  # what the repayments told the network about this loan (its borrower has a loan in each set)
    for e in OutboxEvent.objects.filter(partition_key=loan.borrower.borrower_key).order_by("seq"):
        if e.event_type in ("loan.repaid", "loan.closed") and e.payload["loan_ref"] == loan.reference:
            events.append((e.event_type, {k: v for k, v in e.payload.items() if k != "loan_ref"}))
        elif e.event_type == "holds.set" and e.payload["drop"] and e.payload["drop"][0].endswith(loan.reference):
            events.append((e.event_type, len(e.payload["drop"]), e.payload["put"]))
    notes = sorted((n.kind, n.context["amount"], n.context["outstanding"], n.status)
                   for n in Notification.objects.filter(loan_id=loan.pk, kind="repayment_received"))
    audits = sorted(AuditEvent.objects.filter(target_type="loan", target_id=str(loan.pk), action="loan.close")
                    .values_list("action", flat=True))
    return (loan.status, loan.closed_at is not None, loan.days_past_due, loan.delinquency_bucket,
            installments(loan), events, notes, audits)


def outcome(result) -> tuple:
    if isinstance(result, ApplicationError):
        details = {k: v for k, v in result.details.items()}
        return ("error", result.code, result.message, details)
    return ("posted", repayment_view(result))


# --- repayment_post_many == repayment_post, request by request -------------------------------------------------
def test_a_batch_leaves_exactly_what_the_same_repayments_posted_one_by_one_leave():
    shop = open_shop(threshold="100000")
    people = [shop.borrower_user] + [new_borrower(f"Bulk{i}", f"Payer{i}")[1] for i in range(3)]
    # two identical sets of four loans, one loan of each set per borrower
    sets = [[disbursed_for(shop, u) for u in people] for _ in range(2)]
    for loans in sets:  # penalties and fees on L4's first installment, to exercise every component
        LoanInstallment.objects.filter(loan_id=loans[3].pk, number=1).update(penalties=D("15.00"), fees=D("5.00"))
    other = open_shop("other")
    foreign = Loan.objects.get(pk=apply(other, principal="1000.00", n=3))

    def requests(loans):
        L1, L2, L3, L4 = loans
        return [
            S.RepaymentRequest(L1.pk, D("100.00"), "first"),      # partial: interest 30.00 + principal 70.00
            S.RepaymentRequest(L2.pk, D("1060.59"), "payoff"),    # exact: closes L2
            S.RepaymentRequest(L1.pk, D("400.00"), "second"),     # same loan again: allocated after the first
            S.RepaymentRequest(L3.pk, D("1100.00"), "over"),      # closes L3, 39.41 held as overpayment
            S.RepaymentRequest(L2.pk, D("5.00"), "late"),         # L2 was closed by this batch: illegal_transition
            S.RepaymentRequest(L4.pk, D("0.001"), "bad"),         # validation_error, nothing written for it
            S.RepaymentRequest(L4.pk, D("50.00"), "pen"),         # penalties 15, fees 5, interest 30
            S.RepaymentRequest(foreign.pk, D("10.00"), "alien"),  # another MFI's loan: not_found
        ]

    mfi = Mfi.objects.get(pk=shop.mfi.pk)
    batch = S.repayment_post_many(actor=shop.officer, mfi=mfi, requests=requests(sets[0]), payment_date=FEB10,
                                  channel="payroll")
    one_by_one = []
    for req in requests(sets[1]):
        try:
            with transaction.atomic():
                one_by_one.append(S.repayment_post(actor=shop.officer, loan=Loan.objects.get(pk=req.loan_id),
                                                   amount=req.amount, payment_date=FEB10, channel="payroll",
                                                   reference=req.reference))
        except Loan.DoesNotExist:
            one_by_one.append(None)
        except ApplicationError as exc:
            one_by_one.append(exc)

    assert [outcome(r) for r in batch[:7]] == [outcome(r) for r in one_by_one[:7]]
    assert [r.code if isinstance(r, ApplicationError) else "posted" for r in batch] == [
        "posted", "posted", "posted", "posted", "illegal_transition", "validation_error", "posted", "not_found"]
    for a, b in zip(*sets, strict=True):
        assert loan_view(a) == loan_view(b)
    L1, L2, L3, _ = sets[0]
    assert installments(L1)[1:] == [(1, D("323.53"), D("30.00"), D("0.00"), D("0.00")),
                                    (2, D("126.18"), D("20.29"), D("0.00"), D("0.00")),
                                    (3, D("0.00"), D("0.00"), D("0.00"), D("0.00"))]
    assert Loan.objects.get(pk=L2.pk).status == Loan.objects.get(pk=L3.pk).status == "closed"
    assert batch[3].overpayment == D("39.41")
    assert (batch[6].penalties, batch[6].fees, batch[6].interest, batch[6].principal) == (
        D("15.00"), D("5.00"), D("30.00"), D("0.00"))
    # receipts follow the request order without gaps; a refused request takes no number
    numbers = [int(r.receipt_number.rsplit("-", 1)[1]) for r in batch if isinstance(r, Repayment)]
    assert numbers == list(range(numbers[0], numbers[0] + 5))
    assert not Repayment.objects.filter(reference__in=["late", "bad", "alien"], loan__in=sets[0]).exists()
    # one repayment.post (and loan.close for L2, L3) per repayment; the chain is whole; the books balance
    posted = [r.pk for r in batch if isinstance(r, Repayment)]
    assert AuditEvent.objects.filter(action="repayment.post", target_id__in=[str(p) for p in posted]).count() == 5
    assert AuditEvent.objects.filter(action="ledger.entry_post",
                                     after__source_key__in=[f"repayment:{p}" for p in posted]).count() == 5
    assert audit_verify_chain().ok
    assert trial_balance(mfi=shop.mfi, as_of=FAR).balanced


def test_one_repayment_post_is_a_fixed_number_of_statements():
    """Pinned: 15 statements inside ``repayment_post``'s own savepoint (35 before the set-based rewrite), whether
    the repayment touches one installment or three and whether it closes the loan (one more: the loan UPDATE)."""
    shop = open_shop()
    lid = disbursed_for(shop, shop.borrower_user).pk

    def statements(amount) -> list[str]:
        loan = Loan.objects.get(pk=lid)
        with CaptureQueriesContext(connection) as ctx:
            S.repayment_post(actor=shop.officer, loan=loan, amount=D(amount), payment_date=FEB10, channel="cash")
        sqls = [q["sql"] for q in ctx.captured_queries]
        assert sqls[0].startswith("SAVEPOINT") and sqls[-1].startswith("RELEASE SAVEPOINT")
        return sqls[1:-1]

    first = statements("100.00")  # installment 1 only; the MFI's first posting also creates its receipt sequence
    assert len(first) == 19 and sum("CREATE SEQUENCE" in s for s in first) == 1, "\n".join(s[:120] for s in first)
    one = statements("100.00")  # installment 1 only
    assert len(one) == 15, "\n".join(s[:120] for s in one)
    assert sum("pg_advisory_xact_lock" in s for s in one) == 1  # the chain lock once, for both audit events
    assert len(statements("300.00")) == 15  # installments 1 and 2
    assert len(statements("560.59")) == 16  # pays off the rest: + UPDATE of the loan (closed)
    assert Loan.objects.get(pk=lid).status == "closed"


# --- payroll: the batch is set-based ------------------------------------------------------------------------------
def test_payroll_posting_statements_do_not_grow_with_the_rows():
    w = world(n_gov=4)
    shop, L = w.shop, w.loans

    def import_statements(rows, month) -> tuple[int, object]:
        with CaptureQueriesContext(connection) as ctx:
            result = payroll_import(actor=shop.admin, employer=_employer(w.gov), month=month,
                                    content=result_csv(*rows), batch_size=500)
        return len(ctx.captured_queries), result.payroll_import

    n1, imp1 = import_statements([f"GOV-002,{L['L2'].reference},100.00,partial,"], date(2026, 7, 1))
    n3, imp3 = import_statements([f"GOV-00{i},{L[f'L{i}'].reference},100.00,partial," for i in (1, 3, 4)],
                                 date(2026, 7, 1))
    assert (imp1.posted, imp3.posted) == (1, 3)
    assert n1 == n3, (n1, n3)
    assert trial_balance(mfi=shop.mfi, as_of=FAR).balanced
    assert audit_verify_chain().ok


def test_payroll_batch_falls_back_to_row_by_row_when_the_database_refuses_it(monkeypatch):
    """Should the set-based batch ever hit a constraint, the batch is posted again row by row (a savepoint each):
    the same report as the set-based path would give."""
    from node.payroll import services as P

    w = world(n_gov=3)
    shop, L = w.shop, w.loans
    calls = []

    def refuse(*args, **kwargs):
        calls.append(1)
        raise IntegrityError("forced")

    monkeypatch.setattr(P, "_post_batch", refuse)
    result = payroll_import(actor=shop.admin, employer=_employer(w.gov), month=date(2026, 7, 1), content=result_csv(
        f"GOV-001,{L['L1'].reference},50.00,partial,", f"GOV-002,{L['L2'].reference},60.00,partial,"))
    assert calls == [1]
    rows = list(PayrollImportRow.objects.filter(payroll_import=result.payroll_import).order_by("row_number")
                .values_list("row_number", "outcome", "receipt_number"))
    R = shop.mfi.code.upper() + "-R-"
    assert rows == [(2, "posted", R + "00000002"), (3, "posted", R + "00000003")]
    assert trial_balance(mfi=shop.mfi, as_of=FAR).balanced


# --- journal_post_many ----------------------------------------------------------------------------------------
@pytest.fixture
def mfi():
    m = Mfi.objects.create(code=f"bulk-{key()[:6]}", name="Bulk MFI", home_district="maseru")
    ledger_ensure_chart(mfi=m)
    return m


def entry(amount, source_key=None, day=dt.date(2026, 3, 2), ref="1") -> PostingEntry:
    return PostingEntry(entry_date=day, description=f"bulk {amount}", reference_type="test", reference_id=ref,
                        source_key=source_key, lines=[PostingLine(C.CASH, debit=D(amount)),
                                                      PostingLine(C.FUND_CAPITAL, credit=D(amount))])


def counts():
    return JournalEntry.objects.count(), JournalLine.objects.count(), AuditEvent.objects.count()


def test_journal_post_many_posts_balanced_entries_with_their_audit_events(mfi):
    keys = [f"bulk:{key()}" for _ in range(3)]
    with CaptureQueriesContext(connection) as ctx:
        entries = journal_post_many(mfi=mfi, entries=[entry("10.00", keys[0]), entry("20.00"), entry("30.00", keys[1]),
                                                      entry("40.00", keys[2])])
    assert len(ctx.captured_queries) == 7  # accounts, entries, lines, trigger check, chain lock, chain head, audit
    assert [e.description for e in entries] == ["bulk 10.00", "bulk 20.00", "bulk 30.00", "bulk 40.00"]
    assert [e.source_key for e in entries] == [keys[0], None, keys[1], keys[2]]
    for e, amount in zip(entries, ("10.00", "20.00", "30.00", "40.00"), strict=True):
        e.refresh_from_db()
        assert sorted((ln.account.code, ln.debit, ln.credit) for ln in e.lines.select_related("account")) == [
            (C.CASH, D(amount), D("0.00")), (C.FUND_CAPITAL, D("0.00"), D(amount))]
        audit = AuditEvent.objects.get(action="ledger.entry_post", target_id=str(e.pk))
        assert audit.after["lines"] == [{"account": C.CASH, "debit": amount, "credit": "0.00"},
                                        {"account": C.FUND_CAPITAL, "debit": "0.00", "credit": amount}]
    assert trial_balance(mfi=mfi, as_of=FAR).row(C.CASH).balance == D("100.00")
    assert audit_verify_chain().ok

    # replay: the same postings under the same keys answer the first entries and write nothing
    before = counts()
    again = journal_post_many(mfi=mfi, entries=[entry("10.00", keys[0]), entry("40.00", keys[2])])
    assert [e.pk for e in again] == [entries[0].pk, entries[3].pk] and counts() == before
    # a key given twice in one call is one posting; the same key for another posting is refused, nothing written
    k = f"bulk:{key()}"
    twice = journal_post_many(mfi=mfi, entries=[entry("5.00", k), entry("5.00", k)])
    assert twice[0].pk == twice[1].pk and JournalEntry.objects.filter(source_key=k).count() == 1
    before = counts()
    for bad in ([entry("11.00", keys[0])], [entry("1.00", "x:1"), entry("2.00", "x:1")]):
        with pytest.raises(ApplicationError) as info, transaction.atomic():  # the caller's transaction rolls back
            journal_post_many(mfi=mfi, entries=bad)
        assert info.value.code == "idempotency_key_reused"
    assert counts() == before


def test_journal_post_many_refuses_like_journal_post_and_writes_nothing(mfi):
    unbalanced = PostingEntry(entry_date=dt.date(2026, 3, 2), description="x", lines=[
        PostingLine(C.CASH, debit=D("10.00")), PostingLine(C.FUND_CAPITAL, credit=D("9.00"))])
    unknown = PostingEntry(entry_date=dt.date(2026, 3, 2), description="x", lines=[
        PostingLine(C.CASH, debit=D("10.00")), PostingLine("9999", credit=D("10.00"))])
    no_description = PostingEntry(entry_date=dt.date(2026, 3, 2), description=" ", lines=entry("1.00").lines)
    before = counts()
    for bad, code in ((unbalanced, "unbalanced_entry"), (unknown, "unknown_account"),
                      (no_description, "validation_error")):
        with pytest.raises(ApplicationError) as info:
            journal_post_many(mfi=mfi, entries=[entry("1.00"), bad])
        assert info.value.code == code
    assert counts() == before


def test_database_takes_lines_for_every_entry_of_the_latest_insert_and_no_other(mfi):
    """Migration ledger 0003: lines may reference the entries of the transaction's latest INSERT into entries."""
    cash, capital = (mfi.ledger_accounts.get(code=c) for c in (C.CASH, C.FUND_CAPITAL))
    earlier = journal_post(mfi=mfi, entry_date=dt.date(2026, 3, 2), description="earlier", lines=entry("1.00").lines)
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("INSERT INTO ledger_journalentry (mfi_id, entry_date, posted_at, description, reference_type, "
                    "reference_id, currency) SELECT %s, '2026-03-02', now(), 'raw', '', '', 'LSL' "
                    "FROM generate_series(1, 2) RETURNING id", [mfi.pk])
        a, b = (row[0] for row in cur.fetchall())
        cur.execute("INSERT INTO ledger_journalline (entry_id, account_id, debit, credit, memo) VALUES "
                    "(%s, %s, 3, 0, ''), (%s, %s, 0, 3, ''), (%s, %s, 4, 0, ''), (%s, %s, 0, 4, '')",
                    [a, cash.pk, a, capital.pk, b, cash.pk, b, capital.pk])
        cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cur.execute("SET CONSTRAINTS ALL DEFERRED")
    with pytest.raises(IntegrityError, match=rf"ledger entry {earlier.pk} is closed"), transaction.atomic(), \
            connection.cursor() as cur:
        cur.execute("INSERT INTO ledger_journalline (entry_id, account_id, debit, credit, memo) VALUES "
                    "(%s, %s, 1, 0, '')", [earlier.pk, cash.pk])


# --- audit_record_many ------------------------------------------------------------------------------------------
def test_audit_record_many_chains_like_one_by_one(mfi):
    first = audit_record(actor=None, action="test.one", target_type="thing", target_id=1, after={"b": 1, "a": [1.50]})
    events = audit_record_many(actor=None, events=[
        AuditSpec(action="test.many", target_type="thing", target_id=i, mfi_id=mfi.pk,
                  before=None if i % 2 else {"i": i}, after={"z": i, "a": "x"}) for i in range(5)])
    last = audit_record(actor=None, action="test.after", target_type="thing")
    assert [seq for seq, _ in events] == list(range(first.seq + 1, first.seq + 6)) and last.seq == first.seq + 6
    assert AuditEvent.objects.get(seq=events[0][0]).prev_hash == first.hash and last.prev_hash == events[-1][1]
    stored = AuditEvent.objects.get(seq=events[2][0])
    assert (stored.before, stored.after, stored.mfi_id, stored.target_id) == ({"i": 2}, {"a": "x", "z": 2}, mfi.pk,
                                                                              "2")
    assert audit_record_many(actor=None, events=[]) == []
    with pytest.raises(ValueError):
        audit_record_many(actor=None, events=[AuditSpec(action="", target_type="thing")])
    assert audit_verify_chain().ok
