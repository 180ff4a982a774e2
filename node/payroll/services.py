"""Payroll deduction writes: employers, enrolments, the monthly deduction file (export) and the employer's result
file (import), whose valid rows become repayments (channel ``payroll``) through ``repayment_post_many``.

Import, in three steps (docs/payroll.md):

1. **Validate every row first**, without writing (one query per kind of lookup, not per row), then store the import
   and one report row per data row — ``rejected`` with its error code, ``skipped`` (nothing to post) or
   ``pending`` — in one transaction. The same file (sha256) for the same employer and month is imported once
   (a unique constraint): asking again posts nothing and answers the first import.
2. **Post the pending rows in batches** (``batch_size``, default 500 rows per transaction), set-based: a batch
   claims its rows (``FOR UPDATE SKIP LOCKED``: posters side by side never take the same rows), then locks its loans
   in id order (the order every other loan-locking path of the node keeps),
   checks the month's one-deduction-per-loan rule under those locks, and posts the rest with
   ``repayment_post_many`` — a fixed number of statements per batch, whatever its size. A row refused at posting
   time (the loan was closed meanwhile, another file of the month posted it first, ...) writes nothing and is
   reported ``rejected``; the rest of its batch commits. Every row's outcome is written in one UPDATE, in the same
   transaction as the repayments, and a partial unique index on (loan, month) over posted rows makes a second payroll
   deduction of a loan in one month impossible, whichever file it comes from. Should the database still refuse a
   batch (IntegrityError: not expected, the rules are checked under the locks), the batch is posted again row by row
   through ``repayment_post``, each row in its own savepoint, so that only the offending row is rejected. A crash
   leaves the import ``posting`` with its remaining rows ``pending``; uploading the same file again resumes it. From
   its first statement until it commits a batch holds its loans' rows and, at its very end, the node's audit-chain
   lock; at ~3 ms a row (bench/payroll_import.py) a batch of 500 commits after ~1.5 s.

   Over HTTP the upload runs inside the request's idempotency transaction, so posting a large file there would hold
   every batch's loans — and the audit chain, i.e. every audited write of the node — until the last batch commits.
   The API therefore posts in the request only a file with at most ``background_over`` rows to post; a larger one
   is validated and stored in the request (answered 202, ``posting``) and posted by the Celery task
   ``payroll_import_continue``, batch by batch in their own transactions, a few seconds of batches per run so that
   the worker's other jobs (the outbox shipper) are not held up.
3. **Complete**: the summary is written on the import and ONE audit event (``payroll.import``) records it with
   the counts; each repayment is audited by the repayment service itself (``repayment.post``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from functools import partial

from django.conf import settings
from django.db import IntegrityError, connection, connections, transaction
from django.utils import timezone

from node.audit.services import audit_record
from node.borrowers.models import Borrower, MfiClient
from node.core.bulk import insert_columns
from node.core.errors import ApplicationError, Forbidden, NotFound, ValidationFailed
from node.loans.errors import IllegalTransition
from node.loans.models import Loan, LoanStatus
from node.mfis.models import Mfi
from node.payroll import files
from node.payroll.errors import (
    BorrowerAlreadyEnrolled,
    EmployeeNumberTaken,
    EmployerCodeTaken,
    EnrolmentAlreadyEnded,
)
from node.payroll.models import (
    Employer,
    FileFormat,
    ImportStatus,
    PayrollEnrolment,
    PayrollExport,
    PayrollExportLine,
    PayrollImport,
    PayrollImportRow,
    RowOutcome,
)
from node.payroll.selectors import (
    deduction_rows,
    import_summary,
    month_end,
    month_label,
)
from node.repayments.models import Repayment, RepaymentChannel
from node.repayments.services import (
    RepaymentRequest,
    repayment_post,
    repayment_post_many,
)
from node.users.models import Role, User

log = logging.getLogger("letsema.payroll")
ADMINS = frozenset({Role.MFI_ADMIN})
OFFICERS = frozenset({Role.LOAN_OFFICER, Role.MFI_ADMIN})
ZERO = Decimal("0.00")
MAX_AMOUNT = Decimal(10) ** 15
DEFAULT_BATCH = 500  # rows per transaction: see the module docstring
STATUSES = ("deducted", "partial", "not_deducted")
ONE_PER_MONTH_CONSTRAINT = "payroll_one_deduction_per_loan_month"

#: Per-row error codes of an import report (a contract, like the API's error codes: add, never rename).
ROW_CODES = {
    "missing_field": "employee_number or loan_reference is empty",
    "invalid_status": "status is not one of deducted, partial, not_deducted",
    "invalid_amount": "amount_deducted is not a decimal >= 0 with at most 2 places (or is empty on a deduction)",
    "status_amount_mismatch": "not_deducted with an amount above 0, or deducted/partial with 0",
    "duplicate_loan_row": "the loan appears on more than one row of the file (none of them is posted)",
    "unknown_loan": "no loan with this reference at the MFI (another MFI's loan answers the same)",
    "loan_not_enrolled": "the loan's borrower is not enrolled at this employer",
    "employee_number_mismatch": "the employee number is not the borrower's at this employer",
    "loan_not_active": "the loan is not active (closed, written off, rescheduled, ...), checked again at posting",
    "payment_before_disbursement": "the payment date is before the loan's disbursement",
    "already_deducted_this_month": "a payroll deduction of this loan for this month is already posted",
    "posting_failed": "repayment_post refused the row (its code and message are in the message)",
}

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
_AMOUNT = re.compile(r"^\d+(\.\d+)?$")


# --- helpers -----------------------------------------------------------------------------------------------------

def parse_month(value) -> dt.date:
    """``"2026-07"`` -> 2026-07-01; anything else is a validation_error."""
    m = _MONTH.match(value.strip()) if isinstance(value, str) else None
    if m is None:
        raise ValidationFailed("month must be YYYY-MM (e.g. 2026-07).", details={"fields": {"month": ["YYYY-MM"]}})
    return dt.date(int(m.group(1)), int(m.group(2)), 1)


def _check_staff(actor: User, mfi_id: int, roles: frozenset[str], what: str) -> None:
    if getattr(actor, "role", None) not in roles or actor.mfi_id != mfi_id:
        raise Forbidden(f"Only {what} of the employer's MFI may do this.")


def _constraint(exc: IntegrityError) -> str | None:
    return getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None)


def _enrolment_json(e: PayrollEnrolment) -> dict:
    return {"employer": e.employer_id, "borrower": e.borrower_id, "employee_number": e.employee_number,
            "ended_at": e.ended_at.isoformat() if e.ended_at else None}


# --- employers and enrolments ----------------------------------------------------------------------------------

@transaction.atomic
def employer_create(*, actor: User, code: str, name: str) -> Employer:
    """A payroll employer of the actor's MFI (MFI admins). ``code``: lower-case letters, digits and '-'."""
    if getattr(actor, "role", None) not in ADMINS or actor.mfi_id is None:
        raise Forbidden("Only MFI admins may add employers.")
    code, name = (code or "").strip(), (name or "").strip()
    errors = {}
    if not _SLUG.match(code):
        errors["code"] = ["1-40 characters: lower-case letters, digits and '-'"]
    if not 1 <= len(name) <= 200:
        errors["name"] = ["1-200 characters"]
    if errors:
        raise ValidationFailed("The employer has invalid fields.", details={"fields": errors})
    if Employer.objects.filter(mfi_id=actor.mfi_id, code=code).exists():
        raise EmployerCodeTaken(f"The MFI already has an employer {code!r}.", details={"code": code})
    try:
        with transaction.atomic():
            employer = Employer.objects.create(mfi_id=actor.mfi_id, code=code, name=name, created_by=actor)
    except IntegrityError:
        raise EmployerCodeTaken(f"The MFI already has an employer {code!r}.", details={"code": code}) from None
    audit_record(actor=actor, action="payroll.employer_create", target_type="payroll_employer", target_id=employer.pk,
                 mfi=employer.mfi, after={"code": code, "name": name})
    return employer


@transaction.atomic
def enrolment_create(*, actor: User, employer: Employer, borrower: Borrower, employee_number: str) -> PayrollEnrolment:
    """Enrol a client of the MFI at ``employer`` as employee ``employee_number`` (loan officers, MFI admins).

    One live enrolment per borrower per MFI (``borrower_already_enrolled``) and per employee number per employer
    (``employee_number_taken``); end the old one first to move a borrower."""
    _check_staff(actor, employer.mfi_id, OFFICERS, "loan officers and MFI admins")
    if not MfiClient.objects.filter(borrower_id=borrower.pk, mfi_id=employer.mfi_id).exists():
        raise NotFound("No such borrower.")
    number = (employee_number or "").strip() if isinstance(employee_number, str) else ""
    if not 1 <= len(number) <= 40 or not number.isprintable():
        raise ValidationFailed("The employee number must be 1-40 printable characters.",
                               details={"fields": {"employee_number": ["1-40 printable characters"]}})
    live = PayrollEnrolment.objects.filter(ended_at__isnull=True)
    current = live.filter(mfi_id=employer.mfi_id, borrower_id=borrower.pk).select_related("employer").first()
    if current is not None:
        raise BorrowerAlreadyEnrolled(
            f"The borrower is already enrolled at {current.employer.code} as {current.employee_number}; end that "
            "enrolment first.", details={"enrolment": current.pk, "employer": current.employer.code})
    if live.filter(employer=employer, employee_number=number).exists():
        raise EmployeeNumberTaken(f"Employee number {number} is already enrolled at {employer.code}.",
                                  details={"employee_number": number})
    try:
        with transaction.atomic():
            enrolment = PayrollEnrolment.objects.create(mfi_id=employer.mfi_id, employer=employer, borrower=borrower,
                                                        employee_number=number, created_by=actor)
    except IntegrityError as exc:  # a concurrent enrolment won
        if _constraint(exc) == "payroll_one_live_employee_number":
            raise EmployeeNumberTaken(f"Employee number {number} is already enrolled at {employer.code}.",
                                      details={"employee_number": number}) from None
        raise BorrowerAlreadyEnrolled("The borrower is already enrolled at this MFI.") from None
    audit_record(actor=actor, action="payroll.enrol", target_type="payroll_enrolment", target_id=enrolment.pk,
                 mfi=employer.mfi, after=_enrolment_json(enrolment))
    return enrolment


@transaction.atomic
def enrolment_end(*, actor: User, enrolment: PayrollEnrolment) -> PayrollEnrolment:
    """End an enrolment (the borrower left the employer): later exports leave the borrower out. It stays on
    record, so a late result file still matches it."""
    _check_staff(actor, enrolment.mfi_id, OFFICERS, "loan officers and MFI admins")
    enrolment = PayrollEnrolment.objects.select_for_update().select_related("employer", "mfi").get(pk=enrolment.pk)
    if enrolment.ended_at is not None:
        raise EnrolmentAlreadyEnded("This enrolment has already ended.",
                                    details={"ended_at": enrolment.ended_at.isoformat()})
    before = _enrolment_json(enrolment)
    enrolment.ended_at, enrolment.ended_by = timezone.now(), actor
    enrolment.save(update_fields=["ended_at", "ended_by"])
    audit_record(actor=actor, action="payroll.enrolment_end", target_type="payroll_enrolment", target_id=enrolment.pk,
                 mfi=enrolment.mfi, before=before, after=_enrolment_json(enrolment))
    return enrolment


# --- export ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ExportFile:
    export: PayrollExport
    content: bytes
    file_name: str
    content_type: str


@transaction.atomic
def payroll_export(*, actor: User | None, employer: Employer, month: dt.date, file_format: str) -> ExportFile:
    """The deduction file of ``employer`` for ``month`` (selectors.deduction_rows), recorded (who, when, rows,
    total, sha256 of the bytes, and each row asked for) and audited. ``actor`` None: an operator's command without a user."""
    if actor is not None:
        _check_staff(actor, employer.mfi_id, OFFICERS, "loan officers and MFI admins")
    if file_format not in FileFormat.values:
        raise ValidationFailed("format must be csv or xlsx.", details={"fields": {"format": list(FileFormat.values)}})
    rows = deduction_rows(employer=employer, month=month)
    text = [r.as_text() for r in rows]
    content = files.write_csv(text) if file_format == FileFormat.CSV else files.write_xlsx(text)
    total = sum((r.amount_due for r in rows), ZERO)
    file_name = f"payroll-{employer.mfi.code}-{employer.code}-{month_label(month)}.{file_format}"
    export = PayrollExport.objects.create(
        mfi_id=employer.mfi_id, employer=employer, month=month, due_by=month_end(month), file_format=file_format,
        file_name=file_name, rows=len(rows), total=total, sha256=hashlib.sha256(content).hexdigest(),
        created_by=actor)
    insert_columns(PayrollExportLine, {  # what was asked, per loan: the month's reconciliation reads it back
        "export": [export.pk] * len(rows), "loan": [r.loan_id for r in rows],
        "employee_number": [r.employee_number for r in rows], "loan_reference": [r.loan_reference for r in rows],
        "amount_due": [r.amount_due for r in rows]})
    audit_record(actor=actor, action="payroll.export", target_type="payroll_export", target_id=export.pk,
                 mfi=employer.mfi, after={"employer": employer.code, "month": month_label(month),
                                          "format": file_format, "rows": len(rows), "total": str(total),
                                          "sha256": export.sha256})
    return ExportFile(export=export, content=content, file_name=file_name,
                      content_type=files.CSV_CONTENT_TYPE if file_format == FileFormat.CSV else files.XLSX_CONTENT_TYPE)


# --- import: validation ----------------------------------------------------------------------------------------

@dataclass
class _Row:
    raw: files.ResultRow
    status: str = ""
    amount: Decimal | None = None
    loan_id: int | None = None
    outcome: str = RowOutcome.PENDING
    code: str = ""
    message: str = ""

    def reject(self, code: str, message: str) -> None:
        self.outcome, self.code, self.message = RowOutcome.REJECTED, code, message


def _parse_amount(text: str) -> tuple[Decimal | None, str | None]:
    """(amount, None) or (None, why). Empty text is (None, None)."""
    if text == "":
        return None, None
    if text.startswith("-"):
        return None, "must not be negative"
    if not _AMOUNT.match(text):
        return None, "not a decimal amount such as 150.00 (digits, an optional '.' and decimals; no separators)"
    amount = Decimal(text)
    if -amount.as_tuple().exponent > 2:
        return None, "at most 2 decimal places"
    if amount >= MAX_AMOUNT:
        return None, "too large"
    return amount.quantize(Decimal("0.01")), None


def _check_fields(row: _Row) -> None:
    raw = row.raw
    if not raw.employee_number or not raw.loan_reference:
        row.reject("missing_field", "employee_number and loan_reference are required.")
        return
    row.status = raw.status.strip().lower()
    if row.status not in STATUSES:
        row.reject("invalid_status", f"status {raw.status!r} is not one of {', '.join(STATUSES)}.")
        return
    amount, why = _parse_amount(raw.amount)
    if why is not None:
        row.reject("invalid_amount", f"amount_deducted {raw.amount!r}: {why}.")
        return
    if amount is None:
        if row.status != "not_deducted":
            row.reject("invalid_amount", f"amount_deducted is required when the status is {row.status}.")
            return
        amount = ZERO
    row.amount = amount
    if row.status == "not_deducted" and amount > 0:
        row.reject("status_amount_mismatch", f"status not_deducted with amount_deducted {amount}: give 0 or "
                                             "status deducted/partial.")
    elif row.status != "not_deducted" and amount == 0:
        row.reject("status_amount_mismatch", f"status {row.status} with amount_deducted 0: use not_deducted.")


def _validate(*, employer: Employer, month: dt.date, payment_date: dt.date, raw_rows: list[files.ResultRow]
              ) -> list[_Row]:
    """Judge every row (first failing check wins; see ROW_CODES). Reads only; five queries whatever the size."""
    rows = [_Row(raw=r) for r in raw_rows]
    for row in rows:
        _check_fields(row)

    seen = Counter(r.raw.loan_reference for r in rows if r.raw.loan_reference)
    where: dict[str, list[int]] = {}
    for r in rows:
        if seen[r.raw.loan_reference] > 1:
            where.setdefault(r.raw.loan_reference, []).append(r.raw.row_number)
    for row in rows:
        if row.outcome == RowOutcome.PENDING and row.raw.loan_reference in where:
            others = ", ".join(str(n) for n in where[row.raw.loan_reference])
            row.reject("duplicate_loan_row", f"Loan {row.raw.loan_reference} is on rows {others} of this file; none "
                                             "of them is posted. Send one row per loan.")

    live = [r for r in rows if r.outcome == RowOutcome.PENDING]
    loans = {ref: (pk, borrower_id, status, disbursed) for pk, ref, borrower_id, status, disbursed in
             Loan.objects.filter(mfi_id=employer.mfi_id, reference__in={r.raw.loan_reference for r in live})
             .values_list("pk", "reference", "borrower_id", "status", "disbursement_date")}
    numbers: dict[int, set[str]] = {}
    for borrower_id, number in (PayrollEnrolment.objects.filter(
            employer=employer, borrower_id__in={v[1] for v in loans.values()})
            .values_list("borrower_id", "employee_number")):
        numbers.setdefault(borrower_id, set()).add(number)
    done = {loan_id: (import_id, row_number, receipt) for loan_id, import_id, row_number, receipt in
            PayrollImportRow.objects.filter(month=month, outcome=RowOutcome.POSTED, repayment__reversed_at__isnull=True,
                                            loan_id__in={v[0] for v in loans.values()})
            .values_list("loan_id", "payroll_import_id", "row_number", "receipt_number")}
    label = month_label(month)
    for row in live:
        ref = row.raw.loan_reference
        if ref not in loans:
            row.reject("unknown_loan", f"No loan {ref} at this MFI.")
            continue
        loan_id, borrower_id, status, disbursed = loans[ref]
        row.loan_id = loan_id
        if borrower_id not in numbers:
            row.reject("loan_not_enrolled", f"The borrower of loan {ref} is not enrolled at {employer.code}.")
        elif row.raw.employee_number not in numbers[borrower_id]:
            row.reject("employee_number_mismatch", f"Employee number {row.raw.employee_number} is not the number "
                                                   f"of loan {ref}'s borrower at {employer.code}.")
        elif row.amount == 0:
            row.outcome, row.message = RowOutcome.SKIPPED, "Not deducted: nothing to post."
        elif status != LoanStatus.ACTIVE:
            row.reject("loan_not_active", f"Loan {ref} is {status}: nothing posted.")
        elif disbursed is None or payment_date < disbursed:
            row.reject("payment_before_disbursement", f"Loan {ref} was disbursed on {disbursed}, after the payment "
                                                      f"date {payment_date}.")
        elif loan_id in done:
            import_id, row_number, receipt = done[loan_id]
            row.reject("already_deducted_this_month", f"Loan {ref} already has a payroll deduction for {label} "
                                                      f"(import {import_id}, row {row_number}, receipt {receipt}).")
    return rows


# --- import: the service ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ImportResult:
    payroll_import: PayrollImport
    already_imported: bool = False  # the same file was imported before: nothing posted now
    resumed: bool = False  # the same file's earlier import had not finished: its pending rows were posted now
    queued: bool = False  # the rows to post are posted in the background (payroll_import_continue), not yet


Progress = Callable[[int, int], None]


def _default_payment_date(month: dt.date) -> dt.date:
    return min(month_end(month), timezone.localdate())


def payroll_import(*, actor: User, employer: Employer, month: dt.date, content: bytes, file_name: str = "",
                   payment_date: dt.date | None = None, batch_size: int = DEFAULT_BATCH,
                   progress: Progress | None = None, background_over: int | None = None,
                   workers: int | None = None) -> ImportResult:
    """Import ``employer``'s result file for ``month`` (MFI admins of the employer's MFI). Not one transaction:
    see the module docstring. ``payment_date`` (default: the month's last day, or today while the month runs)
    dates the repayments; it must lie between the month's first day and today. ``progress(done, total)`` is
    called after each posted batch. With ``background_over``, more rows to post than that are left to the Celery
    task ``payroll_import_continue`` (queued when the caller's transaction commits; ``queued`` in the result).
    ``workers`` (default ``LETSEMA_PAYROLL_POST_WORKERS``): batches posted side by side once the rows are stored
    (one inside a caller's transaction)."""
    _check_staff(actor, employer.mfi_id, ADMINS, "MFI admins")
    today = timezone.localdate()
    if month > today:
        raise ValidationFailed("A payroll month that has not started has no deductions to import.",
                               details={"fields": {"month": ["not after the current month"]}})
    payment_date = payment_date or _default_payment_date(month)
    if not month <= payment_date <= today:
        raise ValidationFailed("The payment date must lie between the month's first day and today.",
                               details={"fields": {"payment_date": [f"{month} to {today}"]}})
    if not 1 <= batch_size <= 5000:
        raise ValidationFailed("batch_size must be 1-5000.")
    sha256 = hashlib.sha256(content).hexdigest()

    existing = PayrollImport.objects.filter(employer=employer, month=month, sha256=sha256).first()
    if existing is not None:
        return _answer_existing(existing, actor, batch_size, progress, background_over, workers)

    parsed = files.read_result_file(content)
    rows = _validate(employer=employer, month=month, payment_date=payment_date, raw_rows=parsed.rows)
    try:
        with transaction.atomic():
            imp = PayrollImport.objects.create(
                mfi_id=employer.mfi_id, employer=employer, month=month, payment_date=payment_date,
                file_name=(file_name or "")[:200], file_format=parsed.file_format, sha256=sha256, created_by=actor)
            PayrollImportRow.objects.bulk_create([
                PayrollImportRow(
                    payroll_import=imp, row_number=r.raw.row_number, employee_number=r.raw.employee_number[:100],
                    loan_reference=r.raw.loan_reference[:100], amount_text=r.raw.amount[:60], amount=r.amount,
                    status=r.raw.status[:30], reason=r.raw.reason[:200], loan_id=r.loan_id, month=month,
                    outcome=r.outcome, error_code=r.code, message=r.message[:300])
                for r in rows], batch_size=2000)
    except IntegrityError as exc:
        if _constraint(exc) != "payroll_file_once_per_employer_month":
            raise
        existing = PayrollImport.objects.get(employer=employer, month=month, sha256=sha256)  # a concurrent upload won
        return _answer_existing(existing, actor, batch_size, progress, background_over, workers)
    if background_over is not None and sum(r.outcome == RowOutcome.PENDING for r in rows) > background_over:
        _queue_posting(imp)
        return ImportResult(payroll_import=imp, queued=True)
    _post_pending(imp, actor, batch_size, progress, workers=_workers(workers))
    return ImportResult(payroll_import=_complete(imp, actor))


def _workers(workers: int | None) -> int:
    return settings.LETSEMA_PAYROLL_POST_WORKERS if workers is None else workers


def _answer_existing(imp: PayrollImport, actor: User, batch_size: int, progress: Progress | None,
                     background_over: int | None, workers: int | None) -> ImportResult:
    if imp.status == ImportStatus.COMPLETED:
        return ImportResult(payroll_import=imp, already_imported=True)
    if background_over is not None and (PayrollImportRow.objects.filter(
            payroll_import_id=imp.pk, outcome=RowOutcome.PENDING).count() > background_over):
        _queue_posting(imp)  # another poster may be at it already: the two post different batches
        return ImportResult(payroll_import=imp, resumed=True, queued=True)
    _post_pending(imp, actor, batch_size, progress, workers=_workers(workers))
    return ImportResult(payroll_import=_complete(imp, actor), resumed=True)


def _queue_posting(imp: PayrollImport) -> None:
    transaction.on_commit(partial(_send_posting_task, imp.pk), robust=True)


def _send_posting_task(import_id: int) -> None:
    """After commit. A broker failure leaves the rows ``pending`` (nothing is lost): uploading the same file again,
    or ``manage.py payroll_import`` with it, resumes the import."""
    from node.payroll import tasks

    try:
        tasks.payroll_import_continue.apply_async((import_id,), retry=True,
                                                  retry_policy={"max_retries": 3, "interval_start": 0.2})
    except Exception as exc:  # noqa: BLE001 - logged; the import stays resumable
        log.error("could not queue the posting of a payroll import; upload the same file again to resume it",
                  extra={"payroll_import": import_id, "error": f"{type(exc).__name__}: {str(exc)[:200]}"})


def payroll_import_continue(*, import_id: int, seconds: float | None = None, batch_size: int = DEFAULT_BATCH,
                            workers: int | None = None) -> tuple[PayrollImport, bool]:
    """Post a queued import's pending rows as its uploader (the Celery task's work): batches, each its own
    transaction, until none is left or ``seconds`` have passed after a batch. Completes the import when nothing is
    pending. Answers the import and whether rows are still pending (the task then queues itself again)."""
    imp = PayrollImport.objects.select_related("created_by").get(pk=import_id)
    if imp.status == ImportStatus.COMPLETED:
        return imp, False
    until = None if seconds is None else time.monotonic() + seconds
    if _post_pending(imp, imp.created_by, batch_size, None, until=until, workers=_workers(workers)):
        return imp, True
    return _complete(imp, imp.created_by), False


def _post_pending(imp: PayrollImport, actor: User, batch_size: int, progress: Progress | None, *,
                  until: float | None = None, workers: int = 1) -> bool:
    """Post the pending rows batch by batch; answers True when it stopped at ``until`` (``time.monotonic()``) with
    rows still pending. ``workers`` > 1 posts that many batches side by side, in forked processes (each with its own
    database connection and its own interpreter, so their Python runs on every core), which only works once the
    import's rows are committed — inside a caller's transaction one poster is used."""
    pending = PayrollImportRow.objects.filter(payroll_import_id=imp.pk, outcome=RowOutcome.PENDING)
    total = pending.count()
    mfi = Mfi.objects.get(pk=imp.mfi_id)
    if progress:
        progress(0, total)

    def poster(report: Callable[[int], None]) -> bool:
        mine = 0
        while True:
            if until is not None and mine and time.monotonic() >= until:
                return pending.exists()
            n = _post_next_batch(imp, mfi, actor, batch_size)
            if not n:
                return False
            mine += n
            report(n)

    workers = 1 if connection.in_atomic_block else max(1, workers)
    if workers == 1 or total <= batch_size:
        done = [0]

        def report(n: int) -> None:
            done[0] += n
            if progress:
                progress(done[0], total)
        return poster(report)
    return _post_in_processes(poster, min(workers, -(-total // batch_size)), total, progress)


def _post_in_processes(poster: Callable[[Callable[[int], None]], bool], workers: int, total: int,
                       progress: Progress | None) -> bool:
    """Run ``poster`` in ``workers`` forked processes and relay their progress. Each child opens its own database
    connection (the parent's are closed before the fork, so no socket is shared) and leaves with ``os._exit``.
    A child that fails or dies loses only its uncommitted batch (its rows stay ``pending``, the import resumable);
    the others finish theirs, then :class:`PosterFailed` is raised.

    A Celery pool process is *daemonic*, and ``multiprocessing`` refuses children to daemonic processes because
    they could be orphaned when it exits. Here the parent waits for every child before it returns, and a child
    whose parent has gone (killed by a time limit) stops after its current batch, so the flag is lifted for the
    ``start()`` calls."""
    ctx = multiprocessing.get_context("fork")
    parent = os.getpid()
    reader, writer = ctx.Pipe(duplex=False)
    write_lock = ctx.Lock()

    def send(message: tuple) -> None:
        with write_lock:
            writer.send(message)

    def child(k: int) -> None:
        reader.close()

        def report(n: int) -> None:
            if os.getppid() != parent:
                raise PosterOrphaned("the importing process has gone")
            send(("rows", k, n))
        try:
            more = poster(report)
            send(("done", k, more))
        except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises
            log.exception("payroll poster process failed")
            send(("failed", k, f"{type(exc).__name__}: {str(exc)[:300]}"))
        finally:
            connections.close_all()

    connections.close_all()
    procs = [ctx.Process(target=child, args=(k,), name=f"payroll-poster-{k}", daemon=True) for k in range(workers)]
    me = multiprocessing.current_process()
    daemonic = me._config.get("daemon", False)
    me._config["daemon"] = False
    try:
        for p in procs:
            p.start()
    finally:
        me._config["daemon"] = daemonic
    writer.close()  # the children hold their copies
    try:
        done, more, failures, finished, eof = 0, False, [], set(), False
        while len(finished) < workers:
            while not eof and reader.poll():
                try:
                    kind, k, value = reader.recv()
                except EOFError:  # every child has closed its end
                    eof = True
                    break
                if kind == "rows":
                    done += value
                    if progress:
                        progress(done, total)
                else:
                    finished.add(k)
                    if kind == "done":
                        more = more or value
                    else:
                        failures.append(value)
            for k, p in enumerate(procs):  # a child killed without a word (OOM, SIGKILL); its messages are read above
                if k not in finished and p.exitcode is not None and (eof or not reader.poll()):
                    finished.add(k)
                    failures.append(f"poster process exited with code {p.exitcode}")
            if len(finished) < workers:
                waiting = [p.sentinel for p in procs if p.exitcode is None] + ([] if eof else [reader])
                multiprocessing.connection.wait(waiting, timeout=1.0)
    except BaseException:  # interrupted (Ctrl-C, a task time limit): the children must not outlive the parent
        for p in procs:
            p.terminate()
        raise
    finally:
        for p in procs:
            p.join()
        reader.close()
    if failures:
        raise PosterFailed("; ".join(failures))
    return more


class PosterOrphaned(RuntimeError):
    """Raised in a poster process whose importing process has died: it stops after its committed batch."""


class PosterFailed(RuntimeError):
    """A poster process failed: the rows it had not committed stay pending; importing the same file resumes."""


def _post_next_batch(imp: PayrollImport, mfi: Mfi, actor: User, batch_size: int) -> int:
    """Claim the next ``batch_size`` pending rows (``FOR UPDATE SKIP LOCKED``: posters running side by side never
    take the same rows — a file never has two rows for one loan, so their loans differ too) and post them in one
    transaction. Answers how many rows it took (0: none left to take)."""
    with transaction.atomic():
        batch = list(PayrollImportRow.objects.select_for_update(skip_locked=True)
                     .filter(payroll_import_id=imp.pk, outcome=RowOutcome.PENDING)
                     .order_by("row_number")[:batch_size])
        if not batch:
            return 0
        try:
            with transaction.atomic():  # savepoint: the set-based posting of the whole batch, or none of it
                _post_batch(imp, mfi, batch, actor)
        except IntegrityError as exc:
            # not expected (rows are checked under the loans' locks); if the database still refuses the batch,
            # post it row by row, each in its own savepoint, so that only the offending row is rejected
            log.warning("payroll batch fell back to row-by-row posting",
                        extra={"payroll_import": imp.pk, "constraint": _constraint(exc)})
            loans = {loan.pk: loan for loan in Loan.objects.select_for_update(of=("self",))
                     .filter(pk__in={r.loan_id for r in batch}).order_by("pk")}
            _release_reversed(imp.month, list(loans))
            for row in batch:
                _post_row(imp, row, loans[row.loan_id], actor)
    return len(batch)


def keep_rows_on_replayed_repayments(sender, *, old: Repayment, new: Repayment, **kwargs) -> None:
    """Reprocessing reversed ``old`` (a later repayment of a loan whose older repayment was reversed) and posted it
    again as ``new``: a payroll row that posted ``old`` now names ``new``, so the deduction still counts for its
    month (the import report, the one-deduction-per-month rule, the reconciliation)."""
    PayrollImportRow.objects.filter(repayment=old).update(repayment=new, receipt_number=new.receipt_number)


def _release_reversed(month: dt.date, loan_ids: list[int]) -> int:
    """Under the loans' locks: a posted row of ``month`` whose repayment has been reversed since (``POST
    /repayments/{id}/reverse``) becomes ``reversed``, which frees its (loan, month) for a corrected deduction.
    Done here rather than by the reversal, which knows nothing of payroll; a reversal takes the same loan lock, so
    none can slip in between this and the posting."""
    return (PayrollImportRow.objects
            .filter(month=month, outcome=RowOutcome.POSTED, loan_id__in=loan_ids, repayment__reversed_at__isnull=False)
            .update(outcome=RowOutcome.REVERSED))


def _post_batch(imp: PayrollImport, mfi: Mfi, batch: list[PayrollImportRow], actor: User) -> None:
    """Post ``batch`` through :func:`repayment_post_many` and record every row's outcome in one UPDATE.

    The batch's loans are locked first (id order), and only then is the month's one-deduction-per-loan rule checked:
    another import posting one of these loans holds its lock until it commits, so what it posted is visible here.
    A row refused now (loan no longer active, deducted meanwhile, any other refusal of ``repayment_post_many``)
    is reported ``rejected`` with its code and writes nothing; the others are posted."""
    loan_ids = sorted({r.loan_id for r in batch})
    list(Loan.objects.select_for_update(of=("self",)).filter(pk__in=loan_ids).order_by("pk").values_list("pk"))
    _release_reversed(imp.month, loan_ids)
    taken = set(PayrollImportRow.objects.filter(month=imp.month, outcome=RowOutcome.POSTED, loan_id__in=loan_ids)
                .values_list("loan_id", flat=True))
    label = month_label(imp.month)
    for row in batch:
        if row.loan_id in taken:
            row.outcome, row.repayment, row.receipt_number = RowOutcome.REJECTED, None, ""
            row.error_code = "already_deducted_this_month"
            row.message = (f"Loan {row.loan_reference} already has a payroll deduction for {label} (posted meanwhile "
                           "by another import); nothing posted.")[:300]
    to_post = [r for r in batch if r.loan_id not in taken]
    results = repayment_post_many(
        actor=actor, mfi=mfi, payment_date=imp.payment_date, channel=RepaymentChannel.PAYROLL,
        notify=mfi.notify_payroll_repayments, requests=[RepaymentRequest(loan_id=r.loan_id, amount=r.amount, reference=f"payroll:{imp.pk}:{r.row_number}")
                  for r in to_post]) if to_post else []
    for row, result in zip(to_post, results, strict=True):
        if isinstance(result, Repayment):
            row.outcome, row.repayment, row.receipt_number = RowOutcome.POSTED, result, result.receipt_number
            continue
        if isinstance(result, IllegalTransition):
            code = "loan_not_active"
            message = (f"Loan {row.loan_reference} is {result.details.get('current_state', 'not active')}: "
                       "nothing posted.")
        else:
            code, message = "posting_failed", f"{result.code}: {result.message}"
        row.outcome, row.repayment, row.receipt_number = RowOutcome.REJECTED, None, ""
        row.error_code, row.message = code, message[:300]
    table = PayrollImportRow._meta.db_table
    with connection.cursor() as cursor:  # the (loan, month) index checks the posted rows here
        cursor.execute(
            f"UPDATE {table} AS r SET outcome = v.outcome, repayment_id = v.repayment_id, "
            f"receipt_number = v.receipt_number, error_code = v.error_code, message = v.message "
            f"FROM unnest(%s::bigint[], %s::text[], %s::bigint[], %s::text[], %s::text[], %s::text[]) "
            f"AS v(id, outcome, repayment_id, receipt_number, error_code, message) WHERE r.id = v.id",  # nosec B608 -- model table name, values bound
            [[r.pk for r in batch], [r.outcome for r in batch], [r.repayment_id for r in batch],
             [r.receipt_number for r in batch], [r.error_code for r in batch], [r.message for r in batch]])


def _post_row(imp: PayrollImport, row: PayrollImportRow, loan: Loan, actor: User) -> None:
    """Post one row inside its own savepoint; a refusal rolls back this row alone and is reported on it."""
    try:
        with transaction.atomic():
            rep = repayment_post(actor=actor, loan=loan, amount=row.amount, payment_date=imp.payment_date,
                                 channel=RepaymentChannel.PAYROLL, reference=f"payroll:{imp.pk}:{row.row_number}")
            row.outcome, row.repayment, row.receipt_number = RowOutcome.POSTED, rep, rep.receipt_number
            row.save(update_fields=["outcome", "repayment", "receipt_number"])  # the (loan, month) index checks here
        return
    except IntegrityError as exc:
        if _constraint(exc) != ONE_PER_MONTH_CONSTRAINT:
            raise
        code = "already_deducted_this_month"
        message = (f"Loan {row.loan_reference} already has a payroll deduction for {month_label(imp.month)} "
                   "(posted meanwhile by another import); nothing posted.")
    except IllegalTransition as exc:
        code = "loan_not_active"
        message = f"Loan {row.loan_reference} is {exc.details.get('current_state', 'not active')}: nothing posted."
    except ApplicationError as exc:
        code, message = "posting_failed", f"{exc.code}: {exc.message}"
    row.outcome, row.repayment, row.receipt_number = RowOutcome.REJECTED, None, ""
    row.error_code, row.message = code, message[:300]
    row.save(update_fields=["outcome", "repayment", "receipt_number", "error_code", "message"])


@transaction.atomic
def _complete(imp: PayrollImport, actor: User) -> PayrollImport:
    imp = PayrollImport.objects.select_for_update().select_related("mfi", "employer").get(pk=imp.pk)
    if imp.status == ImportStatus.COMPLETED:
        return imp
    s = import_summary(imp)
    if s.pending:  # another process is still posting this import; it completes it
        return imp
    imp.rows, imp.posted, imp.skipped, imp.rejected = s.rows, s.posted, s.skipped, s.rejected
    imp.total_posted, imp.rejected_by_code = s.total_posted, s.rejected_by_code
    imp.status, imp.completed_at = ImportStatus.COMPLETED, timezone.now()
    imp.save(update_fields=["rows", "posted", "skipped", "rejected", "total_posted", "rejected_by_code", "status",
                            "completed_at"])
    audit_record(actor=actor, action="payroll.import", target_type="payroll_import", target_id=imp.pk, mfi=imp.mfi,
                 after={"employer": imp.employer.code, "month": month_label(imp.month), "file_name": imp.file_name,
                        "format": imp.file_format, "sha256": imp.sha256, "payment_date": imp.payment_date.isoformat(),
                        "rows": s.rows, "posted": s.posted, "skipped": s.skipped, "rejected": s.rejected,
                        "total_posted": str(s.total_posted), "rejected_by_code": s.rejected_by_code})
    return imp
