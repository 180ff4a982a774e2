"""The audit trail (node.audit) on the real test PostgreSQL: fields, hash chain, append-only triggers, tamper
detection by ``audit_verify``, and concurrent appends.

Most tests run inside pytest-django's per-test transaction, which is rolled back. Tampering is simulated the
way a DBA would do it: ``ALTER TABLE ... DISABLE TRIGGER USER`` inside that transaction, so it is undone too.

Why no ``django_db(transaction=True)`` here: after such a test pytest-django flushes the database with one
``TRUNCATE`` of every table, which the append-only trigger refuses (by design; the trigger is not weakened for
tests). The concurrency test therefore runs as an ordinary ``django_db`` test whose *worker threads* write
through their own connections in autocommit mode: their events commit, the test's own (READ COMMITTED)
transaction sees them, and the test removes exactly those rows at the end from another connection, as the
table owner with the triggers disabled for that one transaction. The test's own connection never appends (it
would hold the chain's advisory lock until the end of the test and block the workers).
"""

from __future__ import annotations

import io
import re
import threading
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import InternalError, connection, transaction
from django.utils import timezone

from node.audit.models import GENESIS_HASH, AuditEvent, event_hash
from node.audit.selectors import audit_verify_chain
from node.audit.services import audit_record, snapshot
from node.core.logging import reset_client_ip, reset_request_id, set_client_ip, set_request_id
from node.mfis.models import Mfi
from node.users.models import Role, User

APPEND_ONLY = "audit_auditevent is append-only"


@contextmanager
def request_context(request_id: str | None, ip: str | None):
    """What RequestIdMiddleware sets for the duration of a request."""
    rid_token, ip_token = set_request_id(request_id), set_client_ip(ip)
    try:
        yield
    finally:
        reset_client_ip(ip_token)
        reset_request_id(rid_token)


def head_seq() -> int:
    return AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


def record(n: int, **kwargs) -> list[AuditEvent]:
    return [audit_record(actor=None, action="test.event", target_type="thing", target_id=i, after={"i": i}, **kwargs)
            for i in range(n)]


@contextmanager
def triggers_disabled():
    """A DBA's tamper: the owner disables the append-only triggers (here inside the test's transaction)."""
    with connection.cursor() as cur:
        cur.execute("SET CONSTRAINTS ALL IMMEDIATE")  # ALTER TABLE refuses while deferred FK checks are pending
        cur.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER USER")
        try:
            yield cur
        finally:
            cur.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER USER")


@pytest.fixture
def mfi():
    return Mfi.objects.create(code="alpha-credit", name="Alpha Credit", home_district="maseru")


@pytest.fixture
def officer(mfi):
    return User.objects.create(username="officer-audit", role=Role.LOAN_OFFICER, mfi=mfi)


# --- what an event records -------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_event_records_who_what_when_where_and_before_after(officer, mfi):
    base = head_seq()
    t0 = timezone.now()
    with request_context("req-audit-0001", "192.0.2.17"):
        event = audit_record(
            actor=officer, action="borrower.update", target_type="borrower", target_id=42, mfi=mfi,
            before={"phone": "+26650000001", "income": Decimal("1500.50"), "born": date(1990, 5, 17)},
            after={"phone": "+26650000002", "income": Decimal("1750.00"), "born": date(1990, 5, 17)},
        )
    t1 = timezone.now()

    stored = AuditEvent.objects.get(seq=event.seq)
    assert stored.seq == base + 1
    assert t0 <= stored.occurred_at <= t1
    assert stored.occurred_at == event.occurred_at  # microsecond precision survives the round trip
    assert (stored.actor, stored.actor_username, stored.actor_role) == (officer, "officer-audit", "loan_officer")
    assert stored.mfi == mfi
    assert (stored.action, stored.target_type, stored.target_id) == ("borrower.update", "borrower", "42")
    assert stored.ip == "192.0.2.17"
    assert stored.request_id == "req-audit-0001"
    # Decimals and dates are stored as strings (DjangoJSONEncoder)
    assert stored.before == {"phone": "+26650000001", "income": "1500.50", "born": "1990-05-17"}
    assert stored.after == {"phone": "+26650000002", "income": "1750.00", "born": "1990-05-17"}
    assert event.before == stored.before and event.after == stored.after
    assert re.fullmatch(r"[0-9a-f]{64}", stored.hash)
    assert stored.hash == event.hash == event_hash(stored.prev_hash, stored.content())
    assert list(officer.audit_events.all()) == [stored] and list(mfi.audit_events.all()) == [stored]


@pytest.mark.django_db
def test_actor_name_and_role_are_copied_at_write_time(officer):
    event = audit_record(actor=officer, action="staff.update", target_type="user", target_id=officer.pk)
    officer.username, officer.role = "renamed", Role.ANALYST
    officer.save()
    stored = AuditEvent.objects.get(seq=event.seq)
    assert (stored.actor_id, stored.actor_username, stored.actor_role) == (officer.pk, "officer-audit", "loan_officer")


@pytest.mark.django_db
def test_event_without_actor_or_request_context():
    event = audit_record(actor=None, action="system.job", target_type="job")
    stored = AuditEvent.objects.get(seq=event.seq)
    assert stored.actor is None and stored.actor_username == "" and stored.actor_role == ""
    assert stored.mfi is None and stored.target_id == ""
    assert stored.ip is None and stored.request_id == ""
    assert stored.before is None and stored.after is None


@pytest.mark.django_db
def test_values_are_hashed_as_postgresql_stores_them():
    # jsonb reorders keys and re-renders some numbers; inet lower-cases and compresses IPv6. The hash must be
    # computed over what is read back, or verification would fail on perfectly good rows.
    with request_context("req-audit-0002", "2001:DB8:0:0::0001"):
        event = audit_record(actor=None, action="test.normalise", target_type="thing",
                             after={"z": 1e20, "a": {"y": [1.0, Decimal("0.10")], "x": None}, "7": "seven"})
    stored = AuditEvent.objects.get(seq=event.seq)
    assert stored.ip == event.ip == "2001:db8::1"
    assert stored.after == event.after
    assert stored.after["z"] == 10**20
    assert audit_verify_chain().ok


@pytest.mark.django_db
def test_snapshot_is_json_safe(officer, mfi):
    snap = snapshot(officer, ["username", "role", "mfi", "date_joined", "is_active"])
    assert snap == {"username": "officer-audit", "role": "loan_officer", "mfi": mfi.pk,
                    "date_joined": snap["date_joined"], "is_active": True}
    # DjangoJSONEncoder writes datetimes as ISO 8601 strings, to the millisecond
    assert isinstance(snap["date_joined"], str)
    assert abs(datetime.fromisoformat(snap["date_joined"]) - officer.date_joined) < timedelta(milliseconds=1)


@pytest.mark.django_db
def test_bad_arguments_are_refused():
    with pytest.raises(ValueError):
        audit_record(actor=None, action="", target_type="thing")
    with pytest.raises(TypeError):
        audit_record(actor=None, action="x.y", target_type="thing", after=["not", "a", "dict"])


# --- the chain ---------------------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_events_form_a_gapless_hash_chain():
    base = head_seq()
    prev = AuditEvent.objects.filter(seq=base).values_list("hash", flat=True).first() or GENESIS_HASH
    events = record(5)
    stored = list(AuditEvent.objects.filter(seq__gt=base).order_by("seq"))
    assert [e.seq for e in stored] == list(range(base + 1, base + 6))
    assert [e.hash for e in stored] == [e.hash for e in events]
    for e in stored:
        assert e.prev_hash == prev
        assert e.hash == event_hash(e.prev_hash, e.content())
        prev = e.hash
    assert len({e.hash for e in stored}) == 5
    if base == 0:
        assert stored[0].seq == 1 and stored[0].prev_hash == GENESIS_HASH


@pytest.mark.django_db
def test_event_recorded_in_the_callers_transaction_rolls_back_with_it():
    base = head_seq()
    record(1)
    with pytest.raises(RuntimeError), transaction.atomic():
        audit_record(actor=None, action="test.rolled_back", target_type="thing")
        raise RuntimeError("the change fails")
    assert not AuditEvent.objects.filter(action="test.rolled_back").exists()
    later = audit_record(actor=None, action="test.after", target_type="thing")
    assert later.seq == base + 2  # the rolled-back number is reused: no gap
    assert audit_verify_chain().ok


# --- append-only -------------------------------------------------------------------------------------------------

def _refused(statement):
    with pytest.raises(InternalError, match=APPEND_ONLY), transaction.atomic():
        statement()


@pytest.mark.django_db
def test_update_is_refused_via_orm_and_raw_sql():
    event = record(1)[0]
    original = (event.after, event.hash)

    def orm_save():
        e = AuditEvent.objects.get(seq=event.seq)
        e.after = {"i": 999}
        e.save()

    def raw_update():
        with connection.cursor() as cur:
            cur.execute("UPDATE audit_auditevent SET after = '{\"i\": 999}'::jsonb WHERE seq = %s", [event.seq])

    _refused(orm_save)
    _refused(lambda: AuditEvent.objects.filter(seq=event.seq).update(action="test.forged"))
    _refused(raw_update)
    stored = AuditEvent.objects.get(seq=event.seq)
    assert (stored.after, stored.hash, stored.action) == (*original, "test.event")


@pytest.mark.django_db
def test_delete_is_refused_via_orm_and_raw_sql():
    event = record(1)[0]

    def raw_delete():
        with connection.cursor() as cur:
            cur.execute("DELETE FROM audit_auditevent WHERE seq = %s", [event.seq])

    _refused(lambda: AuditEvent.objects.get(seq=event.seq).delete())
    _refused(lambda: AuditEvent.objects.all().delete())
    _refused(raw_delete)
    assert AuditEvent.objects.filter(seq=event.seq).exists()


@pytest.mark.django_db
def test_truncate_is_refused():
    record(2)
    count = AuditEvent.objects.count()

    def truncate():
        with connection.cursor() as cur:
            # PostgreSQL refuses TRUNCATE while this transaction's deferred FK checks are pending; a real session
            # has none, so fire them first to reach the trigger.
            cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
            # the suite's own connections may flush (tests/conftest.py); an application session may not
            cur.execute("SET LOCAL letsema.test_flush = 'off'")
            cur.execute("TRUNCATE audit_auditevent")

    _refused(truncate)
    assert AuditEvent.objects.count() == count


@pytest.mark.django_db
def test_public_has_no_write_privileges():
    with connection.cursor() as cur:
        cur.execute(
            "SELECT has_table_privilege('public', 'audit_auditevent', p) FROM unnest(ARRAY['UPDATE','DELETE','TRUNCATE']) p"
        )
        assert [row[0] for row in cur.fetchall()] == [False, False, False]


# --- verification --------------------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_verify_ok_on_a_good_chain():
    record(7)
    result = audit_verify_chain()
    assert result.ok and result.first_broken_seq is None and result.reason == ""
    assert result.checked == AuditEvent.objects.count() >= 7


@pytest.mark.django_db
def test_verify_reports_progress():
    record(5)
    seen = []
    audit_verify_chain(progress=seen.append, progress_every=2)
    total = AuditEvent.objects.count()
    assert seen == list(range(2, total + 1, 2))


@pytest.mark.django_db
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_auditevent SET after = '{\"i\": 999}'::jsonb WHERE seq = %s",
        "UPDATE audit_auditevent SET actor_username = 'someone-else' WHERE seq = %s",
        "UPDATE audit_auditevent SET occurred_at = occurred_at - interval '1 microsecond' WHERE seq = %s",
        "UPDATE audit_auditevent SET ip = '10.9.9.9' WHERE seq = %s",
    ],
    ids=["after", "actor_username", "occurred_at", "ip"],
)
def test_verify_detects_an_altered_row(sql):
    events = record(5)
    target = events[2].seq
    with triggers_disabled() as cur:
        cur.execute(sql, [target])
        assert cur.rowcount == 1
    result = audit_verify_chain()
    assert not result.ok
    assert result.first_broken_seq == target
    assert "altered" in result.reason
    assert result.checked == target - 1


@pytest.mark.django_db
def test_verify_detects_a_deleted_row():
    events = record(5)
    target = events[2].seq
    with triggers_disabled() as cur:
        cur.execute("DELETE FROM audit_auditevent WHERE seq = %s", [target])
    result = audit_verify_chain()
    assert (result.ok, result.first_broken_seq) == (False, target)
    assert result.reason == f"seq {target} is missing (deleted rows); next present is {target + 1}"


@pytest.mark.django_db
def test_verify_detects_a_rehashed_row_at_the_next_link():
    # A careful tamperer also recomputes the altered row's own hash: the next row's prev_hash no longer matches.
    events = record(5)
    target = events[2]
    forged = AuditEvent.objects.get(seq=target.seq)
    forged.after = {"i": 999}
    new_hash = event_hash(forged.prev_hash, forged.content())
    with triggers_disabled() as cur:
        cur.execute("UPDATE audit_auditevent SET after = '{\"i\": 999}'::jsonb, hash = %s WHERE seq = %s",
                    [new_hash, target.seq])
    result = audit_verify_chain()
    assert (result.ok, result.first_broken_seq) == (False, target.seq + 1)
    assert result.reason == f"prev_hash does not match the hash of seq {target.seq}"


@pytest.mark.django_db
def test_verify_detects_deleted_first_rows():
    if head_seq():
        pytest.skip("needs an empty audit table (committed rows present in the test database)")
    record(4)
    with triggers_disabled() as cur:
        cur.execute("DELETE FROM audit_auditevent WHERE seq <= 2")
    result = audit_verify_chain()
    assert (result.ok, result.first_broken_seq, result.checked) == (False, 1, 0)
    assert result.reason == "seqs 1..2 are missing (deleted rows); next present is 3"


# --- the management command ------------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_audit_verify_command_ok():
    record(3)
    out, err = io.StringIO(), io.StringIO()
    call_command("audit_verify", stdout=out, stderr=err)
    assert out.getvalue() == f"audit chain OK: {AuditEvent.objects.count()} events\n"
    assert err.getvalue() == ""


@pytest.mark.django_db
def test_audit_verify_command_progress_goes_to_stderr():
    record(4)
    out, err = io.StringIO(), io.StringIO()
    call_command("audit_verify", "--progress-every", "2", stdout=out, stderr=err)
    assert "audit_verify: 2 events checked" in err.getvalue()
    assert out.getvalue().startswith("audit chain OK:")


@pytest.mark.django_db
def test_audit_verify_command_broken_exits_1():
    events = record(4)
    target = events[1].seq
    with triggers_disabled() as cur:
        cur.execute("UPDATE audit_auditevent SET target_id = 'forged' WHERE seq = %s", [target])
    with pytest.raises(CommandError) as exc:
        call_command("audit_verify", stdout=io.StringIO(), stderr=io.StringIO())
    assert exc.value.returncode == 1
    assert str(exc.value) == f"audit chain BROKEN at seq {target}: content does not match its hash (row altered)"


# --- admin -----------------------------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_admin_lists_events_read_only(client):
    admin_user = User.objects.create_superuser(username="root-audit", password="Correct-Horse-42",
                                               role=Role.LETSEMA_ADMIN)
    event = audit_record(actor=admin_user, action="test.admin", target_type="thing", target_id="x1")
    client.force_login(admin_user)
    listing = client.get("/admin/audit/auditevent/")
    assert listing.status_code == 200
    assert b"test.admin" in listing.content
    detail = client.get(f"/admin/audit/auditevent/{event.seq}/change/")
    assert detail.status_code == 200 and b'name="_save"' not in detail.content  # view only
    assert client.get("/admin/audit/auditevent/add/").status_code == 403
    assert client.post(f"/admin/audit/auditevent/{event.seq}/delete/", {"post": "yes"}).status_code == 403
    assert client.post(f"/admin/audit/auditevent/{event.seq}/change/", {"action": "forged"}).status_code == 403
    assert AuditEvent.objects.get(seq=event.seq).action == "test.admin"


# --- concurrency -----------------------------------------------------------------------------------------------------

THREADS, PER_THREAD = 8, 10


def _in_thread(fn):
    """Run ``fn`` on a new thread (hence its own database connection, in autocommit) and return its result."""
    result, error = [], []

    def run():
        try:
            result.append(fn())
        except BaseException as exc:  # noqa: BLE001 - re-raised on the caller's thread
            error.append(exc)
        finally:
            connection.close()

    t = threading.Thread(target=run)
    t.start()
    t.join(timeout=60)
    assert not t.is_alive(), "thread did not finish"
    if error:
        raise error[0]
    return result[0]


def _purge_after(base: int) -> int:
    """Remove committed test rows (seq > base) as the table owner, triggers disabled for this transaction only."""
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER USER")
        cur.execute("DELETE FROM audit_auditevent WHERE seq > %s", [base])
        deleted = cur.rowcount
        cur.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER USER")
    return deleted


@pytest.mark.django_db
def test_concurrent_appends_never_fork_the_chain():
    base = _in_thread(head_seq)
    barrier = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def worker(n: int):
        try:
            with request_context(f"req-thread-{n:04d}", f"192.0.2.{n + 1}"):
                barrier.wait(timeout=30)
                for i in range(PER_THREAD):
                    audit_record(actor=None, action="test.concurrent", target_type="thread", target_id=f"{n}-{i}",
                                 after={"thread": n, "i": i})
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not any(t.is_alive() for t in threads), "a worker hung"
        assert errors == []

        # The test's transaction (READ COMMITTED) sees what the workers committed.
        events = list(AuditEvent.objects.filter(seq__gt=base).order_by("seq"))
        assert len(events) == THREADS * PER_THREAD
        assert [e.seq for e in events] == list(range(base + 1, base + 1 + THREADS * PER_THREAD))
        for n in range(THREADS):
            mine = [e for e in events if e.after["thread"] == n]
            assert [e.after["i"] for e in mine] == list(range(PER_THREAD))  # each thread's order is kept
            assert {(e.request_id, e.ip) for e in mine} == {(f"req-thread-{n:04d}", f"192.0.2.{n + 1}")}
        result = audit_verify_chain()
        assert result.ok, result
        assert result.checked == base + THREADS * PER_THREAD
    finally:
        for t in threads:
            t.join(timeout=5)
        _in_thread(lambda: _purge_after(base))
    assert _in_thread(head_seq) == base


@pytest.mark.django_db
def test_verify_sees_a_consistent_snapshot_while_appending():
    # Appends committing during a walk do not make the chain look broken: the walk reads one snapshot.
    base = _in_thread(head_seq)
    try:
        _in_thread(lambda: record(3))
        stop = threading.Event()

        def appender():
            try:
                while not stop.is_set():
                    audit_record(actor=None, action="test.background", target_type="thing")
            finally:
                connection.close()

        t = threading.Thread(target=appender)
        t.start()
        try:
            results = [_in_thread(lambda: audit_verify_chain(progress_every=1)) for _ in range(3)]
        finally:
            stop.set()
            t.join(timeout=30)
        assert all(r.ok for r in results), results
    finally:
        _in_thread(lambda: _purge_after(base))


def test_canonical_time_is_utc_with_microseconds():
    # no database: the hashed form of occurred_at does not depend on the server's or the district's time zone
    from node.audit.models import event_content

    local = datetime(2026, 1, 2, 3, 4, 5, tzinfo=ZoneInfo("Africa/Maseru"))
    content = event_content(seq=1, occurred_at=local, actor_id=None, actor_username="", actor_role="", mfi_id=None,
                             action="a", target_type="t", target_id="", ip=None, request_id="", before=None, after=None)
    assert content["occurred_at"] == "2026-01-02T01:04:05.000000+00:00"
