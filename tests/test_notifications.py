"""Borrower notifications (issue #5 item 4): SMS and e-mail for repayments, disbursements, due-soon and overdue
installments — recorded in the domain transaction, sent only after it commits, retried with backoff, never twice.

Real PostgreSQL; the SMS gateway is the ``file`` backend (or a real HTTP server on loopback), e-mail Django's locmem
or file backend. Celery runs tasks eagerly here, so what ``transaction.on_commit`` queues runs in this process
(nothing reaches the shared broker).

The loan used throughout (see tests/test_repayments.py): 1000.00, 3 months, disbursed 2026-01-01; installments due
2026-02-01 (353.53), 2026-03-01 (353.53) and 2026-04-01 (353.53), 1060.59 in all.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import date, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone

from node.audit.models import AuditEvent
from node.cob.models import BusinessDate
from node.loans.models import Loan, LoanInstallment
from node.notifications import services, tasks, texts
from node.notifications.models import Notification, NotificationAttempt, ReminderRun
from node.notifications.sms import read_file_outbox
from node.repayments import services as repayment_services
from tests.loan_fixtures import client_for, disbursed, key, make_user, open_shop, post

pytestmark = pytest.mark.django_db

D = Decimal




def repay(user, lid, amount, on="2026-02-10"):
    r = post(user, f"/api/v1/loans/{lid}/repayments", {"amount": amount, "payment_date": on, "channel": "cash"},
             idem=key())
    assert r.status_code == 201, r.content
    return r.json()


def set_pref(user, bid, **body):
    return client_for(user).put(f"/api/v1/borrowers/{bid}/notification-preferences", body, format="json")


def sms_for(shop) -> list[str]:
    return [m["message"] for m in read_file_outbox() if m["to"] == shop.borrower.phone]


def make_due(**filters):
    Notification.objects.filter(status="pending", **filters).update(next_attempt_at=timezone.now() - timedelta(seconds=1))


def assert_no_national_id(shop, *texts_):
    for t in texts_:
        assert shop.borrower.national_id not in t


@pytest.fixture(autouse=True)
def channels(settings, tmp_path):
    settings.SMS_BACKEND = "file"
    settings.SMS_FILE_PATH = tmp_path / "sms.jsonl"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    from config.celery import app

    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True  # what on_commit queues runs here, not on the shared broker's workers
    settings.LETSEMA_NOTIFY_WAKE_MS = 0  # each commit queues its delivery run (no shared window: deterministic)
    yield
    app.conf.task_always_eager = eager


class _Gateway(BaseHTTPRequestHandler):
    """A real HTTP SMS gateway on loopback that records what it accepted."""

    received: list = []
    status = 200
    delay = 0.0
    lock = threading.Lock()

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        cls = type(self)
        time.sleep(cls.delay)
        with cls.lock:
            cls.received.append({"key": self.headers["Idempotency-Key"], "status": cls.status, **body})
        self.send_response(cls.status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def gateway(settings):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Gateway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Gateway.received, _Gateway.status, _Gateway.delay = [], 200, 0.0
    settings.SMS_BACKEND = "http"
    settings.SMS_HTTP_URL = f"http://127.0.0.1:{server.server_port}/send"
    yield _Gateway
    server.shutdown()


# --- after commit, once ----------------------------------------------------------------------------------------
def test_repayment_sends_one_sms_only_when_the_transaction_commits(django_capture_on_commit_callbacks):
    shop = open_shop()
    lid = disbursed(shop)  # its on_commit never runs here (the test's transaction never commits)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        body = repay(shop.officer, lid, "100.00")
    n = Notification.objects.get(event_key=f"repayment:{body['id']}:received")
    assert n.status == "pending" and n.kind == "repayment_received" and n.mfi_id == shop.mfi.pk
    assert sms_for(shop) == []  # recorded in the transaction, nothing sent before the commit
    assert callbacks, "delivery is queued with transaction.on_commit"
    for cb in callbacks:  # the commit: one delivery run, which sends whatever is due (the disbursement notice too)
        cb()
    (text,) = [t for t in sms_for(shop) if "we received" in t]
    assert text == (f"{shop.mfi.name}: we received LSL 100.00 on loan {Loan.objects.get(pk=lid).reference}. "
                    f"Receipt {body['receipt_number']}. Outstanding: LSL 960.59. Thank you.")
    n.refresh_from_db()
    assert n.status == "sent" and n.attempts == 1 and n.channels == "sms" and n.language == "en"
    (entry,) = n.log.all()
    assert entry.channel == "sms" and entry.sent_at is not None and entry.error == ""
    assert entry.to_masked == shop.borrower.phone[:4] + "*****" + shop.borrower.phone[-3:]
    assert entry.template == "repayment_received/en/sms" and entry.gateway_message_id
    # queued again, or swept by the minute job: never a second SMS
    for cb in callbacks:
        cb()
    assert tasks.deliver_notification(n.pk) is None
    assert services.deliver_pending() == {}
    assert len([t for t in sms_for(shop) if "we received" in t]) == 1 and len(sms_for(shop)) == 2
    (disb,) = [t for t in sms_for(shop) if "paid out" in t]
    assert "LSL 1000.00" in disb and "First installment LSL 353.53 due on 2026-02-01" in disb
    assert_no_national_id(shop, *sms_for(shop))


@pytest.mark.django_db(transaction=True)
def test_committed_repayment_is_sent_in_the_borrowers_language_and_a_rolled_back_one_never():
    shop = open_shop()
    assert set_pref(shop.borrower_user, shop.borrower.pk, language="st").status_code == 200
    lid = disbursed(shop)  # committed: the disbursement notice goes out at once
    (disb,) = sms_for(shop)
    assert "e lefiloe" in disb and "2026-02-01" in disb
    body = repay(shop.officer, lid, "100.00")
    texts_ = sms_for(shop)
    assert len(texts_) == 2
    assert texts_[1] == (f"{shop.mfi.name}: re amohetse LSL 100.00 bakeng sa kalimo "
                         f"{Loan.objects.get(pk=lid).reference}. Rasiti {body['receipt_number']}. "
                         f"E setseng: LSL 960.59. Re a leboha.")
    # a repayment whose transaction rolls back leaves no notification and sends nothing
    with pytest.raises(RuntimeError, match="boom"), transaction.atomic():
        repayment_services.repayment_post(actor=shop.officer, loan=Loan.objects.get(pk=lid), amount=D("50.00"),
                                          payment_date=date(2026, 2, 11), channel="cash")
        assert Notification.objects.filter(kind="repayment_received").count() == 2  # visible inside only
        raise RuntimeError("boom")
    assert Notification.objects.filter(kind="repayment_received").count() == 1
    assert services.deliver_pending() == {}
    assert len(sms_for(shop)) == 2
    # outside any transaction there is no change to describe: refused, like outbox_enqueue
    with pytest.raises(services.NotifyOutsideTransaction):
        services.notify(kind="repayment_received", event_key="t:1", borrower_id=shop.borrower.pk, context={})
    assert_no_national_id(shop, *sms_for(shop))


def test_a_reversed_repayment_is_told_once_and_replayed_ones_are_not(django_capture_on_commit_callbacks):
    """The borrower who got a receipt hears when staff take that payment back (in their language), with what is
    outstanding now; repayments replayed under it by reprocessing still count, so nobody hears of them."""
    shop = open_shop()
    assert set_pref(shop.borrower_user, shop.borrower.pk, language="st").status_code == 200
    lid = disbursed(shop)
    ref = Loan.objects.get(pk=lid).reference
    first, later = repay(shop.officer, lid, "100.00"), repay(shop.officer, lid, "50.00", on="2026-02-12")
    with django_capture_on_commit_callbacks(execute=True):
        r = post(shop.admin, f"/api/v1/repayments/{first['id']}/reverse",
                 {"reason": "cheque bounced", "reprocess_later": True}, idem=key())
    assert r.status_code == 200, r.content
    (replay,) = r.json()["replays"]
    n = Notification.objects.get(kind="repayment_reversed")
    assert n.event_key == f"repayment:{first['id']}:reversed" and n.status == "sent" and n.language == "st"
    # 1000.00 + 60.59 interest, less the 50.00 still in effect (replayed as a new receipt)
    assert n.context == {"mfi": shop.mfi.name, "reference": ref, "currency": "LSL", "amount": "100.00",
                         "receipt_number": first["receipt_number"], "payment_date": "2026-02-10",
                         "outstanding": "1010.59"}
    (text,) = [t for t in sms_for(shop) if "hlakotsoe" in t]
    assert text == (f"{shop.mfi.name}: tefo ea hau ea LSL 100.00 ea kalimo {ref} (rasiti {first['receipt_number']}) "
                    "e hlakotsoe. E setseng: LSL 1010.59. Lipotso? Ka kopo ikopanye le rona.")
    assert "cheque" not in text  # the staff's reason stays inside the MFI
    # the replayed 50.00: no "reversed" and no second "received" for it
    assert Notification.objects.filter(kind="repayment_reversed").count() == 1
    assert not Notification.objects.filter(event_key__in=[f"repayment:{later['id']}:reversed",
                                                          f"repayment:{replay['id']}:received"]).exists()
    assert_no_national_id(shop, *sms_for(shop))


def test_notify_refuses_stray_fields_and_a_text_carrying_the_national_id():
    shop = open_shop()
    ctx = {"mfi": "A", "reference": "R", "currency": "LSL", "amount": "1.00", "receipt_number": "X",
           "payment_date": "2026-01-01", "outstanding": "0.00"}
    with pytest.raises(ValueError, match="exactly"):
        services.notify(kind="repayment_received", event_key="t:2", borrower_id=shop.borrower.pk,
                        context={**ctx, "national_id": shop.borrower.national_id})
    assert services.notify(kind="repayment_received", event_key="t:3", borrower_id=shop.borrower.pk, context=ctx)
    assert services.notify(kind="repayment_received", event_key="t:3", borrower_id=shop.borrower.pk,
                           context=ctx) is None  # one event, one notification
    assert Notification.objects.filter(event_key="t:3").count() == 1
    # a text that would carry the national ID (here smuggled in as a reference) is refused, not sent
    services.notify(kind="repayment_received", event_key="t:4", borrower_id=shop.borrower.pk,
                    context={**ctx, "reference": shop.borrower.national_id})
    assert services.deliver_one(Notification.objects.get(event_key="t:4").pk) == "failed"
    assert all(shop.borrower.national_id not in m["message"] for m in read_file_outbox())
    assert "national ID" in Notification.objects.get(event_key="t:4").last_error
    # a row that crashes the sender (here: its borrower is gone) counts as a failed attempt, never blocks the queue
    ghost = Notification.objects.create(event_key="t:ghost", kind="repayment_received", borrower_id=987654321,
                                        context=ctx)
    assert services.deliver_one(ghost.pk) == "pending"
    ghost.refresh_from_db()
    assert ghost.attempts == 1 and ghost.last_error == "internal error: DoesNotExist"
    assert ghost.next_attempt_at > timezone.now()


# --- failures, backoff, concurrency ------------------------------------------------------------------------------
def test_gateway_failure_is_retried_with_backoff_then_sent_once(settings, django_capture_on_commit_callbacks):
    assert [services.retry_delay(i).total_seconds() for i in range(1, 9)] == [
        60, 120, 240, 480, 960, 1920, 3600, 3600]
    shop = open_shop()
    lid = disbursed(shop)
    Notification.objects.filter(kind="loan_disbursed").update(status="skipped")  # not under test here
    settings.SMS_BACKEND, settings.SMS_HTTP_URL = "http", "http://127.0.0.1:9/unreachable"
    with django_capture_on_commit_callbacks(execute=True):
        body = repay(shop.officer, lid, "100.00")
    n = Notification.objects.get(event_key=f"repayment:{body['id']}:received")
    assert n.status == "pending" and n.attempts == 1 and "unreachable" in n.last_error
    wait = (n.next_attempt_at - timezone.now()).total_seconds()
    assert 50 < wait <= 60
    assert services.deliver_pending() == {}  # not due yet
    make_due()
    assert services.deliver_pending() == {"pending": 1}
    n.refresh_from_db()
    assert n.attempts == 2 and 110 < (n.next_attempt_at - timezone.now()).total_seconds() <= 120
    # the gateway works again
    settings.SMS_BACKEND = "file"
    make_due()
    assert services.deliver_pending() == {"sent": 1}
    assert services.deliver_pending() == {}
    make_due()
    assert services.deliver_pending() == {}
    assert len(sms_for(shop)) == 1 and body["receipt_number"] in sms_for(shop)[0]
    n.refresh_from_db()
    assert n.status == "sent" and n.attempts == 3
    log = list(n.log.order_by("attempt"))
    assert [(e.attempt, bool(e.sent_at), bool(e.error)) for e in log] == [(1, False, True), (2, False, True),
                                                                         (3, True, False)]
    # the log through the API, recipient masked
    r = client_for(shop.officer).get(f"/api/v1/borrowers/{shop.borrower.pk}/notifications")
    assert r.status_code == 200, r.content
    (row,) = [x for x in r.json() if x["kind"] == "repayment_received"]
    assert row["status"] == "sent" and row["attempts"] == 3 and len(row["deliveries"]) == 3
    assert all(shop.borrower.phone not in d["to"] and d["to"].endswith(shop.borrower.phone[-3:])
               for d in row["deliveries"])
    assert "SmsSendFailed" in row["deliveries"][0]["error"]
    # attempts run out: failed after NOTIFY_MAX_ATTEMPTS (8)
    settings.SMS_BACKEND = "http"
    with django_capture_on_commit_callbacks(execute=True):
        body2 = repay(shop.officer, lid, "10.00")
    n2 = Notification.objects.get(event_key=f"repayment:{body2['id']}:received")
    Notification.objects.filter(pk=n2.pk).update(attempts=6)
    make_due()
    assert services.deliver_pending() == {"pending": 1}  # attempt 7
    make_due()
    assert services.deliver_pending() == {"failed": 1}  # attempt 8
    n2.refresh_from_db()
    assert n2.status == "failed" and n2.attempts == 8
    make_due()
    assert services.deliver_pending() == {}


@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_never_send_a_notification_twice(gateway, settings):
    shop = open_shop()
    settings.SMS_BACKEND = "file"
    lid = disbursed(shop)
    settings.SMS_BACKEND = "http"
    gateway.status = 503  # the commit's own delivery attempt fails: the rows stay pending
    receipts = [repay(shop.officer, lid, f"{50 + i}.00")["receipt_number"] for i in range(4)]
    pending = list(Notification.objects.filter(kind="repayment_received", status="pending"))
    assert len(pending) == 4 and all(n.attempts == 1 for n in pending)
    assert len(gateway.received) == 4
    keys = {m["key"] for m in gateway.received}
    gateway.received, gateway.status, gateway.delay = [], 200, 0.3
    make_due()
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def worker(job):
        try:
            barrier.wait()
            job()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connection.close()

    jobs = [services.deliver_pending] * 3 + [lambda pk=n.pk: tasks.deliver_notification(pk) for n in pending[:3]]
    threads = [threading.Thread(target=worker, args=(j,)) for j in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sorted(m["message"].split("Receipt ")[1].split(".")[0] for m in gateway.received) == sorted(receipts)
    # four messages, each exactly once, under the same idempotency key as its failed attempt (stable per event,
    # so a gateway honouring it drops a repeat after a worker crash)
    assert len(gateway.received) == 4 and {m["key"] for m in gateway.received} == keys
    for n in Notification.objects.filter(kind="repayment_received"):
        assert n.status == "sent" and n.attempts == 2
        assert NotificationAttempt.objects.filter(notification=n, sent_at__isnull=False).count() == 1
    assert services.deliver_pending() == {} and len(gateway.received) == 4


# --- reminders ---------------------------------------------------------------------------------------------------
def test_due_soon_and_overdue_reminders_are_created_once_per_installment(capsys):
    shop = open_shop()
    a = disbursed(shop)
    b = disbursed(shop)
    repay(shop.officer, b, "353.53", on="2026-01-20")  # b's first installment is paid
    ref_a = Loan.objects.get(pk=a).reference
    first_a = LoanInstallment.objects.get(loan_id=a, number=1)
    Notification.objects.exclude(kind__startswith="installment").update(status="skipped")

    r = services.reminders_create(day=date(2026, 1, 29))  # due in 3 days: 2026-02-01
    assert (r.upcoming_created, r.overdue_created) == (1, 0)
    r = services.reminders_create(day=date(2026, 1, 29))  # the job runs twice
    assert (r.upcoming_created, r.overdue_created) == (0, 0)
    (due,) = Notification.objects.filter(kind="installment_due")
    assert due.event_key == f"installment:{first_a.pk}:due:2026-02-01" and due.loan_id == a
    assert due.context == {"mfi": shop.mfi.name, "reference": ref_a, "currency": "LSL", "amount": "353.53",
                           "due_date": "2026-02-01", "installment": 1}
    assert services.deliver_pending() == {"sent": 1}
    (text,) = sms_for(shop)
    assert text == (f"{shop.mfi.name}: your installment of LSL 353.53 on loan {ref_a} is due on 2026-02-01. "
                    "Please pay on time.")

    call_command("send_reminders", "--date", "2026-02-02")  # the day after the due date, still unpaid
    assert "0 due-soon reminders, 1 overdue notices created" in capsys.readouterr().out
    call_command("send_reminders", "--date", "2026-02-02")
    assert "0 due-soon reminders, 0 overdue notices created" in capsys.readouterr().out
    (over,) = Notification.objects.filter(kind="installment_overdue")
    assert over.event_key == f"installment:{first_a.pk}:overdue"
    assert services.deliver_pending() == {"sent": 1}
    assert sms_for(shop)[-1] == (f"{shop.mfi.name}: your installment of LSL 353.53 on loan {ref_a} was due on "
                                 "2026-02-01 and is unpaid. Please pay as soon as possible.")
    assert ReminderRun.objects.get(business_date=date(2026, 2, 2)).runs == 2

    # no date: the node's business date, catching up the days missed since the last run (at most 7)
    BusinessDate.objects.update_or_create(pk=1, defaults={"current": date(2026, 2, 26)})
    results = services.reminders_run_due(by="test")
    assert [x.business_date for x in results] == [date(2026, 2, 19) + timedelta(days=i) for i in range(8)]
    assert sum(x.upcoming_created for x in results) == 2  # both loans' second installments, due 2026-03-01
    assert sum(x.overdue_created for x in results) == 0
    assert services.reminders_run_due(by="test")[0].upcoming_created == 0
    # paid before it went out: the reminder is cancelled, not sent
    repay(shop.officer, a, "707.06", on="2026-02-27")  # a's first and second installments
    assert services.deliver_pending() == {"cancelled": 1, "sent": 2}  # b's reminder and a's receipt
    assert Notification.objects.get(kind="installment_due", loan_id=a, installment__number=2).status == "cancelled"
    assert len([t for t in sms_for(shop) if "due on 2026-03-01" in t]) == 1
    assert_no_national_id(shop, *sms_for(shop))


# --- channels and languages --------------------------------------------------------------------------------------
def test_email_and_both_channels(settings, tmp_path, django_capture_on_commit_callbacks):
    shop = open_shop()
    lid = disbursed(shop)
    Notification.objects.all().update(status="skipped")
    r = set_pref(shop.borrower_user, shop.borrower.pk, channel="email", email="mpho@example.org")
    assert r.status_code == 200 and r.json()["channel"] == "email" and r.json()["email"] == "mpho@example.org"
    with django_capture_on_commit_callbacks(execute=True):
        body = repay(shop.officer, lid, "100.00")
    assert sms_for(shop) == []
    (msg,) = mail.outbox
    assert msg.to == ["mpho@example.org"] and msg.subject == f"{shop.mfi.name}: payment received, receipt {body['receipt_number']}"
    assert "Dear Mpho," in msg.body and "Receipt number: " + body["receipt_number"] in msg.body
    assert "Still outstanding: LSL 960.59" in msg.body and msg.extra_headers["Message-ID"]
    entry = NotificationAttempt.objects.get(notification__event_key=f"repayment:{body['id']}:received")
    assert entry.channel == "email" and entry.to_masked == "m***@example.org" and entry.gateway_message_id == msg.extra_headers["Message-ID"]

    # both, in Sesotho, set by a loan officer on the borrower's behalf
    r = set_pref(shop.officer, shop.borrower.pk, channel="both", language="st")
    assert r.status_code == 200 and r.json()["updated_by"] == shop.officer.username
    with django_capture_on_commit_callbacks(execute=True):
        repay(shop.officer, lid, "20.00")
    assert len(mail.outbox) == 2 and "Lumela Mpho," in mail.outbox[1].body and "Re a leboha." in mail.outbox[1].body
    (sms,) = sms_for(shop)
    assert "re amohetse LSL 20.00" in sms

    # the e-mail fails, the SMS goes: a retry sends only the e-mail
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2
    with django_capture_on_commit_callbacks(execute=True):
        body3 = repay(shop.officer, lid, "30.00")
    n = Notification.objects.get(event_key=f"repayment:{body3['id']}:received")
    assert n.status == "pending" and n.last_error.startswith("email: ")
    assert len(sms_for(shop)) == 2
    # the file-based backend (the dev/test default in settings) writes the message under var/
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path / "mail")
    make_due()
    assert services.deliver_pending() == {"sent": 1}
    assert len(sms_for(shop)) == 2  # the SMS was not sent again
    written = "".join(p.read_text() for p in (tmp_path / "mail").iterdir())
    assert body3["receipt_number"] in written and "mpho@example.org" in written
    assert_no_national_id(shop, *sms_for(shop), *(m.body for m in mail.outbox), written)

    # none: recorded and skipped
    assert set_pref(shop.borrower_user, shop.borrower.pk, channel="none").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        body4 = repay(shop.officer, lid, "5.00")
    assert Notification.objects.get(event_key=f"repayment:{body4['id']}:received").status == "skipped"
    assert len(sms_for(shop)) == 2 and len(mail.outbox) == 2


def test_every_text_exists_in_both_languages_and_uses_only_its_fields():
    texts.check_texts()
    ctx = {"mfi": "M", "reference": "R", "currency": "LSL", "amount": "1.00", "due_date": "2026-01-01",
           "installment": 1, "receipt_number": "X", "payment_date": "2026-01-01", "outstanding": "0.00",
           "first_due_date": "2026-02-01", "first_amount": "1.00", "name": "field visit", "opened_on": "2026-01-01",
           "note": "checked"}
    for kind, language in texts.TEXTS:
        for channel in ("sms", "email"):
            subject, text = texts.render(kind, language, channel, {k: ctx[k] for k in texts.FIELDS[kind]},
                                         first_name="Mpho")
            assert text and "{" not in text and "{" not in subject


# --- API: preferences and log -------------------------------------------------------------------------------------
def test_preference_and_log_api_permissions():
    shop = open_shop()
    other = open_shop("other")
    bid = shop.borrower.pk
    lid = disbursed(shop)  # makes the borrower a client of the MFI (what lets its staff see them)
    path = f"/api/v1/borrowers/{bid}/notification-preferences"
    r = client_for(shop.borrower_user).get(path)
    assert r.status_code == 200 and (r.json()["channel"], r.json()["language"], r.json()["email"]) == ("sms", "en", None)
    # the borrower sets their own
    r = set_pref(shop.borrower_user, bid, channel="both", language="st", email="me@example.org")
    assert r.status_code == 200, r.content
    assert (r.json()["channel"], r.json()["language"], r.json()["email"]) == ("both", "st", "me@example.org")
    ev = AuditEvent.objects.filter(action="notification_preference.set", target_id=str(bid)).latest("seq")
    assert ev.after == {"channel": "both", "language": "st", "email": "m***@example.org"} and ev.before is None
    # ... but not someone else's, and another MFI's staff cannot see this borrower at all: 404 like a missing one
    assert client_for(other.borrower_user).get(path).status_code == 404
    assert set_pref(other.borrower_user, bid, channel="none").status_code == 404
    for user in (other.officer, other.admin, other.analyst):
        r = client_for(user).get(path)
        assert r.status_code == 404 and r.json()["code"] == "not_found"
        assert set_pref(user, bid, channel="none").status_code == 404
        assert client_for(user).get(f"/api/v1/borrowers/{bid}/notifications").status_code == 404
    assert client_for(make_user("letsema_admin")).get(path).status_code == 404
    assert client_for(shop.borrower_user).get("/api/v1/borrowers/999999999/notification-preferences").status_code == 404
    # staff of the borrower's MFI: all read, officers and admins change, analysts may not
    assert client_for(shop.analyst).get(path).json()["channel"] == "both"
    r = set_pref(shop.analyst, bid, channel="sms")
    assert r.status_code == 403 and r.json()["code"] == "permission_denied"
    r = set_pref(shop.admin, bid, language="en")
    assert r.status_code == 200 and r.json()["language"] == "en" and r.json()["channel"] == "both"
    # validation
    for body, field in (({"channel": "fax"}, "channel"), ({"language": "fr"}, "language"),
                        ({"email": "not-an-address"}, "email"), ({"colour": "red"}, "colour"),
                        ({"channel": "email", "email": ""}, "email")):
        r = set_pref(shop.borrower_user, bid, **body)
        assert r.status_code == 400 and r.json()["code"] == "validation_error", (body, r.content)
        assert field in json.dumps(r.json()["details"]), (body, r.json())

    # the log: the borrower sees theirs, staff their own MFI's, nobody else anything
    make_due()
    services.deliver_pending()
    log_path = f"/api/v1/borrowers/{bid}/notifications"
    mine = client_for(shop.borrower_user).get(log_path).json()
    assert [x["kind"] for x in mine] == ["loan_disbursed"] and mine[0]["loan"] == lid
    assert {d["channel"] for d in mine[0]["deliveries"]} == {"sms", "email"}
    assert [x["event_key"] for x in client_for(shop.analyst).get(log_path).json()] == [f"loan:{lid}:disbursed"]
    assert client_for(other.borrower_user).get(log_path).status_code == 404
    assert client_for(shop.officer).get(log_path, {"status": "bogus"}).status_code == 400
    assert client_for(shop.officer).get(log_path, {"status": "pending"}).json() == []
    assert shop.borrower.national_id not in json.dumps(mine)


def test_beat_runs_the_delivery_sweep_every_minute_and_the_daily_reminders(settings):
    from config.celery import app

    beat = {v["task"]: v for v in settings.CELERY_BEAT_SCHEDULE.values()}
    assert beat["node.notifications.tasks.deliver_pending"]["schedule"] == 60.0
    assert "node.notifications.tasks.send_reminders" in beat
    assert {"node.notifications.tasks.deliver_pending", "node.notifications.tasks.send_reminders",
            "node.notifications.tasks.deliver_notification"} <= set(app.tasks)
    assert settings.NOTIFY_DAYS_BEFORE_DUE == 3


def test_a_burst_of_commits_queues_one_delivery_run_per_window(settings, monkeypatch,
                                                               django_capture_on_commit_callbacks):
    """Notifications recorded by many commits in one window (LETSEMA_NOTIFY_WAKE_MS) cost one delivery run, due at
    the window's end, which sends them all; the next window queues again. The window is shared by the node's
    processes through its Redis. Redis unreachable: logged, the commit stands, the minute sweep sends them."""
    import redis

    shop = open_shop()
    lid = disbursed(shop)
    queued = []
    monkeypatch.setattr(tasks.deliver_pending, "apply_async", lambda **kw: queued.append(kw))
    settings.LETSEMA_NOTIFY_WAKE_MS = 300
    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(services.WAKE_KEY)

    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):
            repay(shop.officer, lid, "10.00")
    assert queued == [{"countdown": 0.3, "expires": 60}]
    assert Notification.objects.filter(kind="repayment_received", loan_id=lid, status="pending").count() == 3
    time.sleep(0.4)
    with django_capture_on_commit_callbacks(execute=True):
        repay(shop.officer, lid, "10.00")
    assert len(queued) == 2
    assert services.deliver_pending() == {"sent": 5}  # the run sends all four receipts (and the disbursement notice)

    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    warned = []
    monkeypatch.setattr(services.log, "warning", lambda msg, **kw: warned.append(msg))
    with django_capture_on_commit_callbacks(execute=True):
        body = repay(shop.officer, lid, "10.00")
    assert body["receipt_number"] and len(queued) == 2
    assert warned and "could not wake notification delivery" in warned[0]
    assert services.deliver_pending() == {"sent": 1}
