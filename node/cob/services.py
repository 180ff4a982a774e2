"""Close of business (COB): the nightly job that keeps arrears current without anyone looking at a loan.

For a business day D, in chunks of active loans (each chunk one transaction, loan rows locked first — the same
order as a repayment, so the two never deadlock):

1. overdue penalties: an installment unpaid more than the product's ``grace_days`` after its due date is charged
   the product's ``overdue_penalty`` once (``penalty_applied_on`` remembers it) — cash-based accounting, so the
   charge sits on the installment and becomes income when paid;
2. days past due: D minus the due date of the oldest installment with anything unpaid that fell due before D
   (an installment due on D is not late yet); the delinquency bucket follows (``LETSEMA_DELINQUENCY_BUCKETS``);
3. a loan with nothing left to pay is closed (a safety net: a final repayment closes it at once);
4. every bucket change and closure emits a credit event through the outbox, in the same transaction;
5. at a month end, once every chunk is done: the portfolio's regulatory classification (``month_end_snapshot``) and
   each MFI's loan loss provision booked to what it requires (``provisions_post``).

Set-based SQL does the per-installment work, so the cost grows with the number of chunks, not of loans. The run
records a cursor with every chunk: a run that stops (crash, ``max_chunks``) resumes where it stopped, and closing a
day that is already closed changes nothing. Catching up several missed days closes them as one, as of the last.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Sum
from django.utils import timezone

from node.audit.services import audit_record
from node.cob.models import BusinessDate, CobRun, CobStatus, MonthEndPortfolio
from node.core.errors import Conflict, ValidationFailed
from node.core.money import exact_mul, to_money
from node.credit.stacking import hold_release_event
from node.ledger.chart import LOAN_LOSS_PROVISION, PROVISION_EXPENSE
from node.ledger.models import JournalEntry, JournalLine
from node.ledger.services import PostingLine, journal_post, ledger_ensure_chart
from node.loans.credit_events import credit_event_payload, network_loan_key
from node.loans.models import Loan, LoanInstallment, LoanProduct, LoanStatus
from node.loans.products import validate_overdue_penalty
from node.mfis.models import Mfi
from replication.outbox import outbox_enqueue_many

COB_LOCK = 7_305_001  # pg advisory lock: one close of business at a time per node
#: The portfolio-at-risk measures over active loans ``l`` (days past due as close of business keeps them): the PAR
#: report computes them on the loans now, the daily snapshot keeps them per closed day — one definition for both.
PAR_MEASURES_SQL = """COUNT(*) AS loans, COALESCE(SUM(l.principal_outstanding), 0) AS outstanding,
               COUNT(*) FILTER (WHERE l.days_past_due > 30) AS loans_at_risk_30,
               COALESCE(SUM(l.principal_outstanding) FILTER (WHERE l.days_past_due > 1), 0) AS at_risk_1,
               COALESCE(SUM(l.principal_outstanding) FILTER (WHERE l.days_past_due > 30), 0) AS at_risk_30,
               COALESCE(SUM(l.principal_outstanding) FILTER (WHERE l.days_past_due > 60), 0) AS at_risk_60,
               COALESCE(SUM(l.principal_outstanding) FILTER (WHERE l.days_past_due > 90), 0) AS at_risk_90"""


# --- the business date ---------------------------------------------------------------------------
def business_date_get() -> date:
    """The business day in progress (today's date until the first close of business)."""
    row = BusinessDate.objects.filter(pk=1).first()
    return row.current if row else timezone.localdate()


def closed_through() -> date | None:
    """The last business day closed, or None before the first close of business."""
    row = BusinessDate.objects.filter(pk=1).first()
    return row.current - timedelta(days=1) if row else None


def _business_date_set(day: date) -> None:
    BusinessDate.objects.update_or_create(pk=1, defaults={"current": day})


# --- configuration ---------------------------------------------------------------------------------
def buckets() -> list[tuple[int, str]]:
    """[(lowest days past due, name)], ascending, starting at 0."""
    b = sorted((int(lo), str(name)) for lo, name in settings.LETSEMA_DELINQUENCY_BUCKETS)
    if not b or b[0][0] != 0:
        raise ValueError("LETSEMA_DELINQUENCY_BUCKETS must start at 0 days")
    return b


def bucket_for(dpd: int) -> str:
    name = "current"
    for lo, n in buckets():
        if dpd >= lo:
            name = n
    return name


# --- a loan that owes nothing closes (here, by a repayment, by a waiver) ---------------------------------------
def closing_fields(now) -> dict:
    """What closing a loan writes on its row: the status, when, and its arrears (kept by close of business) cleared.
    Callers write them in one UPDATE for all the loans they close and set them on the instances they hold."""
    return {"status": LoanStatus.CLOSED, "closed_at": now, "days_past_due": 0, "delinquency_bucket": bucket_for(0),
            "overdue_since": None, "updated_at": now}


def closed_events(loan: Loan) -> list[tuple[str, str, dict]]:
    """What the network is told when ``loan`` (already carrying ``closing_fields``) closes: ``loan.closed`` with
    nothing outstanding and no days past due, and its stacking hold released. The caller enqueues them."""
    key = loan.borrower.borrower_key
    return [("loan.closed", key, credit_event_payload(loan, outstanding_principal=Decimal("0.00"), days_past_due=0)),
            hold_release_event(borrower_key=key, loan_key=network_loan_key(loan))]


# --- the run ---------------------------------------------------------------------------------------
@dataclass
class CobResult:
    business_date: date
    already_closed: bool
    completed: bool
    loans: int
    summary: dict
    seconds: float


def cob_close(*, through: date | None = None, actor_name: str = "cob", chunk_size: int = 2000,
              max_chunks: int | None = None, progress: Callable[[int, int], None] | None = None) -> CobResult:
    """Close the business day(s) up to ``through`` (default: yesterday). Resumes an unfinished run; a day already
    closed is a no-op. ``max_chunks`` bounds the work done now (the run stays resumable)."""
    today = timezone.localdate()
    through = through or today - timedelta(days=1)
    if through > today:
        raise ValidationFailed("A business day can be closed only once it has started; this one is in the future.",
                               code="cob_future_date", details={"date": through.isoformat(), "today": today.isoformat()})
    with connection.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(%s)", [COB_LOCK])
        if not cur.fetchone()[0]:
            raise Conflict("Close of business is already running on this node.", code="cob_running")
    try:
        return _close(through, actor_name, chunk_size, max_chunks, progress)
    finally:
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock(%s)", [COB_LOCK])


def _close(through: date, actor_name: str, chunk_size: int, max_chunks: int | None, progress) -> CobResult:
    started = time.monotonic()
    unfinished = CobRun.objects.filter(status=CobStatus.RUNNING).order_by("business_date").first()
    last = closed_through()
    if unfinished is None and last is not None and through <= last:
        run = CobRun.objects.filter(business_date__gte=through, status=CobStatus.COMPLETED).order_by("business_date").first()
        return CobResult(through, True, True, run.loans_done if run else 0, run.summary if run else {}, 0.0)
    day = unfinished.business_date if unfinished else through
    run = unfinished or CobRun.objects.create(
        business_date=day, started_by=actor_name,
        loans_total=Loan.objects.filter(status=LoanStatus.ACTIVE).count(),
        summary={"penalties_applied": 0, "penalties_total": "0.00", "bucket_moves": {}, "closed": 0, "events": 0,
                 "days_closed": (day - last).days if last else 1},
    )
    chunks = 0
    while max_chunks is None or chunks < max_chunks:
        ids = list(Loan.objects.filter(status=LoanStatus.ACTIVE, pk__gt=run.cursor).order_by("pk")
                   .values_list("pk", flat=True)[:chunk_size])
        if not ids:
            break
        with transaction.atomic():
            _chunk(run, day, ids)
        chunks += 1
        if progress:
            progress(run.loans_done, run.loans_total)
    done = not Loan.objects.filter(status=LoanStatus.ACTIVE, pk__gt=run.cursor).exists()
    if done:
        with transaction.atomic():
            run.status, run.finished_at = CobStatus.COMPLETED, timezone.now()
            par = Loan.objects.filter(status=LoanStatus.ACTIVE, days_past_due__gt=0)
            run.summary["in_arrears"] = par.count()
            run.summary["by_bucket"] = dict(Counter(
                Loan.objects.filter(status=LoanStatus.ACTIVE).values_list("delinquency_bucket", flat=True)))
            ends = month_ends_between(last, day)
            for end in ends:
                month_end_snapshot(month_end=end, as_of=day)
                posted = provisions_post(month_end=end)
                if posted:
                    run.summary.setdefault("provisions", []).extend(p.as_summary() for p in posted)
            if ends:
                run.summary["month_end_snapshots"] = [e.isoformat() for e in ends]
            run.summary["portfolio_day"] = portfolio_day_snapshot(day=day)  # also marks the day as kept
            run.save(update_fields=["status", "finished_at", "summary"])
            _business_date_set(day + timedelta(days=1))
            audit_record(actor=None, action="cob.completed", target_type="business_date", target_id=day.isoformat(),
                         mfi=None, after={"by": actor_name, **run.summary, "loans": run.loans_done})
    return CobResult(day, False, done, run.loans_done, run.summary, time.monotonic() - started)


# --- month ends ------------------------------------------------------------------------------------
def regulatory_classes() -> list[tuple[int, str, Decimal]]:
    """[(lowest days past due, class, provision rate)], ascending, starting at 0."""
    c = sorted((int(lo), str(name), Decimal(str(rate))) for lo, name, rate in settings.LETSEMA_REGULATORY_CLASSES)
    if not c or c[0][0] != 0:
        raise ValueError("LETSEMA_REGULATORY_CLASSES must start at 0 days")
    return c


def provision_rate(klass: str) -> Decimal | None:
    """The provision rate of a regulatory class, to 4 places (as the return shows every ratio); None if unknown."""
    rate = next((rate for _, name, rate in regulatory_classes() if name == klass), None)
    return rate.quantize(Decimal("0.0001")) if rate is not None else None


def provision_for(outstanding: Decimal, klass: str) -> Decimal:
    """The provision a class requires on ``outstanding`` principal: rate × outstanding, to the cent (HALF_EVEN).
    The regulatory return and the month-end provisioning entry both use this, per class, then add the classes."""
    return to_money(exact_mul(outstanding, provision_rate(klass) or 0), 2)


@dataclass(frozen=True)
class ProvisionPosting:
    mfi_code: str
    month_end: date
    required: Decimal  # what the month end's classification requires
    booked_before: Decimal  # the provision account's balance before this entry
    entry_id: int

    @property
    def adjustment(self) -> Decimal:  # > 0: provision charged (expense); < 0: released
        return self.required - self.booked_before

    def as_summary(self) -> dict:
        return {"mfi": self.mfi_code, "month_end": self.month_end.isoformat(), "required": f"{self.required:.2f}",
                "adjustment": f"{self.adjustment:.2f}", "entry": self.entry_id}


def provisions_post(*, month_end: date) -> list[ProvisionPosting]:
    """Book each MFI's loan loss provision to what ``month_end``'s classification requires (the regulatory return's
    "required provision" total): one entry per MFI whose provision account (1190, contra-asset) as of the month end
    differs — Dr Provision expense (5100) / Cr Loan loss provision for an increase, the reverse for a release (a
    loan repaid, closed, written off or back to current). Dated the month end, source key
    ``provision:<mfi>:<YYYY-MM>``: posted at most once per MFI and month (a re-run posts nothing). An MFI whose
    portfolio is gone has its whole provision released. Runs inside close of business's completing transaction."""
    if not settings.LETSEMA_POST_PROVISIONS:
        return []
    zero = Decimal("0.00")
    required: dict[int, Decimal] = {}
    for mfi_id, klass, outstanding in (MonthEndPortfolio.objects.filter(month_end=month_end)
                                       .values("mfi_id", "klass").annotate(o=Sum("outstanding_principal"))
                                       .values_list("mfi_id", "klass", "o")):
        required[mfi_id] = required.get(mfi_id, zero) + provision_for(outstanding, klass)
    booked = dict(JournalLine.objects.filter(account__code=LOAN_LOSS_PROVISION, entry__entry_date__lte=month_end)
                  .values("account__mfi_id").annotate(b=Sum(F("credit") - F("debit")))
                  .values_list("account__mfi_id", "b"))
    month = f"{month_end:%Y-%m}"
    posted = []
    for mfi in Mfi.objects.filter(pk__in=set(required) | {k for k, v in booked.items() if v}).order_by("pk"):
        need, have = required.get(mfi.pk, zero), booked.get(mfi.pk) or zero
        key = f"provision:{mfi.pk}:{month}"
        if need == have or JournalEntry.objects.filter(source_key=key).exists():
            continue  # nothing to change, or already booked for the month (a classification redone since stays)
        ledger_ensure_chart(mfi=mfi)
        delta = need - have
        lines = ([PostingLine(PROVISION_EXPENSE, debit=delta), PostingLine(LOAN_LOSS_PROVISION, credit=delta)]
                 if delta > 0 else
                 [PostingLine(LOAN_LOSS_PROVISION, debit=-delta), PostingLine(PROVISION_EXPENSE, credit=-delta)])
        entry = journal_post(
            mfi=mfi, entry_date=month_end, lines=lines, source_key=key, reference_type="provisioning",
            reference_id=month,
            description=f"Loan loss provision at {month_end.isoformat()}: required {need:.2f}, booked {have:.2f}")
        posted.append(ProvisionPosting(mfi_code=mfi.code, month_end=month_end, required=need, booked_before=have,
                                       entry_id=entry.pk))
    return posted


def month_ends_between(after: date | None, through: date) -> list[date]:
    """The month ends a close of business through ``through`` passes, the last closed day being ``after``."""
    ends, start = [], (after + timedelta(days=1)) if after else through
    month = date(start.year, start.month, 1)
    while month <= through:
        nxt = date(month.year + month.month // 12, month.month % 12 + 1, 1)
        end = nxt - timedelta(days=1)
        if start <= end <= through:
            ends.append(end)
        month = nxt
    return ends


def month_end_snapshot(*, month_end: date, as_of: date) -> int:
    """Classify the active portfolio as close of business has just left it (arrears as of ``as_of``) and keep it
    for ``month_end``'s regulatory return, replacing an earlier snapshot of that month. One set-based statement."""
    parts, params = [], []
    for lo, name, _ in reversed(regulatory_classes()):
        parts.append("WHEN l.days_past_due >= %s THEN %s")
        params += [lo, name]
    with connection.cursor() as cur:
        cur.execute("DELETE FROM cob_monthendportfolio WHERE month_end = %s", [month_end])
        cur.execute(f"""
            INSERT INTO cob_monthendportfolio (month_end, as_of, mfi_id, product_id, officer_id, klass, loans,
                                               outstanding_principal, arrears)
            SELECT %s, %s, l.mfi_id, l.product_id, l.approved_by_id, CASE {" ".join(parts)} END, COUNT(*),
                   SUM(l.principal_outstanding), COALESCE(SUM(ar.arrears), 0)
            FROM loans_loan l
            LEFT JOIN (  -- only loans close of business found past due have arrears
                SELECT i.loan_id, SUM(i.principal + i.interest + i.fees + i.penalties
                                      - i.principal_paid - i.interest_paid - i.fees_paid - i.penalties_paid) AS arrears
                FROM loans_loaninstallment i
                JOIN loans_loan a ON a.id = i.loan_id AND a.status = 'active' AND a.days_past_due > 0
                WHERE i.number >= 1 AND i.due_date < %s
                GROUP BY i.loan_id
            ) ar ON ar.loan_id = l.id
            WHERE l.status = 'active'
            GROUP BY 3, 4, 5, 6
        """, [month_end, as_of, *params, as_of])  # nosec B608 -- SQL from code, values bound
        return cur.rowcount


def portfolio_day_snapshot(*, day: date) -> int:
    """Keep the portfolio's risk as close of business has just left it on ``day`` (``PortfolioDay``; replacing an
    earlier set for that day): the PAR trend reads it. One set-based statement, the PAR report's measures."""
    with connection.cursor() as cur:
        cur.execute("DELETE FROM cob_portfolioday WHERE business_date = %s", [day])
        cur.execute(f"""
            INSERT INTO cob_portfolioday (business_date, mfi_id, product_id, officer_id, loans, outstanding_principal,
                                          loans_at_risk_30, at_risk_1, at_risk_30, at_risk_60, at_risk_90)
            SELECT %s, l.mfi_id, l.product_id, l.approved_by_id, {PAR_MEASURES_SQL}
            FROM loans_loan l
            WHERE l.status = 'active'
            GROUP BY 2, 3, 4
        """, [day])  # nosec B608 -- SQL from code, values bound
        return cur.rowcount


def day_kept(day: date) -> bool:
    """Whether close of business kept the portfolio of ``day`` (its own close, since the daily snapshot exists)."""
    return CobRun.objects.filter(business_date=day, status=CobStatus.COMPLETED,
                                 summary__has_key="portfolio_day").exists()


def _bucket_case() -> tuple[str, list]:
    parts, params = [], []
    for lo, name in reversed(buckets()):
        parts.append("WHEN c.dpd >= %s THEN %s")
        params += [lo, name]
    return "CASE " + " ".join(parts) + " END", params


def _chunk(run: CobRun, day: date, ids: list[int]) -> None:
    hi = ids[-1]  # the resume cursor: every id up to here is done after this chunk commits
    with connection.cursor() as cur:
        # lock the loans first (a repayment locks the loan, then its installments)
        cur.execute("SELECT id FROM loans_loan WHERE id = ANY(%s) AND status = 'active' ORDER BY id FOR UPDATE", [ids])
        locked = [r[0] for r in cur.fetchall()]
        penalties_n, penalties_total = _apply_penalties(cur, day, locked)
        case_sql, case_params = _bucket_case()
        cur.execute(f"""
            WITH oldest AS (
                SELECT i.loan_id, MIN(i.due_date) AS due
                FROM loans_loaninstallment i
                WHERE i.loan_id = ANY(%s) AND i.number >= 1 AND i.due_date < %s
                  AND i.principal + i.interest + i.fees + i.penalties
                      > i.principal_paid + i.interest_paid + i.fees_paid + i.penalties_paid
                GROUP BY i.loan_id
            ), c AS (
                SELECT l.id, l.delinquency_bucket AS old_bucket, o.due,
                       COALESCE(%s::date - o.due, 0) AS dpd
                FROM loans_loan l LEFT JOIN oldest o ON o.loan_id = l.id
                WHERE l.id = ANY(%s)
            ), upd AS (
                UPDATE loans_loan l
                SET days_past_due = c.dpd, delinquency_bucket = {case_sql}, overdue_since = c.due
                FROM c WHERE l.id = c.id
                  AND (l.days_past_due, l.overdue_since) IS DISTINCT FROM (c.dpd, c.due)  -- rewrite changed rows only
                RETURNING l.id, c.old_bucket, l.delinquency_bucket, c.dpd
            )
            SELECT id, old_bucket, delinquency_bucket, dpd FROM upd WHERE old_bucket <> delinquency_bucket
        """, [locked, day, day, locked, *case_params])  # nosec B608 -- SQL from code, values bound
        moved = cur.fetchall()
        cur.execute("""
            SELECT l.id FROM loans_loan l WHERE l.id = ANY(%s) AND NOT EXISTS (
                SELECT 1 FROM loans_loaninstallment i WHERE i.loan_id = l.id
                  AND i.principal + i.interest + i.fees + i.penalties
                      > i.principal_paid + i.interest_paid + i.fees_paid + i.penalties_paid)
        """, [locked])
        settled = {r[0] for r in cur.fetchall()}
    events = _emit(moved, settled, day)
    s = run.summary
    s["penalties_applied"] += penalties_n
    s["penalties_total"] = str(Decimal(s["penalties_total"]) + penalties_total)
    for _, old, new, _ in moved:
        key = f"{old}->{new}"
        s["bucket_moves"][key] = s["bucket_moves"].get(key, 0) + 1
    s["closed"] += len(settled)
    s["events"] += events
    run.cursor, run.loans_done = hi, run.loans_done + len(locked)
    run.save(update_fields=["cursor", "loans_done", "summary"])


def _apply_penalties(cur, day: date, ids: list[int]) -> tuple[int, Decimal]:
    """Charge each product's overdue penalty once per installment overdue beyond the grace days."""
    n, total = 0, Decimal(0)
    products = LoanProduct.objects.filter(loans__id__in=ids, overdue_penalty__isnull=False).distinct()
    for product in products:
        spec = validate_overdue_penalty(product.overdue_penalty)
        if spec is None:
            continue
        if spec["calculation"] == "FLAT":
            amount_sql, amount_params = "%s::numeric", [spec["amount"]]
        else:
            amount_sql = ("ROUND((i.principal - i.principal_paid + i.interest - i.interest_paid) * %s::numeric / 100, "
                          "%s)")
            amount_params = [spec["amount"], product.currency_decimals]
        # the amount only reads columns this UPDATE does not change, so RETURNING it gives what was charged
        cur.execute(f"""
            UPDATE loans_loaninstallment i
            SET penalties = i.penalties + {amount_sql}, penalty_applied_on = %s
            FROM loans_loan l
            WHERE l.id = i.loan_id AND l.id = ANY(%s) AND l.product_id = %s
              AND i.number >= 1 AND i.penalty_applied_on IS NULL AND %s::date - i.due_date > %s
              AND i.principal + i.interest + i.fees > i.principal_paid + i.interest_paid + i.fees_paid
              AND {amount_sql} > 0
            RETURNING {amount_sql}
        """, [*amount_params, day, ids, product.pk, day, spec["grace_days"], *amount_params, *amount_params])  # nosec B608 -- SQL from code, values bound
        charged = [r[0] for r in cur.fetchall()]
        n += len(charged)
        total += sum(charged, Decimal(0))
    return n, total


def _emit(moved: list[tuple], settled: set[int], day: date) -> int:
    changed = {r[0]: r for r in moved}
    wanted = set(changed) | settled
    if not wanted:
        return 0
    outstanding = dict(LoanInstallment.objects.filter(loan_id__in=wanted).values("loan_id")
                       .annotate(o=Sum(F("principal") - F("principal_paid"))).values_list("loan_id", "o"))
    if settled:
        Loan.objects.filter(pk__in=settled).update(**closing_fields(timezone.now()))
    out: list[tuple[str, str, dict]] = []
    for loan in (Loan.objects.filter(pk__in=wanted).select_related("mfi", "product", "borrower").order_by("pk")):
        if loan.pk in settled:
            out.extend(closed_events(loan))
        else:
            key = loan.borrower.borrower_key
            out.append(("loan.dpd_changed", key, credit_event_payload(
                loan, outstanding_principal=outstanding.get(loan.pk, Decimal(0)), days_past_due=changed[loan.pk][3])))
    outbox_enqueue_many(out)
    return len(wanted)
