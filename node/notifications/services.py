"""Writes for borrower notifications: recording events, delivering them, reminders, preferences.

Recording (``notify``) runs inside the domain transaction, like ``replication.outbox.outbox_enqueue``: the
notification row exists if and only if the change committed, and after the commit a delivery run is queued
within ``LETSEMA_NOTIFY_WAKE_MS``, coalesced across the node's processes (``node.core.wakeup``; nothing talks to
Celery inside a domain transaction). A beat job (``tasks.deliver_pending``, every minute) picks up whatever is
still pending, so a lost broker message delays a notification but never loses it.

Delivery (``deliver_one``) claims one due row with ``SELECT ... FOR UPDATE SKIP LOCKED`` and records the result
of its attempt — sent, or the error and the next attempt time — in that same transaction, so two workers never
send one notification at the same time and a sent notification is never picked up again. A failure is retried
with exponential backoff (``NOTIFY_RETRY_BASE_SECONDS`` doubling up to ``NOTIFY_RETRY_MAX_SECONDS``) until
``NOTIFY_MAX_ATTEMPTS``, then the row is ``failed``. With channel ``both``, a channel that already succeeded is not
sent again when the other one is retried. The SMS idempotency key is derived from the event key, so a gateway that
honours it drops the repeat if a worker dies between the gateway's answer and the commit.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.mail import EmailMessage
from django.core.mail.message import make_msgid
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from node.audit.services import audit_record
from node.borrowers.models import Borrower
from node.core.errors import ValidationFailed
from node.core.wakeup import wake_after_commit
from node.notifications import texts
from node.notifications.models import (
    Language,
    Notification,
    NotificationAttempt,
    NotificationKind,
    NotificationPreference,
    NotificationStatus,
    NotifyChannel,
    ReminderRun,
)
from node.notifications.sms import send_sms

log = logging.getLogger("letsema.notifications")
WAKE_KEY = "letsema:notifications:deliver-wake"
K = NotificationKind
S = NotificationStatus
INSTALLMENT_KINDS = (K.INSTALLMENT_DUE, K.INSTALLMENT_OVERDUE)


class NotifyOutsideTransaction(RuntimeError):
    pass


# --- masking -----------------------------------------------------------------------------------------------------
def mask_phone(phone: str) -> str:
    p = phone or ""
    if len(p) <= 7:
        return "*" * len(p)
    return p[:4] + "*" * (len(p) - 7) + p[-3:]


def mask_email(email: str) -> str:
    local, _, domain = (email or "").partition("@")
    if not domain:
        return "***"
    return f"{local[:1]}***@{domain}"


def mask_to(channel: str, to: str) -> str:
    return mask_phone(to) if channel == "sms" else mask_email(to)


def _money(value: Decimal) -> str:
    return f"{Decimal(value):.2f}"


# --- recording (inside the domain transaction) ------------------------------------------------------------------
def notify(*, kind: str, event_key: str, borrower_id: int, context: dict, mfi_id: int | None = None,
           loan_id: int | None = None, installment_id: int | None = None) -> Notification | None:
    """Record a notification in the caller's transaction; delivered after it commits. An ``event_key`` already
    recorded is ignored (returns None): one event, one notification."""
    if not connection.in_atomic_block:
        raise NotifyOutsideTransaction("notify must run inside the transaction of the change it describes")
    if kind not in texts.FIELDS:
        raise ValueError(f"unknown notification kind {kind!r}")
    if set(context) != texts.FIELDS[kind]:
        # the only way a field reaches a text: a stray key (e.g. a national ID) is refused, not dropped
        raise ValueError(f"{kind} context needs exactly {sorted(texts.FIELDS[kind])}, got {sorted(context)}")
    if not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in context.values()):
        raise ValueError("notification context values are strings or integers")
    try:
        with transaction.atomic():
            n = Notification.objects.create(event_key=event_key, kind=kind, borrower_id=borrower_id, mfi_id=mfi_id,
                                            loan_id=loan_id, installment_id=installment_id, context=context)
    except IntegrityError:
        if Notification.objects.filter(event_key=event_key).exists():
            return None
        raise
    _deliver_after_commit()
    return n


def _deliver_after_commit() -> None:
    """After commit: make sure a delivery run is due within ``LETSEMA_NOTIFY_WAKE_MS``, coalesced across the node's
    processes (``node.core.wakeup``): a burst of repayments costs a worker one delivery task per window, not one per
    notification (a task each was a third of a worker's time per repayment). A broker failure only delays the
    notification until the minute job."""
    from node.notifications import tasks

    wake_after_commit(key=WAKE_KEY, window_ms=settings.LETSEMA_NOTIFY_WAKE_MS, task=tasks.deliver_pending, log=log,
                      what="notification delivery")


def notify_repayment_received(rep) -> Notification | None:
    """Hook in ``repayment_post`` (its transaction): amount, receipt number and what is still outstanding."""
    loan = rep.loan
    return notify(
        kind=K.REPAYMENT_RECEIVED, event_key=f"repayment:{rep.pk}:received", borrower_id=loan.borrower_id,
        mfi_id=loan.mfi_id, loan_id=loan.pk, context=_receipt_context(rep, loan, _outstanding_after(rep)))


def _outstanding_after(rep) -> Decimal:
    return (rep.outstanding_principal_after + rep.outstanding_interest_after + rep.outstanding_fees_after
            + rep.outstanding_penalties_after)


def _receipt_context(rep, loan, outstanding: Decimal) -> dict:
    """What a message about one receipt says (``repayment_received``, ``repayment_reversed``)."""
    return {"mfi": loan.mfi.name, "reference": loan.reference, "currency": loan.product.currency,
            "amount": _money(rep.amount), "receipt_number": rep.receipt_number,
            "payment_date": rep.payment_date.isoformat(), "outstanding": _money(outstanding)}


def notify_repayments_received(reps) -> int:
    """The set-based ``notify_repayment_received`` for repayments posted together in one transaction (the caller's;
    ``rep.loan`` with its ``mfi`` and ``product`` loaded): one INSERT of their notifications — same kind, event key,
    context and checks as one by one; an event key already recorded is skipped (``ON CONFLICT DO NOTHING``) — then,
    after commit, one delivery: the notification itself for a single one, else one sweep (``deliver_pending``)
    for all of them, rather than a broker message each. Returns how many were recorded."""
    if not connection.in_atomic_block:
        raise NotifyOutsideTransaction("notify must run inside the transaction of the change it describes")
    if not reps:
        return 0
    kind, fields = K.REPAYMENT_RECEIVED, texts.FIELDS[K.REPAYMENT_RECEIVED]
    keys, borrowers, mfis, loans, contexts = [], [], [], [], []
    for rep in reps:
        loan = rep.loan
        context = _receipt_context(rep, loan, _outstanding_after(rep))
        if set(context) != fields:  # the same guard as notify(): only a template's own fields
            raise ValueError(f"{kind} context needs exactly {sorted(fields)}, got {sorted(context)}")
        keys.append(f"repayment:{rep.pk}:received")
        borrowers.append(loan.borrower_id)
        mfis.append(loan.mfi_id)
        loans.append(loan.pk)
        contexts.append(json.dumps(context))
    with connection.cursor() as cur:
        cur.execute(f"""
            INSERT INTO {Notification._meta.db_table}
                (event_key, kind, borrower_id, mfi_id, loan_id, installment_id, context, status, channels, language,
                 attempts, next_attempt_at, last_error, created_at, sent_at)
            SELECT k, %s, b, m, l, NULL, c::jsonb, %s, '', '', 0, now(), '', now(), NULL
            FROM unnest(%s::text[], %s::bigint[], %s::bigint[], %s::bigint[], %s::text[]) AS t(k, b, m, l, c)
            ON CONFLICT (event_key) DO NOTHING
            RETURNING id
        """, [kind, S.PENDING, keys, borrowers, mfis, loans, contexts])  # nosec B608 -- model table name, values bound
        ids = [row[0] for row in cur.fetchall()]
    if ids:
        _deliver_after_commit()
    return len(ids)


def notify_loan_disbursed(loan) -> Notification | None:
    """Hook in ``loan_confirm_disbursement`` (its transaction): the amount and the first due date."""
    from node.loans.models import LoanInstallment

    first = LoanInstallment.objects.filter(loan_id=loan.pk, number__gte=1).order_by("number").first()
    first_amount = (first.principal + first.interest + first.fees + first.penalties) if first else Decimal(0)
    return notify(
        kind=K.LOAN_DISBURSED, event_key=f"loan:{loan.pk}:disbursed", borrower_id=loan.borrower_id,
        mfi_id=loan.mfi_id, loan_id=loan.pk,
        context={"mfi": loan.mfi.name, "reference": loan.reference, "currency": loan.product.currency,
                 "amount": _money(loan.principal), "first_due_date": first.due_date.isoformat() if first else "-",
                 "first_amount": _money(first_amount)},
    )


def notify_repayment_reversed(rep, *, loan, outstanding: Decimal) -> Notification | None:
    """Hook in ``repayment_reverse`` (its transaction), for the repayment staff reversed — not for the later ones
    replayed under it (their money still counts): the borrower who had a receipt hears that it no longer counts, and
    what is outstanding now (``loan``: the repayment's, with its MFI and product). The staff's reason is not sent
    (free text)."""
    return notify(
        kind=K.REPAYMENT_REVERSED, event_key=f"repayment:{rep.pk}:reversed", borrower_id=loan.borrower_id,
        mfi_id=loan.mfi_id, loan_id=loan.pk, context=_receipt_context(rep, loan, outstanding))


def notify_dispute_answered(dispute) -> Notification | None:
    """Hook in ``dispute_resolve`` (its transaction): the borrower hears the lender's answer to their dispute of a
    credit record, with the lender's note to them (written for the borrower, at most 1,000 characters)."""
    loan = dispute.loan
    kind = K.DISPUTE_CORRECTED if dispute.status == "corrected" else K.DISPUTE_CONFIRMED
    return notify(
        kind=kind, event_key=f"dispute:{dispute.pk}:answered", borrower_id=loan.borrower_id, mfi_id=loan.mfi_id,
        loan_id=loan.pk,
        context={"mfi": dispute.mfi.name, "reference": loan.reference,
                 "opened_on": dispute.opened_at.date().isoformat(), "note": dispute.resolution_note})


def notify_charge_added(charge) -> Notification | None:
    """Hook in ``loan_charge_add`` (its transaction): the borrower hears of a fee or penalty the day it is added."""
    loan = charge.loan
    return notify(
        kind=K.CHARGE_ADDED, event_key=f"charge:{charge.pk}:added", borrower_id=loan.borrower_id, mfi_id=loan.mfi_id,
        loan_id=loan.pk,
        context={"mfi": loan.mfi.name, "reference": loan.reference, "currency": loan.product.currency,
                 "amount": _money(charge.amount), "name": charge.name[:60],
                 "due_date": charge.installment.due_date.isoformat(), "installment": charge.installment.number},
    )


# --- reminders (set-based) ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReminderResult:
    business_date: date
    upcoming_created: int
    overdue_created: int


def _reminder_sql(kind: str, key_suffix_sql: str) -> str:
    from node.loans.models import Loan, LoanInstallment, LoanProduct
    from node.mfis.models import Mfi

    return f"""
        INSERT INTO {Notification._meta.db_table}
            (event_key, kind, borrower_id, mfi_id, loan_id, installment_id, context, status, channels, language,
             attempts, next_attempt_at, last_error, created_at, sent_at)
        SELECT 'installment:' || i.id || {key_suffix_sql}, '{kind}', l.borrower_id, l.mfi_id, l.id, i.id,
               jsonb_build_object(
                   'mfi', m.name, 'reference', l.reference, 'currency', p.currency, 'installment', i.number,
                   'due_date', to_char(i.due_date, 'YYYY-MM-DD'),
                   'amount', (i.principal + i.interest + i.fees + i.penalties
                              - i.principal_paid - i.interest_paid - i.fees_paid - i.penalties_paid)::text),
               'pending', '', '', 0, now(), '', now(), NULL
        FROM {LoanInstallment._meta.db_table} i
        JOIN {Loan._meta.db_table} l ON l.id = i.loan_id
        JOIN {Mfi._meta.db_table} m ON m.id = l.mfi_id
        JOIN {LoanProduct._meta.db_table} p ON p.id = l.product_id
        WHERE i.due_date = %s AND i.due_date >= %s AND i.number >= 1 AND l.status = 'active'
          AND i.principal + i.interest + i.fees + i.penalties
              > i.principal_paid + i.interest_paid + i.fees_paid + i.penalties_paid
        ON CONFLICT (event_key) DO NOTHING
    """  # nosec B608 -- model table name, values bound


def reminders_create(*, day: date, days_before: int | None = None, by: str = "",
                     upcoming_not_before: date | None = None) -> ReminderResult:
    """For business date ``day``: a reminder for every unpaid installment of an active loan due on
    ``day + days_before``, and an overdue notice for every one due on ``day - 1`` and still unpaid. Two INSERT ...
    SELECT statements (no per-loan work in Python); the unique event key makes a second run create nothing."""
    n = settings.NOTIFY_DAYS_BEFORE_DUE if days_before is None else days_before
    if n < 1:
        raise ValidationFailed("days_before must be at least 1.", details={"fields": {"days_before": [">= 1"]}})
    with transaction.atomic():
        with connection.cursor() as cur:
            cur.execute(_reminder_sql(K.INSTALLMENT_DUE, "':due:' || to_char(i.due_date, 'YYYY-MM-DD')"),
                        [day + timedelta(days=n), upcoming_not_before or date.min])
            upcoming = max(cur.rowcount, 0)
            cur.execute(_reminder_sql(K.INSTALLMENT_OVERDUE, "':overdue'"), [day - timedelta(days=1), date.min])
            overdue = max(cur.rowcount, 0)
        run, _ = ReminderRun.objects.select_for_update().get_or_create(business_date=day, defaults={"days_before": n})
        run.days_before = n
        run.upcoming_created += upcoming
        run.overdue_created += overdue
        run.runs += 1
        run.last_run_at, run.last_run_by = timezone.now(), by[:60]
        run.save()
        if upcoming or overdue:
            _deliver_after_commit()
    log.info("reminders created", extra={"business_date": day.isoformat(), "upcoming": upcoming, "overdue": overdue})
    return ReminderResult(day, upcoming, overdue)


def reminders_run_due(*, by: str = "celery-beat") -> list[ReminderResult]:
    """The daily job: the node's business date, plus any business dates missed since the last run (at most
    ``NOTIFY_REMINDER_CATCHUP_DAYS``). A missed day's due-soon reminders are made only for dates not yet past."""
    from node.cob.services import business_date_get

    today = business_date_get()
    last = ReminderRun.objects.order_by("-business_date").values_list("business_date", flat=True).first()
    days = [today]
    if last is not None and last < today:
        first = max(last + timedelta(days=1), today - timedelta(days=settings.NOTIFY_REMINDER_CATCHUP_DAYS))
        days = [first + timedelta(days=i) for i in range((today - first).days + 1)]
    return [reminders_create(day=d, by=by, upcoming_not_before=today) for d in days]


# --- delivery (after commit) -------------------------------------------------------------------------------------
def retry_delay(attempts: int) -> timedelta:
    """Wait after the ``attempts``-th failed attempt: base, 2 x base, 4 x base ... capped."""
    base, cap = settings.NOTIFY_RETRY_BASE_SECONDS, settings.NOTIFY_RETRY_MAX_SECONDS
    return timedelta(seconds=min(base * 2 ** max(attempts - 1, 0), cap))


def preference_for(borrower_id: int) -> NotificationPreference:
    pref = NotificationPreference.objects.filter(borrower_id=borrower_id).first()
    return pref or NotificationPreference(borrower_id=borrower_id)


def _channels(channel: str) -> list[str]:
    return {NotifyChannel.SMS: ["sms"], NotifyChannel.EMAIL: ["email"], NotifyChannel.BOTH: ["sms", "email"]}.get(
        channel, [])


def _still_true(n: Notification) -> bool:
    """An installment reminder is dropped once the installment is paid or the loan is no longer active."""
    from node.loans.models import LoanInstallment, LoanStatus

    if n.kind not in INSTALLMENT_KINDS or n.installment_id is None:
        return True
    i = LoanInstallment.objects.select_related("loan").filter(pk=n.installment_id).first()
    if i is None or i.loan.status != LoanStatus.ACTIVE:
        return False
    return i.principal + i.interest + i.fees + i.penalties > (
        i.principal_paid + i.interest_paid + i.fees_paid + i.penalties_paid)


def _send(channel: str, to: str, subject: str, text: str, message_id: str) -> str:
    if channel == "sms":
        return send_sms(to, text, message_id=message_id)
    domain = settings.DEFAULT_FROM_EMAIL.rsplit("@", 1)[-1].strip(" >") or "letsema.local"
    msgid = make_msgid(idstring=message_id, domain=domain)
    EmailMessage(subject=subject, body=text, from_email=settings.DEFAULT_FROM_EMAIL, to=[to],
                 headers={"Message-ID": msgid}).send(fail_silently=False)
    return msgid


def deliver_one(notification_id: int | None = None) -> str | None:
    """Claim one due pending notification (``notification_id``, or the oldest due) and attempt it, in one
    transaction. Returns its new status, or None when there was nothing to claim (sent, locked by another worker,
    not due yet)."""
    now = timezone.now()
    with transaction.atomic():
        qs = Notification.objects.select_for_update(skip_locked=True).filter(status=S.PENDING)
        if notification_id is None:
            qs = qs.filter(next_attempt_at__lte=now)
        else:  # queued by the commit: a first attempt goes now whatever the clocks say; a retry waits its turn
            qs = qs.filter(Q(next_attempt_at__lte=now) | Q(attempts=0), pk=notification_id)
        n = qs.order_by("next_attempt_at", "id").first()
        if n is None:
            return None
        try:
            with transaction.atomic():
                return _attempt(n)
        except Exception as exc:  # a bad row must not block the queue: it counts as an attempt
            log.exception("notification delivery crashed", extra={"notification": n.pk, "kind": n.kind})
            n = Notification.objects.get(pk=n.pk)  # still locked by this transaction
            n.attempts += 1
            n.last_error = f"internal error: {type(exc).__name__}"
            if n.attempts >= settings.NOTIFY_MAX_ATTEMPTS:
                n.status = S.FAILED
            else:
                n.next_attempt_at = timezone.now() + retry_delay(n.attempts)
            n.save(update_fields=["status", "attempts", "last_error", "next_attempt_at"])
            return n.status


def _attempt(n: Notification) -> str:
    """One attempt of a claimed notification, on each of its channels not yet sent; records the outcome."""
    borrower = Borrower.objects.only("id", "phone", "first_name", "national_id").get(pk=n.borrower_id)
    pref = preference_for(n.borrower_id)
    if not n.channels:  # first attempt: the borrower's preference at this moment decides, for every retry
        n.channels, n.language = ",".join(_channels(pref.channel)), pref.language or Language.EN
        if not n.channels:
            return _finish(n, S.SKIPPED, "the borrower chose no notifications")
    if not _still_true(n):
        return _finish(n, S.CANCELLED, "no longer applies: the installment is paid or the loan is not active")
    done = set(n.log.filter(sent_at__isnull=False).values_list("channel", flat=True))
    n.attempts += 1
    errors, refused = [], False
    for channel in (c for c in n.channel_list() if c not in done):
        to = borrower.phone if channel == "sms" else pref.email
        entry = NotificationAttempt(notification=n, attempt=n.attempts, channel=channel,
                                    to_masked=mask_to(channel, to), language=n.language,
                                    template=texts.template_name(n.kind, n.language, channel),
                                    attempted_at=timezone.now())
        try:
            if not to:
                raise _NoAddress("no e-mail address on the borrower's notification preference")
            subject, text = texts.render(n.kind, n.language, channel, n.context, first_name=borrower.first_name)
            if borrower.national_id and (borrower.national_id in text or borrower.national_id in subject):
                refused = True
                raise _Refused("refused: the text would contain the national ID")
            stable_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"letsema:{settings.DISTRICT.code}:{n.event_key}:{channel}"))
            entry.gateway_message_id = _send(channel, to, subject, text, stable_id)[:200]
            entry.sent_at = timezone.now()
            log.info("notification sent", extra={"notification": n.pk, "kind": n.kind, "channel": channel,
                                                 "to": entry.to_masked, "language": n.language,
                                                 "template": entry.template, "attempt": n.attempts,
                                                 "gateway_message_id": entry.gateway_message_id})
        except Exception as exc:  # noqa: BLE001 - any failure is recorded and retried (SmsSendFailed, SMTP, ...)
            entry.error = f"{type(exc).__name__}: {exc}"[:300]
            errors.append(f"{channel}: {entry.error}")
            log.warning("notification attempt failed", extra={"notification": n.pk, "kind": n.kind,
                                                              "channel": channel, "to": entry.to_masked,
                                                              "attempt": n.attempts, "error": entry.error})
        entry.save()
    if not errors:
        n.sent_at = timezone.now()
        return _finish(n, S.SENT, "")
    n.last_error = "; ".join(errors)[:300]
    if refused or n.attempts >= settings.NOTIFY_MAX_ATTEMPTS:
        return _finish(n, S.FAILED, n.last_error)
    n.next_attempt_at = timezone.now() + retry_delay(n.attempts)
    n.save(update_fields=["channels", "language", "attempts", "last_error", "next_attempt_at"])
    return n.status


class _NoAddress(Exception):
    pass


class _Refused(Exception):
    pass


def _finish(n: Notification, status: str, error: str) -> str:
    n.status, n.last_error = status, error[:300]
    n.save(update_fields=["status", "channels", "language", "attempts", "last_error", "sent_at"])
    return status


def deliver_batch(*, limit: int = 200, seconds: float = 10.0) -> tuple[dict[str, int], bool]:
    """Deliver due notifications one transaction each, until none is due, ``limit`` or ``seconds``. Safe to run
    on several workers at once (SKIP LOCKED). Returns the counts by new status, and whether more may be due."""
    counts: dict[str, int] = {}
    deadline = time.monotonic() + seconds
    for _ in range(limit):
        status = deliver_one()
        if status is None:
            return counts, False
        counts[status] = counts.get(status, 0) + 1
        if time.monotonic() > deadline:
            break
    return counts, True


def deliver_pending(*, limit: int = 1000, seconds: float = 60.0) -> dict[str, int]:
    """Everything due now (up to ``limit`` / ``seconds``): counts by new status."""
    return deliver_batch(limit=limit, seconds=seconds)[0]


# --- preferences -------------------------------------------------------------------------------------------------
def _pref_audit(p: NotificationPreference) -> dict:
    return {"channel": p.channel, "language": p.language, "email": mask_email(p.email) if p.email else ""}


@transaction.atomic
def preference_set(*, actor, borrower: Borrower, channel: str | None = None, language: str | None = None,
                   email: str | None = None) -> NotificationPreference:
    """Set the borrower's channel, language and e-mail address (fields left None keep their value)."""
    Borrower.objects.select_for_update().only("id").get(pk=borrower.pk)  # serialise changes per borrower
    pref = NotificationPreference.objects.filter(borrower_id=borrower.pk).first()
    created = pref is None
    pref = pref or NotificationPreference(borrower_id=borrower.pk)
    before = None if created else _pref_audit(pref)
    errors: dict[str, list[str]] = {}
    if channel is not None:
        if channel not in NotifyChannel.values:
            errors["channel"] = [f"one of {', '.join(NotifyChannel.values)}"]
        pref.channel = channel
    if language is not None:
        if language not in Language.values:
            errors["language"] = [f"one of {', '.join(Language.values)}"]
        pref.language = language
    if email is not None:
        pref.email = email.strip()
    if pref.channel in (NotifyChannel.EMAIL, NotifyChannel.BOTH) and not pref.email:
        errors.setdefault("email", []).append("an e-mail address is needed for e-mail notifications")
    if errors:
        raise ValidationFailed("The notification preference has invalid fields.", details={"fields": errors})
    pref.updated_by = actor
    pref.save()
    audit_record(actor=actor, action="notification_preference.set", target_type="borrower", target_id=borrower.pk,
                 mfi=getattr(actor, "mfi", None), before=before, after=_pref_audit(pref))
    return pref
