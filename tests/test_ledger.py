"""The general ledger (node.ledger) on the real test PostgreSQL: worked examples, trial balance and statements,
the posting service's refusals, the database's own enforcement (balanced entries at COMMIT, append-only rows),
reversals, idempotent replay, tenancy, the API and the ``trial_balance`` command.

Every test runs in pytest-django's per-test transaction, which is rolled back. The deferred balance triggers
would fire at COMMIT; inside that transaction a test reaches them with ``SET CONSTRAINTS ALL IMMEDIATE`` (what
COMMIT does) within a savepoint, and one test commits for real on a separate connection. At the end of every
test Django's teardown fires all deferred checks again, so every test also proves its ledger balanced.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, InternalError, connection, transaction
from django.db.models import ProtectedError
from django.utils import timezone
from rest_framework.test import APIClient

from node.audit.models import AuditEvent
from node.core.errors import ApplicationError
from node.ledger import chart as C
from node.ledger.models import Account, AccountType, JournalEntry, JournalLine, NormalBalance
from node.ledger.selectors import account_statement, trial_balance
from node.ledger.services import (
    PostingLine,
    journal_post,
    journal_reverse,
    ledger_account_create,
    ledger_account_set_active,
    ledger_ensure_chart,
)
from node.mfis.models import Mfi
from node.users.models import Role, User
from node.users.tokens import access_token_for

pytestmark = pytest.mark.django_db

D = Decimal
MAR1, MAR2, MAR31 = dt.date(2026, 3, 1), dt.date(2026, 3, 2), dt.date(2026, 3, 31)
APR1, APR6, APR20, APR30 = dt.date(2026, 4, 1), dt.date(2026, 4, 6), dt.date(2026, 4, 20), dt.date(2026, 4, 30)
MAY15, MAY31 = dt.date(2026, 5, 15), dt.date(2026, 5, 31)
APPEND_ONLY = "is append-only"


def dr(code: str, amount: str, memo: str = "") -> PostingLine:
    return PostingLine(code, debit=D(amount), memo=memo)


def cr(code: str, amount: str, memo: str = "") -> PostingLine:
    return PostingLine(code, credit=D(amount), memo=memo)


def post(mfi, day, *lines, description="posting", **kwargs) -> JournalEntry:
    return journal_post(mfi=mfi, entry_date=day, lines=list(lines), description=description, **kwargs)


def new_mfi(code: str | None = None) -> Mfi:
    return Mfi.objects.create(code=code or f"mfi-{uuid.uuid4().hex[:8]}", name="Test MFI", home_district="maseru")


@pytest.fixture
def mfi():
    m = new_mfi("alpha-credit")
    ledger_ensure_chart(mfi=m)
    return m


@pytest.fixture
def other_mfi():
    m = new_mfi("beta-lending")
    ledger_ensure_chart(mfi=m)
    return m


def counts() -> tuple[int, int, int]:
    return JournalEntry.objects.count(), JournalLine.objects.count(), AuditEvent.objects.count()


def refused(code: str, fn, status: int | None = None) -> ApplicationError:
    before = counts()
    with pytest.raises(ApplicationError) as info:
        fn()
    assert info.value.code == code, (info.value.code, info.value.message)
    if status is not None:
        assert info.value.status == status
    assert counts() == before, "a refused posting writes nothing"
    return info.value


# --- chart of accounts -------------------------------------------------------------------------------------------

def test_chart_has_the_stable_standard_codes_and_is_idempotent():
    m = new_mfi()
    first = ledger_ensure_chart(mfi=m)
    assert set(first) == {"1000", "1100", "1190", "1200", "1300", "1400", "2100", "2150", "3000", "4000", "4100",
                          "4200", "4300", "5000", "5100"}
    assert (C.CASH, C.LOAN_PORTFOLIO, C.INTEREST_RECEIVABLE, C.FEE_RECEIVABLE, C.PENALTY_RECEIVABLE,
            C.LOAN_LOSS_PROVISION, C.OVERPAYMENT_LIABILITY, C.FUND_CAPITAL, C.INTEREST_INCOME, C.FEE_INCOME,
            C.PENALTY_INCOME, C.WRITE_OFF_EXPENSE, C.PROVISION_EXPENSE) == (
            "1000", "1100", "1200", "1300", "1400", "1190", "2100", "3000", "4000", "4100", "4200", "5000", "5100")
    audits = AuditEvent.objects.filter(action="ledger.chart_ensure").count()
    second = ledger_ensure_chart(mfi=m)
    assert {c: a.pk for c, a in first.items()} == {c: a.pk for c, a in second.items()}
    assert Account.objects.filter(mfi=m).count() == 15
    assert AuditEvent.objects.filter(action="ledger.chart_ensure").count() == audits, "nothing new, nothing audited"
    # normal balances derive from the type; the provision is a contra-asset
    assert first[C.CASH].normal_balance == NormalBalance.DEBIT
    assert first[C.WRITE_OFF_EXPENSE].normal_balance == NormalBalance.DEBIT
    assert first[C.OVERPAYMENT_LIABILITY].normal_balance == NormalBalance.CREDIT
    assert first[C.FUND_CAPITAL].type == AccountType.EQUITY and first[C.FUND_CAPITAL].normal_balance == "CREDIT"
    assert first[C.FEE_INCOME].normal_balance == NormalBalance.CREDIT
    provision = first[C.LOAN_LOSS_PROVISION]
    assert provision.type == AccountType.ASSET and provision.is_contra and provision.normal_balance == "CREDIT"


def test_chart_completes_a_partial_chart_and_refuses_a_conflicting_one():
    m = new_mfi()
    Account.objects.create(mfi=m, code=C.CASH, name="Our cash", type=AccountType.ASSET)
    chart = ledger_ensure_chart(mfi=m)
    assert chart[C.CASH].name == "Our cash" and len(chart) == 15
    n = new_mfi()
    Account.objects.create(mfi=n, code=C.FEE_INCOME, name="wrong", type=AccountType.LIABILITY)
    with pytest.raises(ApplicationError) as info:
        ledger_ensure_chart(mfi=n)
    assert info.value.code == "chart_conflict"


# --- worked examples ---------------------------------------------------------------------------------------------

def book_worked_example(mfi) -> dict[str, JournalEntry]:
    """A small MFI's first quarter. Posted out of date order on purpose (statements sort by business date)."""
    e = {}
    e["capital"] = post(mfi, MAR1, dr(C.CASH, "100000.00"), cr(C.FUND_CAPITAL, "100000.00"),
                        description="Founders' capital")
    e["disburse1"] = post(mfi, MAR2, dr(C.LOAN_PORTFOLIO, "5000.00"), cr(C.CASH, "5000.00"),
                          description="Disbursement loan 1", reference_type="loan", reference_id=1)
    e["fee1"] = post(mfi, MAR2, dr(C.CASH, "150.00"), cr(C.FEE_INCOME, "150.00"),
                     description="Processing fee at disbursement, loan 1", reference_type="loan", reference_id=1)
    e["accrual1"] = post(mfi, MAR31, dr(C.INTEREST_RECEIVABLE, "250.00"), cr(C.INTEREST_INCOME, "250.00"),
                         description="Interest accrual March, loan 1", reference_type="loan", reference_id=1)
    e["penalty1"] = post(mfi, dt.date(2026, 4, 5), dr(C.PENALTY_RECEIVABLE, "20.00"), cr(C.PENALTY_INCOME, "20.00"),
                         description="Late penalty, loan 1", reference_type="loan", reference_id=1)
    e["repay1"] = post(mfi, APR6, dr(C.CASH, "1300.00"), cr(C.PENALTY_RECEIVABLE, "20.00"),
                       cr(C.INTEREST_RECEIVABLE, "250.00"), cr(C.LOAN_PORTFOLIO, "1030.00"),
                       description="Repayment, loan 1", reference_type="loan", reference_id=1)
    e["repay2"] = post(mfi, APR20, dr(C.CASH, "4000.00"), cr(C.LOAN_PORTFOLIO, "3970.00"),
                       cr(C.OVERPAYMENT_LIABILITY, "30.00"), description="Final repayment with overpayment, loan 1",
                       reference_type="loan", reference_id=1)
    e["disburse2"] = post(mfi, APR1, dr(C.LOAN_PORTFOLIO, "2000.00"), cr(C.CASH, "2000.00"),
                          description="Disbursement loan 2", reference_type="loan", reference_id=2)
    e["provision2"] = post(mfi, APR30, dr(C.PROVISION_EXPENSE, "1000.00"), cr(C.LOAN_LOSS_PROVISION, "1000.00"),
                           description="Provision 50%, loan 2", reference_type="loan", reference_id=2)
    e["writeoff2"] = post(mfi, MAY15, dr(C.LOAN_LOSS_PROVISION, "1000.00"), dr(C.WRITE_OFF_EXPENSE, "1000.00"),
                          cr(C.LOAN_PORTFOLIO, "2000.00"), description="Write-off, loan 2",
                          reference_type="loan", reference_id=2)
    return e


def balances(tb) -> dict[str, Decimal]:
    return {r.code: r.balance for r in tb.rows}


def test_worked_example_disbursement_fee_accrual_repayment_overpayment_provision_write_off(mfi):
    entries = book_worked_example(mfi)
    disb = entries["disburse1"]
    assert [(line.account.code, line.debit, line.credit) for line in disb.lines.order_by("id")] == [
        ("1100", D("5000.00"), D("0.00")), ("1000", D("0.00"), D("5000.00"))]
    assert (disb.reference_type, disb.reference_id, disb.currency, disb.entry_date) == ("loan", "1", "LSL", MAR2)

    tb = trial_balance(mfi=mfi, as_of=MAY31)
    assert balances(tb) == {
        "1000": D("98450.00"),  # 100000 - 5000 + 150 + 1300 + 4000 - 2000
        "1100": D("0.00"), "1190": D("0.00"), "1200": D("0.00"), "1300": D("0.00"), "1400": D("0.00"),
        "2100": D("30.00"), "2150": D("0.00"), "3000": D("100000.00"),
        "4000": D("250.00"), "4100": D("150.00"), "4200": D("20.00"), "4300": D("0.00"),
        "5000": D("1000.00"), "5100": D("1000.00"),
    }
    assert tb.total_debit == tb.total_credit == D("115720.00")
    assert tb.balanced and tb.difference == 0 and tb.currency == "LSL"
    # assets = liabilities + equity + income - expenses
    assert D("98450.00") == D("30.00") + D("100000.00") + D("420.00") - D("2000.00")
    portfolio = tb.row("1100")
    assert (portfolio.debit, portfolio.credit, portfolio.debit_balance, portfolio.credit_balance) == (
        D("7000.00"), D("7000.00"), 0, 0)
    assert tb.row("2100").credit_balance == D("30.00") and tb.row("1000").debit_balance == D("98450.00")

    # as of the end of April: loan 2 still on the books, half provisioned (the contra-asset shows a credit balance)
    april = trial_balance(mfi=mfi, as_of=APR30)
    assert april.balanced
    assert balances(april)["1100"] == D("2000.00") and balances(april)["1190"] == D("1000.00")
    assert balances(april)["5000"] == 0 and balances(april)["5100"] == D("1000.00")
    assert april.row("1190").credit_balance == D("1000.00")
    # before anything was posted: every account at zero, still balanced
    empty = trial_balance(mfi=mfi, as_of=dt.date(2026, 2, 28))
    assert empty.balanced and empty.total_debit == 0 and set(balances(empty).values()) == {D("0.00")}


def test_trial_balance_is_one_query_and_per_mfi(mfi, other_mfi, django_assert_num_queries):
    book_worked_example(mfi)
    post(other_mfi, MAR2, dr(C.LOAN_PORTFOLIO, "700.00"), cr(C.CASH, "700.00"))
    with django_assert_num_queries(1):
        tb = trial_balance(mfi=other_mfi, as_of=MAY31)
    assert tb.total_debit == D("700.00") and tb.balanced
    assert balances(tb)["1100"] == D("700.00") and balances(tb)["1000"] == D("-700.00")


def test_statement_of_cash_has_opening_running_and_closing_balances(mfi, django_assert_num_queries):
    book_worked_example(mfi)
    with django_assert_num_queries(3):
        st = account_statement(mfi=mfi, account_code=C.CASH, date_from=APR1, date_to=APR30)
    assert st.opening_balance == D("95150.00")  # 100000 - 5000 + 150 up to March 31
    assert [(s.entry_date, s.debit, s.credit, s.balance, s.reference_id) for s in st.lines] == [
        (APR1, D("0.00"), D("2000.00"), D("93150.00"), "2"),
        (APR6, D("1300.00"), D("0.00"), D("94450.00"), "1"),
        (APR20, D("4000.00"), D("0.00"), D("98450.00"), "1"),
    ]
    assert st.lines[0].description == "Disbursement loan 2" and st.lines[0].reference_type == "loan"
    assert (st.total_debit, st.total_credit, st.closing_balance) == (D("5300.00"), D("2000.00"), D("98450.00"))
    assert st.closing_balance == trial_balance(mfi=mfi, as_of=APR30).row(C.CASH).balance


def test_statement_of_credit_normal_and_contra_accounts(mfi):
    book_worked_example(mfi)
    fees = account_statement(mfi=mfi, account_code=C.FEE_INCOME, date_from=MAR1, date_to=MAY31)
    assert fees.opening_balance == 0 and [s.balance for s in fees.lines] == [D("150.00")]
    provision = account_statement(mfi=mfi, account_code=C.LOAN_LOSS_PROVISION, date_from=APR1, date_to=MAY31)
    assert [(s.debit, s.credit, s.balance) for s in provision.lines] == [
        (D("0.00"), D("1000.00"), D("1000.00")), (D("1000.00"), D("0.00"), D("0.00"))]
    assert provision.closing_balance == 0
    # same-day lines keep posting order; the window is inclusive at both ends
    day = account_statement(mfi=mfi, account_code=C.CASH, date_from=MAR2, date_to=MAR2)
    assert day.opening_balance == D("100000.00")
    assert [s.balance for s in day.lines] == [D("95000.00"), D("95150.00")]
    empty = account_statement(mfi=mfi, account_code=C.CASH, date_from=dt.date(2026, 6, 1), date_to=dt.date(2026, 6, 30))
    assert empty.lines == [] and empty.opening_balance == empty.closing_balance == D("98450.00")
    with pytest.raises(ApplicationError) as info:
        account_statement(mfi=mfi, account_code=C.CASH, date_from=APR30, date_to=APR1)
    assert info.value.code == "validation_error" and "from" in info.value.details["fields"]
    with pytest.raises(ApplicationError) as info:
        account_statement(mfi=mfi, account_code="9999", date_from=APR1, date_to=APR30)
    assert info.value.code == "not_found"


# --- the posting service -----------------------------------------------------------------------------------------

def test_post_writes_entry_lines_and_audit_event_together(mfi):
    officer = User.objects.create(username="officer-1", role=Role.LOAN_OFFICER, mfi=mfi)
    entry = post(mfi, MAR2, dr(C.LOAN_PORTFOLIO, "5000", memo="principal"), cr(C.CASH, "5000.00"),
                 description="Disbursement", reference_type="loan", reference_id="42", actor=officer,
                 source_key="loan:42:disburse")
    assert entry.created_by == officer and entry.source_key == "loan:42:disburse" and entry.posted_at
    assert entry.lines.get(account__code=C.LOAN_PORTFOLIO).memo == "principal"
    event = AuditEvent.objects.get(action="ledger.entry_post", target_id=str(entry.pk))
    assert event.target_type == "journal_entry" and event.mfi_id == mfi.pk and event.actor_id == officer.pk
    assert event.after["lines"] == [{"account": "1100", "debit": "5000.00", "credit": "0.00"},
                                    {"account": "1000", "debit": "0.00", "credit": "5000.00"}]
    assert event.after["source_key"] == "loan:42:disburse" and event.after["reference_id"] == "42"


def test_post_rolls_back_with_the_callers_transaction(mfi):
    before = counts()
    with pytest.raises(RuntimeError), transaction.atomic():
        post(mfi, MAR2, dr(C.LOAN_PORTFOLIO, "10.00"), cr(C.CASH, "10.00"))
        raise RuntimeError("the disbursement fails later")
    assert counts() == before


def test_empty_and_one_line_entries_are_refused(mfi):
    refused("empty_entry", lambda: post(mfi, MAR2), status=400)
    refused("empty_entry", lambda: post(mfi, MAR2, dr(C.CASH, "10.00")))


@pytest.mark.parametrize("bad", [
    pytest.param(10.0, id="float"), pytest.param(10, id="int"), pytest.param("10.00", id="str"),
    pytest.param(D("10.005"), id="three-places"), pytest.param(D("-10.00"), id="negative"),
    pytest.param(D("NaN"), id="nan"), pytest.param(D("Infinity"), id="infinity"),
    pytest.param(D("1E18"), id="too-large"), pytest.param(True, id="bool"),
])
def test_invalid_amounts_are_refused(mfi, bad):
    bad_line = PostingLine(C.CASH, debit=bad)
    err = refused("invalid_amount", lambda: post(mfi, MAR2, bad_line, cr(C.FUND_CAPITAL, "10.00")))
    assert err.details["line"] == 0


def test_a_line_needs_exactly_one_side(mfi):
    both = PostingLine(C.CASH, debit=D("5.00"), credit=D("5.00"))
    refused("invalid_amount", lambda: post(mfi, MAR2, both, dr(C.FEE_INCOME, "1.00"), cr(C.FEE_INCOME, "1.00")))
    neither = PostingLine(C.CASH)
    refused("invalid_amount", lambda: post(mfi, MAR2, dr(C.CASH, "1.00"), cr(C.FEE_INCOME, "1.00"), neither))


def test_unbalanced_entry_is_refused_by_the_service(mfi):
    err = refused("unbalanced_entry", lambda: post(mfi, MAR2, dr(C.LOAN_PORTFOLIO, "5000.00"), cr(C.CASH, "4999.99")))
    assert err.details == {"debit": "5000.00", "credit": "4999.99"}
    refused("unbalanced_entry", lambda: post(mfi, MAR2, dr(C.CASH, "1.00"), dr(C.LOAN_PORTFOLIO, "1.00")))


def test_unknown_inactive_and_other_mfis_accounts_are_refused(mfi, other_mfi):
    err = refused("unknown_account", lambda: post(mfi, MAR2, dr("9999", "1.00"), cr(C.CASH, "1.00")))
    assert err.details["account_codes"] == ["9999"]
    # an account only the other MFI has cannot be named from this MFI's postings
    ledger_account_create(mfi=other_mfi, code="1500", name="Mobile money float", type=AccountType.ASSET)
    refused("unknown_account", lambda: post(mfi, MAR2, dr("1500", "1.00"), cr(C.CASH, "1.00")))
    post(other_mfi, MAR2, dr("1500", "1.00"), cr(C.CASH, "1.00"))
    # an MFI with no chart yet has no accounts at all
    bare = new_mfi()
    refused("unknown_account", lambda: post(bare, MAR2, dr(C.CASH, "1.00"), cr(C.FUND_CAPITAL, "1.00")))
    # deactivated: no new postings, history kept
    account = Account.objects.get(mfi=mfi, code=C.PENALTY_INCOME)
    ledger_account_set_active(account=account, is_active=False)
    refused("inactive_account", lambda: post(mfi, MAR2, dr(C.CASH, "1.00"), cr(C.PENALTY_INCOME, "1.00")))


def test_header_fields_are_validated(mfi):
    lines = (dr(C.CASH, "1.00"), cr(C.FUND_CAPITAL, "1.00"))
    err = refused("validation_error", lambda: post(mfi, timezone.now(), *lines))
    assert "entry_date" in err.details["fields"]
    refused("validation_error", lambda: post(mfi, MAR2, *lines, description=" "))
    refused("validation_error", lambda: post(mfi, MAR2, *lines, description="x" * 256))
    refused("validation_error", lambda: post(mfi, MAR2, *lines, source_key=""))
    refused("validation_error", lambda: post(mfi, MAR2, dr(C.CASH, "1.00", memo="m" * 256), cr(C.FUND_CAPITAL, "1.00")))


def test_staff_of_another_mfi_cannot_post(mfi, other_mfi):
    stranger = User.objects.create(username="other-officer", role=Role.LOAN_OFFICER, mfi=other_mfi)
    refused("permission_denied", lambda: post(mfi, MAR2, dr(C.CASH, "1.00"), cr(C.FUND_CAPITAL, "1.00"),
                                               actor=stranger), status=403)


# --- idempotent replay -------------------------------------------------------------------------------------------

def test_replay_with_the_same_source_key_returns_the_first_entry_and_posts_nothing(mfi):
    first = post(mfi, MAR2, dr(C.LOAN_PORTFOLIO, "5000.00"), cr(C.CASH, "5000.00"), reference_type="loan",
                 reference_id=42, source_key="loan:42:disburse")
    before = counts()
    again = post(mfi, MAR2, cr(C.CASH, "5000"), dr(C.LOAN_PORTFOLIO, "5000.00", memo="retry"),
                 description="a retry may word it differently", reference_type="loan", reference_id="42",
                 source_key="loan:42:disburse")
    assert again.pk == first.pk and counts() == before


def test_a_post_that_loses_the_race_for_its_source_key_is_answered_like_a_replay(mfi, monkeypatch):
    """Two concurrent posts with one key: the loser finds no entry, then hits the unique index once the winner
    has committed; it must answer like a replay (or a conflict), never post twice. Simulated deterministically:
    the first look-up misses."""
    from node.ledger import services

    lines = (dr(C.LOAN_PORTFOLIO, "100.00"), cr(C.CASH, "100.00"))
    first = post(mfi, MAR2, *lines, source_key="loan:9:disburse")
    real, calls = services._replay, []

    def first_lookup_misses(source_key, fingerprint):
        calls.append(source_key)
        return None if len(calls) % 2 == 1 else real(source_key, fingerprint)

    monkeypatch.setattr(services, "_replay", first_lookup_misses)
    before = counts()
    assert post(mfi, MAR2, *lines, source_key="loan:9:disburse").pk == first.pk
    assert counts() == before and len(calls) == 2
    refused("idempotency_key_reused", lambda: post(mfi, MAR2, dr(C.LOAN_PORTFOLIO, "1.00"), cr(C.CASH, "1.00"),
                                                   source_key="loan:9:disburse"))
    assert len(calls) == 4


@pytest.mark.parametrize("change", ["amount", "account", "date", "reference", "mfi"])
def test_replay_of_a_different_posting_is_a_conflict(mfi, other_mfi, change):
    post(mfi, MAR2, dr(C.LOAN_PORTFOLIO, "5000.00"), cr(C.CASH, "5000.00"), reference_type="loan",
         reference_id=42, source_key="loan:42:disburse")
    args = {"mfi": mfi, "day": MAR2, "lines": [dr(C.LOAN_PORTFOLIO, "5000.00"), cr(C.CASH, "5000.00")],
            "reference_id": 42}
    if change == "amount":
        args["lines"] = [dr(C.LOAN_PORTFOLIO, "5000.01"), cr(C.CASH, "5000.01")]
    elif change == "account":
        args["lines"] = [dr(C.FEE_RECEIVABLE, "5000.00"), cr(C.CASH, "5000.00")]
    elif change == "date":
        args["day"] = MAR31
    elif change == "reference":
        args["reference_id"] = 43
    else:
        args["mfi"] = other_mfi
    err = refused("idempotency_key_reused", lambda: post(args["mfi"], args["day"], *args["lines"],
                                                         reference_type="loan", reference_id=args["reference_id"],
                                                         source_key="loan:42:disburse"), status=409)
    assert err.details["source_key"] == "loan:42:disburse" and err.details["differs_in"]


# --- reversals ---------------------------------------------------------------------------------------------------

def test_reversal_swaps_every_line_and_restores_the_balances(mfi):
    admin = User.objects.create(username="admin-1", role=Role.MFI_ADMIN, mfi=mfi)
    post(mfi, MAR1, dr(C.CASH, "1000.00"), cr(C.FUND_CAPITAL, "1000.00"))
    before = balances(trial_balance(mfi=mfi, as_of=MAY31))
    wrong = post(mfi, MAR2, dr(C.LOAN_PORTFOLIO, "500.00"), dr(C.FEE_RECEIVABLE, "25.00"), cr(C.CASH, "500.00"),
                 cr(C.FEE_INCOME, "25.00"), reference_type="loan", reference_id=7)
    reversal = journal_reverse(entry=wrong, actor=admin, reason="posted to the wrong loan", entry_date=MAR31)
    assert reversal.reverses == wrong and wrong.reversed_by == reversal
    assert (reversal.reference_type, reversal.reference_id, reversal.entry_date) == ("loan", "7", MAR31)
    assert "posted to the wrong loan" in reversal.description and reversal.created_by == admin
    swapped = sorted((line.account.code, line.debit, line.credit) for line in reversal.lines.all())
    assert swapped == sorted((line.account.code, line.credit, line.debit) for line in wrong.lines.all())
    assert balances(trial_balance(mfi=mfi, as_of=MAY31)) == before
    # the original stays in the books as it was: history before the reversal date still shows it
    assert balances(trial_balance(mfi=mfi, as_of=MAR2))[C.LOAN_PORTFOLIO] == D("500.00")
    event = AuditEvent.objects.get(action="ledger.entry_reverse", target_id=str(reversal.pk))
    assert event.after["reverses"] == wrong.pk and event.actor_id == admin.pk


def test_an_entry_is_reversed_at_most_once_and_a_reversal_is_not_reversible(mfi):
    entry = post(mfi, MAR2, dr(C.LOAN_PORTFOLIO, "500.00"), cr(C.CASH, "500.00"))
    reversal = journal_reverse(entry=entry, actor=None, reason="duplicate", entry_date=MAR2)
    err = refused("already_reversed", lambda: journal_reverse(entry=entry, actor=None, reason="again"), status=409)
    assert err.details == {"entry_id": entry.pk, "reversed_by": reversal.pk}
    refused("reversal_not_reversible", lambda: journal_reverse(entry=reversal, actor=None, reason="undo"), status=409)


def test_reversal_date_reason_and_mirror_are_checked(mfi):
    entry = post(mfi, MAR31, dr(C.LOAN_PORTFOLIO, "500.00"), cr(C.CASH, "500.00"))
    refused("invalid_reversal_date", lambda: journal_reverse(entry=entry, actor=None, reason="x", entry_date=MAR2))
    refused("validation_error", lambda: journal_reverse(entry=entry, actor=None, reason="  "))
    # journal_post with `reverses` must mirror the entry exactly
    refused("reversal_mismatch", lambda: post(mfi, MAR31, dr(C.CASH, "499.00"), cr(C.LOAN_PORTFOLIO, "499.00"),
                                              reverses=entry))
    refused("reversal_mismatch", lambda: post(mfi, MAR31, dr(C.LOAN_PORTFOLIO, "500.00"), cr(C.CASH, "500.00"),
                                              reverses=entry))
    # default date: today's business date, or the original's if that is later
    future = post(mfi, timezone.localdate() + dt.timedelta(days=10), dr(C.CASH, "1.00"), cr(C.FUND_CAPITAL, "1.00"))
    assert journal_reverse(entry=future, actor=None, reason="r").entry_date == future.entry_date
    assert journal_reverse(entry=entry, actor=None, reason="r").entry_date == max(timezone.localdate(), MAR31)


def test_a_reversal_can_be_replayed_by_its_source_key(mfi):
    entry = post(mfi, MAR2, dr(C.LOAN_PORTFOLIO, "500.00"), cr(C.CASH, "500.00"))
    reversal = journal_reverse(entry=entry, actor=None, reason="r", entry_date=MAR2, source_key=f"rev:{entry.pk}")
    before = counts()
    assert journal_reverse(entry=entry, actor=None, reason="r", entry_date=MAR2,
                           source_key=f"rev:{entry.pk}").pk == reversal.pk
    assert counts() == before


# --- the database's own enforcement ------------------------------------------------------------------------------

def raw_entry(cur, mfi, *, reverses_id=None) -> int:
    cur.execute(
        "INSERT INTO ledger_journalentry (mfi_id, entry_date, posted_at, description, reference_type, reference_id,"
        " currency, reverses_id) VALUES (%s, %s, now(), 'raw sql', '', '', 'LSL', %s) RETURNING id",
        [mfi.pk, MAR2, reverses_id],
    )
    return cur.fetchone()[0]


def raw_line(cur, entry_id, account, debit="0", credit="0") -> None:
    cur.execute("INSERT INTO ledger_journalline (entry_id, account_id, debit, credit, memo)"
                " VALUES (%s, %s, %s, %s, '')", [entry_id, account.pk, D(debit), D(credit)])


def acct(mfi, code) -> Account:
    return Account.objects.get(mfi=mfi, code=code)


def at_commit_refused(statements, match, exc=IntegrityError):
    """Run raw SQL in a savepoint, then fire the deferred checks as COMMIT would: refused, nothing kept."""
    before = counts()
    with pytest.raises(exc, match=match), transaction.atomic(), connection.cursor() as cur:
        statements(cur)
        cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
    with connection.cursor() as cur:
        cur.execute("SET CONSTRAINTS ALL DEFERRED")
    assert counts() == before


def test_database_refuses_unbalanced_and_short_entries_at_commit(mfi):
    cash, capital = acct(mfi, C.CASH), acct(mfi, C.FUND_CAPITAL)

    def unequal(cur):
        e = raw_entry(cur, mfi)
        raw_line(cur, e, cash, debit="100.00")
        raw_line(cur, e, capital, credit="99.99")

    def one_line(cur):
        raw_line(cur, raw_entry(cur, mfi), cash, debit="100.00")

    def no_lines(cur):
        raw_entry(cur, mfi)

    at_commit_refused(unequal, r"ledger entry \d+ is unbalanced: debits 100.00 <> credits 99.99")
    at_commit_refused(one_line, r"ledger entry \d+ has 1 line\(s\); an entry needs at least 2")
    at_commit_refused(no_lines, r"ledger entry \d+ has 0 line\(s\)")


def test_the_database_check_runs_inside_journal_post(mfi, monkeypatch):
    """Were the service's own balance check ever wrong, the database's check still fires before journal_post
    returns (not only at the caller's COMMIT), and the caller's transaction stays usable."""
    from node.ledger import services

    monkeypatch.setattr(services, "_validate_legs", lambda lines: [
        services._Leg(line.account_code, line.debit, line.credit, line.memo) for line in lines])
    before = counts()
    with pytest.raises(IntegrityError, match=r"ledger entry \d+ is unbalanced: debits 10.00 <> credits 9.00"):
        post(mfi, MAR2, dr(C.CASH, "10.00"), cr(C.FUND_CAPITAL, "9.00"))
    assert counts() == before
    post(mfi, MAR2, dr(C.CASH, "10.00"), cr(C.FUND_CAPITAL, "10.00"))  # checks deferred again as before
    assert trial_balance(mfi=mfi, as_of=MAR2).balanced


def test_database_accepts_a_balanced_raw_entry_written_in_several_statements(mfi):
    with transaction.atomic(), connection.cursor() as cur:
        e = raw_entry(cur, mfi)
        raw_line(cur, e, acct(mfi, C.CASH), debit="60.00")
        raw_line(cur, e, acct(mfi, C.CASH), debit="40.00")  # unbalanced in between: fine, the check is deferred
        raw_line(cur, e, acct(mfi, C.FUND_CAPITAL), credit="100.00")
        cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cur.execute("SET CONSTRAINTS ALL DEFERRED")
    assert trial_balance(mfi=mfi, as_of=MAR2).row(C.CASH).balance == D("100.00")


def test_database_refuses_lines_on_another_mfis_accounts(mfi, other_mfi):
    def cross(cur):
        e = raw_entry(cur, mfi)
        raw_line(cur, e, acct(mfi, C.CASH), debit="10.00")
        raw_line(cur, e, acct(other_mfi, C.FUND_CAPITAL), credit="10.00")

    at_commit_refused(cross, r"has 1 line\(s\) on another MFI's accounts")


def test_database_refuses_adding_lines_to_an_earlier_entry(mfi):
    earlier = post(mfi, MAR2, dr(C.CASH, "10.00"), cr(C.FUND_CAPITAL, "10.00"))
    post(mfi, MAR2, dr(C.CASH, "5.00"), cr(C.FUND_CAPITAL, "5.00"))

    def extend(cur):
        raw_line(cur, earlier.pk, acct(mfi, C.LOAN_PORTFOLIO), debit="1.00")
        raw_line(cur, earlier.pk, acct(mfi, C.CASH), credit="1.00")

    at_commit_refused(extend, rf"ledger entry {earlier.pk} is closed")


def test_database_refuses_bad_reversals(mfi, other_mfi):
    entry = post(mfi, MAR2, dr(C.CASH, "10.00"), cr(C.FUND_CAPITAL, "10.00"))
    reversal = journal_reverse(entry=entry, actor=None, reason="r", entry_date=MAR2)
    foreign = post(other_mfi, MAR2, dr(C.CASH, "10.00"), cr(C.FUND_CAPITAL, "10.00"))

    def mirror_of(target_mfi, reverses_id):
        def statements(cur):
            e = raw_entry(cur, target_mfi, reverses_id=reverses_id)
            raw_line(cur, e, acct(target_mfi, C.CASH), debit="10.00")
            raw_line(cur, e, acct(target_mfi, C.FUND_CAPITAL), credit="10.00")
        return statements

    at_commit_refused(mirror_of(mfi, reversal.pk), "which is itself a reversal")
    at_commit_refused(mirror_of(mfi, foreign.pk), "reverses entry .* of another MFI")
    at_commit_refused(mirror_of(mfi, entry.pk), "reverses_id")  # unique: a second reversal of one entry


def test_line_check_constraints(mfi):
    cash = acct(mfi, C.CASH)
    for debit, credit, constraint in (("0", "0", "ledger_line_exactly_one_side"),
                                      ("5.00", "5.00", "ledger_line_exactly_one_side"),
                                      ("-5.00", "0", "ledger_line_debit_non_negative"),
                                      ("0", "-5.00", "ledger_line_credit_non_negative")):
        with pytest.raises(IntegrityError, match=constraint), transaction.atomic(), connection.cursor() as cur:
            raw_line(cur, raw_entry(cur, mfi), cash, debit=debit, credit=credit)


def test_committing_an_unbalanced_entry_fails_on_a_real_commit(mfi):
    """A separate connection in autocommit mode commits for real: the error comes at COMMIT, not before."""
    code = f"commit-{uuid.uuid4().hex[:8]}"
    outcome: dict = {}

    def worker():
        try:
            with transaction.atomic():
                m = Mfi.objects.create(code=code, name="Commit test", home_district="maseru")
                cash = Account.objects.create(mfi=m, code=C.CASH, name="Cash", type=AccountType.ASSET)
                with connection.cursor() as cur:
                    raw_line(cur, raw_entry(cur, m), cash, debit="100.00")
                outcome["statements_done"] = True
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(60)
    assert outcome.get("statements_done"), outcome
    assert isinstance(outcome.get("error"), IntegrityError) and "at least 2" in str(outcome["error"])
    assert not Mfi.objects.filter(code=code).exists(), "the whole transaction was rolled back"


@pytest.mark.django_db(transaction=True)
def test_real_commits_pass_the_deferred_checks_and_only_the_suites_flush_truncates():
    """Autocommit, real COMMITs: a posting passes its deferred checks at COMMIT and is visible to another
    connection; an application session cannot TRUNCATE the ledger, and the suite's flush after this test can."""
    m = new_mfi()
    ledger_ensure_chart(mfi=m)
    entry = post(m, MAR2, dr(C.LOAN_PORTFOLIO, "300.00"), cr(C.CASH, "300.00"))
    seen: dict = {}

    def other_connection():
        try:
            seen["lines"] = JournalLine.objects.filter(entry_id=entry.pk).count()
        finally:
            connection.close()

    thread = threading.Thread(target=other_connection)
    thread.start()
    thread.join(30)
    assert seen == {"lines": 2}
    refusal = pytest.raises(InternalError, match="append-only: TRUNCATE refused")
    with refusal, transaction.atomic(), connection.cursor() as cur:
        cur.execute("SET LOCAL letsema.test_flush = 'off'")
        cur.execute("TRUNCATE ledger_journalline")
    assert JournalLine.objects.filter(entry_id=entry.pk).count() == 2


# --- append-only -------------------------------------------------------------------------------------------------

def append_only_refused(statement, table="ledger_journal"):
    with pytest.raises(InternalError, match=f"{table}.* is append-only"), transaction.atomic():
        statement()


def test_entries_and_lines_cannot_be_updated(mfi):
    entry = post(mfi, MAR2, dr(C.CASH, "10.00"), cr(C.FUND_CAPITAL, "10.00"), description="original")
    line = entry.lines.first()

    def orm_save():
        e = JournalEntry.objects.get(pk=entry.pk)
        e.description = "edited"
        e.save()

    def raw(sql, params):
        def run():
            with connection.cursor() as cur:
                cur.execute(sql, params)
        return run

    append_only_refused(orm_save, "ledger_journalentry")
    append_only_refused(lambda: JournalEntry.objects.filter(pk=entry.pk).update(entry_date=MAR31))
    append_only_refused(lambda: JournalLine.objects.filter(pk=line.pk).update(debit=D("11.00")), "ledger_journalline")
    append_only_refused(raw("UPDATE ledger_journalline SET memo = 'x' WHERE id = %s", [line.pk]), "ledger_journalline")
    append_only_refused(raw("UPDATE ledger_journalentry SET description = 'x' WHERE id = %s", [entry.pk]))
    stored = JournalEntry.objects.get(pk=entry.pk)
    assert (stored.description, stored.entry_date) == ("original", MAR2)
    assert JournalLine.objects.get(pk=line.pk).debit == line.debit


def test_entries_and_lines_cannot_be_deleted_or_truncated(mfi):
    entry = post(mfi, MAR2, dr(C.CASH, "10.00"), cr(C.FUND_CAPITAL, "10.00"))
    line = entry.lines.first()

    def raw(sql, params=()):
        def run():
            with connection.cursor() as cur:
                cur.execute(sql, params)
        return run

    append_only_refused(lambda: JournalLine.objects.get(pk=line.pk).delete(), "ledger_journalline")
    append_only_refused(lambda: JournalLine.objects.all().delete(), "ledger_journalline")
    append_only_refused(raw("DELETE FROM ledger_journalline WHERE id = %s", [line.pk]), "ledger_journalline")
    append_only_refused(raw("DELETE FROM ledger_journalentry WHERE id = %s", [entry.pk]), "ledger_journalentry")
    with pytest.raises(ProtectedError):
        JournalEntry.objects.get(pk=entry.pk).delete()  # the ORM stops first: lines PROTECT their entry
    for statement in ("TRUNCATE ledger_journalline", "TRUNCATE ledger_journalentry CASCADE"):
        # as in test_audit: fire pending deferred checks (TRUNCATE refuses while they are pending), and act as an
        # application session, which never sets letsema.test_flush
        refusal = pytest.raises(InternalError, match="ledger_journal(line|entry) is append-only: TRUNCATE refused")
        with refusal, transaction.atomic(), connection.cursor() as cur:
            cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cur.execute("SET LOCAL letsema.test_flush = 'off'")
            cur.execute(statement)
        with connection.cursor() as cur:
            cur.execute("SET CONSTRAINTS ALL DEFERRED")
    assert JournalLine.objects.filter(entry=entry).count() == 2


def test_public_has_no_write_privileges_on_the_ledger():
    with connection.cursor() as cur:
        cur.execute("SELECT t, p, has_table_privilege('public', t, p) FROM unnest(ARRAY['ledger_journalentry',"
                    " 'ledger_journalline']) t, unnest(ARRAY['UPDATE', 'DELETE', 'TRUNCATE']) p")
        assert [row for row in cur.fetchall() if row[2]] == []


def test_account_identity_never_changes_but_name_and_status_may(mfi):
    account = acct(mfi, C.FEE_INCOME)
    account.name = "Fees (processing)"
    account.save(update_fields=["name"])
    ledger_account_set_active(account=account, is_active=False)
    ledger_account_set_active(account=account, is_active=True)
    for field, value in (("type", AccountType.LIABILITY), ("code", "4101"), ("is_contra", True)):
        with pytest.raises(InternalError, match="never change"), transaction.atomic():
            Account.objects.filter(pk=account.pk).update(**{field: value})
    assert acct(mfi, C.FEE_INCOME).type == AccountType.INCOME


# --- API ---------------------------------------------------------------------------------------------------------

def api_user(role, mfi=None) -> User:
    return User.objects.create(username=f"{role}-{uuid.uuid4().hex[:6]}", role=role, mfi=mfi)


def client_for(user) -> APIClient:
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token_for(user)}")
    return c


def assert_error(r, status, code):
    assert r.status_code == status, (r.status_code, r.content)
    assert r.json()["code"] == code, r.json()
    return r.json()


URLS = ("/api/v1/ledger/accounts/", "/api/v1/ledger/trial-balance", "/api/v1/ledger/accounts/1000/statement")


@pytest.mark.parametrize("role", [Role.MFI_ADMIN, Role.ANALYST])
def test_mfi_admins_and_analysts_read_their_own_ledger(mfi, other_mfi, role):
    book_worked_example(mfi)
    post(other_mfi, MAR2, dr(C.LOAN_PORTFOLIO, "700.00"), cr(C.CASH, "700.00"))
    c = client_for(api_user(role, mfi))

    accounts = c.get("/api/v1/ledger/accounts/").json()
    assert [a["code"] for a in accounts][:3] == ["1000", "1100", "1190"] and len(accounts) == 15
    assert accounts[2] == {"code": "1190", "name": "Loan loss provision", "type": "ASSET",
                           "normal_balance": "CREDIT", "is_contra": True, "is_active": True}

    r = c.get("/api/v1/ledger/trial-balance", {"as_of": "2026-05-31"})
    assert r.status_code == 200, r.content
    tb = r.json()
    assert (tb["mfi"], tb["as_of"], tb["currency"], tb["balanced"]) == ("alpha-credit", "2026-05-31", "LSL", True)
    assert tb["total_debit"] == tb["total_credit"] == "115720.00"
    cash = next(a for a in tb["accounts"] if a["code"] == "1000")
    assert cash == {"code": "1000", "name": "Cash and fund source", "type": "ASSET", "normal_balance": "DEBIT",
                    "debit": "105450.00", "credit": "7000.00", "balance": "98450.00",
                    "debit_balance": "98450.00", "credit_balance": "0.00"}

    r = c.get("/api/v1/ledger/accounts/1000/statement", {"from": "2026-04-01", "to": "2026-04-30"})
    assert r.status_code == 200, r.content
    st = r.json()
    assert (st["opening_balance"], st["closing_balance"]) == ("95150.00", "98450.00")
    assert st["account"]["code"] == "1000" and (st["date_from"], st["date_to"]) == ("2026-04-01", "2026-04-30")
    assert [(line["entry_date"], line["debit"], line["credit"], line["balance"]) for line in st["lines"]] == [
        ("2026-04-01", "0.00", "2000.00", "93150.00"), ("2026-04-06", "1300.00", "0.00", "94450.00"),
        ("2026-04-20", "4000.00", "0.00", "98450.00")]
    assert st["lines"][0]["description"] == "Disbursement loan 2" and st["lines"][0]["reference_id"] == "2"


def test_api_defaults_to_today(mfi):
    today = timezone.localdate()
    post(mfi, today, dr(C.CASH, "10.00"), cr(C.FUND_CAPITAL, "10.00"))
    post(mfi, today + dt.timedelta(days=1), dr(C.CASH, "5.00"), cr(C.FUND_CAPITAL, "5.00"))
    c = client_for(api_user(Role.ANALYST, mfi))
    tb = c.get("/api/v1/ledger/trial-balance").json()
    assert tb["as_of"] == today.isoformat() and tb["total_debit"] == "10.00"
    st = c.get("/api/v1/ledger/accounts/1000/statement").json()
    assert (st["date_from"], st["date_to"]) == (today.replace(day=1).isoformat(), today.isoformat())
    assert st["closing_balance"] == "10.00"


@pytest.mark.parametrize("role", [Role.LOAN_OFFICER, Role.BORROWER, Role.LETSEMA_ADMIN, Role.OPERATOR])
def test_other_roles_may_not_read_the_ledger(mfi, role):
    u = api_user(role, mfi if role == Role.LOAN_OFFICER else None)
    for url in URLS:
        assert_error(client_for(u).get(url), 403, "permission_denied")


def test_anonymous_may_not_read_the_ledger():
    for url in URLS:
        assert_error(APIClient().get(url), 401, "not_authenticated")


def test_bad_dates_are_400_naming_the_field(mfi):
    c = client_for(api_user(Role.MFI_ADMIN, mfi))
    body = assert_error(c.get("/api/v1/ledger/trial-balance", {"as_of": "31/05/2026"}), 400, "validation_error")
    assert list(body["details"]["fields"]) == ["as_of"]
    body = assert_error(c.get("/api/v1/ledger/trial-balance", {"asof": "2026-05-31"}), 400, "validation_error")
    assert list(body["details"]["fields"]) == ["asof"]  # a typo is not silently ignored
    url = "/api/v1/ledger/accounts/1000/statement"
    body = assert_error(c.get(url, {"from": "2026-02-30", "to": "2026-03-31"}), 400, "validation_error")
    assert list(body["details"]["fields"]) == ["from"]
    body = assert_error(c.get(url, {"from": "2026-03-01", "to": "yesterday"}), 400, "validation_error")
    assert list(body["details"]["fields"]) == ["to"]
    body = assert_error(c.get(url, {"from": "2026-04-01", "to": "2026-03-01"}), 400, "validation_error")
    assert list(body["details"]["fields"]) == ["from"]


def test_unknown_or_other_mfis_account_code_is_404(mfi, other_mfi):
    ledger_account_create(mfi=other_mfi, code="1500", name="Mobile money float", type=AccountType.ASSET)
    c = client_for(api_user(Role.MFI_ADMIN, mfi))
    unknown = assert_error(c.get("/api/v1/ledger/accounts/9999/statement"), 404, "not_found")
    foreign = assert_error(c.get("/api/v1/ledger/accounts/1500/statement"), 404, "not_found")
    assert unknown == foreign, "another MFI's account answers exactly like a missing one"
    assert_error(c.get("/api/v1/ledger/accounts/not-a-code/statement"), 404, "not_found")
    # the other MFI's own admin does see it
    r = client_for(api_user(Role.MFI_ADMIN, other_mfi)).get("/api/v1/ledger/accounts/1500/statement")
    assert r.status_code == 200 and r.json()["account"]["name"] == "Mobile money float"


# --- management command ------------------------------------------------------------------------------------------

def test_trial_balance_command_prints_each_mfi_and_exits_0_when_balanced(mfi, other_mfi, capsys):
    book_worked_example(mfi)
    call_command("trial_balance", "--as-of", "2026-05-31")
    out = capsys.readouterr().out
    assert "alpha-credit" in out and "beta-lending" in out and "UNBALANCED" not in out
    assert "115,720.00" in out and "98,450.00" in out and out.count("BALANCED") >= 2
    call_command("trial_balance", "--mfi", "beta-lending")
    out = capsys.readouterr().out
    assert "beta-lending" in out and "alpha-credit" not in out
    with pytest.raises(CommandError, match="no such MFI"):
        call_command("trial_balance", "--mfi", "nope")
    with pytest.raises(CommandError, match="--as-of"):
        call_command("trial_balance", "--as-of", "31.05.2026")


def test_trial_balance_command_exits_1_for_a_tampered_ledger(mfi, other_mfi, capsys):
    """A DBA bypassing the triggers is not prevented but detected (the tamper is undone with the test's
    transaction)."""
    entry = post(mfi, MAR2, dr(C.CASH, "10.00"), cr(C.FUND_CAPITAL, "10.00"))
    with connection.cursor() as cur:
        cur.execute("SET CONSTRAINTS ALL IMMEDIATE")  # ALTER TABLE refuses while trigger events are pending
        cur.execute("ALTER TABLE ledger_journalline DISABLE TRIGGER USER")
        raw_line(cur, entry.pk, acct(mfi, C.CASH), debit="0.01")
        cur.execute("ALTER TABLE ledger_journalline ENABLE TRIGGER USER")
        cur.execute("SET CONSTRAINTS ALL DEFERRED")
    with pytest.raises(CommandError, match="UNBALANCED for: alpha-credit") as info:
        call_command("trial_balance", "--as-of", "2026-05-31")
    assert info.value.returncode == 1
    assert "UNBALANCED (difference 0.01)" in capsys.readouterr().out


# --- admin and schema --------------------------------------------------------------------------------------------

def test_admin_shows_the_ledger_read_only(mfi, client):
    entry = post(mfi, MAR2, dr(C.CASH, "10.00"), cr(C.FUND_CAPITAL, "10.00"))
    superuser = User.objects.create(username="root", role=Role.LETSEMA_ADMIN, is_staff=True, is_superuser=True)
    client.force_login(superuser)
    for url in ("/admin/ledger/journalentry/", f"/admin/ledger/journalentry/{entry.pk}/change/",
                "/admin/ledger/account/", "/admin/ledger/journalentry/add/"):
        r = client.get(url)
        assert r.status_code == (403 if url.endswith("add/") else 200), (url, r.status_code)
    page = client.get(f"/admin/ledger/journalentry/{entry.pk}/change/").content.decode()
    assert 'name="_save"' not in page and "Delete" not in page
    r = client.post(f"/admin/ledger/journalentry/{entry.pk}/change/", {"description": "edited"})
    assert r.status_code == 403
    assert JournalEntry.objects.get(pk=entry.pk).description == "posting"


def test_openapi_schema_documents_the_ledger_endpoints():
    from django.urls import include, path
    from drf_spectacular.generators import SchemaGenerator

    ledger_only = [path("api/v1/", include("node.ledger.urls"))]  # as mounted in config/urls.py
    paths = SchemaGenerator(patterns=ledger_only).get_schema(request=None, public=True)["paths"]
    assert {"/api/v1/ledger/accounts/", "/api/v1/ledger/trial-balance",
            "/api/v1/ledger/accounts/{code}/statement"} <= set(paths)
    params = {p["name"] for p in paths["/api/v1/ledger/accounts/{code}/statement"]["get"]["parameters"]}
    assert {"code", "from", "to"} <= params
    assert [p["name"] for p in paths["/api/v1/ledger/trial-balance"]["get"]["parameters"]] == ["as_of"]
