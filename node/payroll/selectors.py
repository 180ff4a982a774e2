"""Reads: employers, enrolments, what is due for a payroll month, imports and their per-row report.

Access follows the rest of the node: staff see their own MFI's employers; another MFI's employer (or enrolment, or
import) answers exactly like a missing one, and the attempt is audited (``access.denied``).
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, DecimalField, F, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce, Greatest

from node.audit.services import audit_access_denied
from node.core.errors import Forbidden, NotFound
from node.loans.models import Loan, LoanStatus
from node.payroll.errors import PayrollNotExported
from node.payroll.models import (
    Employer,
    PayrollEnrolment,
    PayrollExport,
    PayrollExportLine,
    PayrollImport,
    PayrollImportRow,
    RowOutcome,
)
from node.users.models import MFI_STAFF_ROLES, User

ZERO = Decimal("0.00")
COMPONENTS = ("principal", "interest", "fees", "penalties")


def month_end(month: dt.date) -> dt.date:
    return month.replace(day=calendar.monthrange(month.year, month.month)[1])


def month_label(month: dt.date) -> str:
    return f"{month:%Y-%m}"


# --- employers and enrolments ----------------------------------------------------------------------------------

def employer_list_for(*, actor: User) -> QuerySet[Employer]:
    if getattr(actor, "role", None) in MFI_STAFF_ROLES and actor.mfi_id is not None:
        return Employer.objects.select_related("mfi").filter(mfi_id=actor.mfi_id)
    return Employer.objects.none()


def access_employer_by_id(actor: User, employer_id, *, roles: frozenset[str] | None = None) -> Employer:
    """The employer if ``actor`` is staff of its MFI; NotFound otherwise, exactly as for a missing id (audited)."""
    try:
        pk = int(employer_id)
    except (TypeError, ValueError):
        raise NotFound("No such employer.") from None
    employer = employer_list_for(actor=actor).filter(pk=pk).first()
    if employer is None:
        if Employer.objects.filter(pk=pk).exists():
            audit_access_denied(actor=actor, target_type="payroll_employer", target_id=pk)
        raise NotFound("No such employer.")
    if roles is not None and actor.role not in roles:
        raise Forbidden("Your role may not do this.")
    return employer


def employer_by_code(*, mfi_code: str, employer_code: str) -> Employer:
    employer = Employer.objects.select_related("mfi").filter(mfi__code=mfi_code, code=employer_code).first()
    if employer is None:
        raise NotFound(f"No employer {employer_code!r} at MFI {mfi_code!r}.")
    return employer


def enrolment_list(*, employer: Employer, include_ended: bool = False) -> QuerySet[PayrollEnrolment]:
    qs = PayrollEnrolment.objects.select_related("borrower", "employer").filter(employer=employer)
    return qs if include_ended else qs.filter(ended_at__isnull=True)


def access_enrolment_by_id(actor: User, enrolment_id, *, roles: frozenset[str] | None = None) -> PayrollEnrolment:
    try:
        pk = int(enrolment_id)
    except (TypeError, ValueError):
        raise NotFound("No such enrolment.") from None
    enrolment = (PayrollEnrolment.objects.select_related("borrower", "employer", "mfi")
                 .filter(pk=pk, mfi_id=getattr(actor, "mfi_id", None) or -1).first())
    if enrolment is None or actor.role not in MFI_STAFF_ROLES:
        if PayrollEnrolment.objects.filter(pk=pk).exists():
            audit_access_denied(actor=actor, target_type="payroll_enrolment", target_id=pk)
        raise NotFound("No such enrolment.")
    if roles is not None and actor.role not in roles:
        raise Forbidden("Your role may not do this.")
    return enrolment


# --- what is due -----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DeductionRow:
    loan_id: int
    employee_number: str
    borrower_name: str
    loan_reference: str
    amount_due: Decimal
    currency: str
    month: str

    def as_text(self) -> tuple[str, ...]:
        return (self.employee_number, self.borrower_name, self.loan_reference, f"{self.amount_due:.2f}",
                self.currency, self.month)


def deduction_rows(*, employer: Employer, month: dt.date) -> list[DeductionRow]:
    """One row per ACTIVE loan, at the employer's MFI, of a borrower with a live enrolment at the employer: the
    unpaid amounts (principal, interest, fees, penalties) of its installments due on or before the month's last day
    — so arrears of earlier months are included and what is already paid is not. Loans with nothing due by then
    are left out. Sorted by employee number, then loan reference. Two queries."""
    due_by = month_end(month)
    numbers = dict(enrolment_list(employer=employer).values_list("borrower_id", "employee_number"))
    unpaid = sum((Greatest(F(f"installments__{c}") - F(f"installments__{c}_paid"), Value(ZERO)) for c in COMPONENTS[1:]),
                 Greatest(F("installments__principal") - F("installments__principal_paid"), Value(ZERO)))
    loans = (
        Loan.objects.filter(mfi_id=employer.mfi_id, status=LoanStatus.ACTIVE,
                            borrower_id__in=Subquery(enrolment_list(employer=employer).values("borrower_id")))
        .annotate(amount_due=Coalesce(Sum(unpaid, filter=Q(installments__due_date__lte=due_by)), Value(ZERO),
                                      output_field=DecimalField(max_digits=20, decimal_places=2)))
        .filter(amount_due__gt=0)
        .values_list("pk", "reference", "borrower_id", "borrower__first_name", "borrower__last_name",
                     "product__currency", "amount_due")
    )
    label = month_label(month)
    rows = [DeductionRow(loan_id=pk, employee_number=numbers[borrower_id], borrower_name=f"{first} {last}".strip(),
                         loan_reference=ref, amount_due=due, currency=currency, month=label)
            for pk, ref, borrower_id, first, last, currency, due in loans]
    rows.sort(key=lambda r: (r.employee_number, r.loan_reference))
    return rows


# --- imports ---------------------------------------------------------------------------------------------------

def import_list(*, employer: Employer) -> QuerySet[PayrollImport]:
    return PayrollImport.objects.select_related("employer", "created_by").filter(employer=employer)


def access_import(actor: User, employer: Employer, import_id) -> PayrollImport:
    """An import of ``employer`` (already access-checked); NotFound otherwise."""
    try:
        pk = int(import_id)
    except (TypeError, ValueError):
        raise NotFound("No such import.") from None
    imp = import_list(employer=employer).filter(pk=pk).first()
    if imp is None:
        if PayrollImport.objects.filter(pk=pk).exists():
            audit_access_denied(actor=actor, target_type="payroll_import", target_id=pk)
        raise NotFound("No such import.")
    return imp


def import_rows(imp: PayrollImport) -> QuerySet[PayrollImportRow]:
    return PayrollImportRow.objects.filter(payroll_import_id=imp.pk).order_by("row_number")


@dataclass(frozen=True)
class ImportSummary:
    rows: int
    posted: int
    reversed: int  # posted, then the repayment was reversed
    skipped: int
    rejected: int
    pending: int
    total_posted: Decimal  # of the rows still posted (a reversed repayment's row is counted in ``reversed``)
    rejected_by_code: dict[str, int]


def import_summary(imp: PayrollImport) -> ImportSummary:
    """Counted from the rows (two queries), so it is right while an import is still posting too."""
    qs = PayrollImportRow.objects.filter(payroll_import_id=imp.pk)
    agg = qs.aggregate(rows=Count("id"), total=Sum("amount", filter=Q(outcome=RowOutcome.POSTED)),
                       **{o: Count("id", filter=Q(outcome=o)) for o in RowOutcome.values})
    by_code = dict(qs.filter(outcome=RowOutcome.REJECTED).values("error_code").annotate(n=Count("id"))
                   .order_by("error_code").values_list("error_code", "n"))
    return ImportSummary(rows=agg["rows"], posted=agg["posted"], reversed=agg["reversed"], skipped=agg["skipped"],
                         rejected=agg["rejected"], pending=agg["pending"], total_posted=agg["total"] or ZERO,
                         rejected_by_code=by_code)


def command_actor(*, employer: Employer, username: str | None, roles: frozenset[str]) -> User:
    """The user a management command acts as: ``username`` (staff of the employer's MFI with one of ``roles``), or
    when none is given the MFI's only active user with one of ``roles`` (several: the caller must choose)."""
    staff = User.objects.filter(mfi_id=employer.mfi_id, role__in=roles, is_active=True)
    if username:
        user = staff.filter(username=username).first()
        if user is None:
            raise NotFound(f"No active {' or '.join(sorted(roles))} {username!r} at MFI {employer.mfi.code}.")
        return user
    candidates = list(staff.order_by("id")[:2])
    if len(candidates) != 1:
        raise NotFound(f"MFI {employer.mfi.code} has {'several' if candidates else 'no'} active "
                       f"{' or '.join(sorted(roles))} users: name one with --user.")
    return candidates[0]


# --- reconciliation --------------------------------------------------------------------------------------------

RECONCILIATION_FLAGS = ("matched", "short", "over", "not_deducted", "reversed", "missing", "rejected",
                        "not_requested")


@dataclass(frozen=True)
class ReconciliationLine:
    loan_id: int | None
    loan_reference: str
    employee_number: str
    requested: Decimal  # what the deduction file asked for (0 if the loan was not in it)
    deducted: Decimal  # posted payroll repayments of the month, those still in effect
    flag: str  # one of RECONCILIATION_FLAGS
    employer_status: str  # the employer's last word on the loan this month (deducted / partial / not_deducted)
    reason: str
    error_code: str  # a rejected row's code

    @property
    def difference(self) -> Decimal:
        return self.requested - self.deducted


@dataclass(frozen=True)
class Reconciliation:
    employer: Employer
    month: dt.date
    export: PayrollExport  # the deduction file compared against (the month's latest)
    lines: list[ReconciliationLine]

    @property
    def counts(self) -> dict[str, int]:
        return {f: sum(1 for x in self.lines if x.flag == f) for f in RECONCILIATION_FLAGS}

    @property
    def total_requested(self) -> Decimal:
        return sum((x.requested for x in self.lines), ZERO)

    @property
    def total_deducted(self) -> Decimal:
        return sum((x.deducted for x in self.lines), ZERO)


def payroll_reconciliation(*, employer: Employer, month: dt.date) -> Reconciliation:
    """What the month's latest deduction file asked of the employer, loan by loan, against what its result files
    deducted (posted rows still in effect, over all the month's imports):

    ``matched`` deducted = requested · ``short`` 0 < deducted < requested · ``over`` deducted > requested ·
    ``not_deducted`` the employer answered not_deducted (nothing posted) · ``reversed`` what was posted has been
    reversed since · ``rejected`` only rejected rows (their code) · ``missing`` no row for the loan in any result
    file · ``not_requested`` deducted for a loan the file did not ask for. Three queries."""
    export = PayrollExport.objects.filter(employer=employer, month=month).order_by("-id").first()
    if export is None:
        raise PayrollNotExported(f"No deduction file was exported to {employer.name} for {month_label(month)}; "
                                 "there is nothing to reconcile against.",
                                 details={"employer": employer.code, "month": month_label(month)})
    asked = {x.loan_id: x for x in PayrollExportLine.objects.filter(export=export)}
    rows = (PayrollImportRow.objects.filter(payroll_import__employer=employer, month=month)
            .order_by("payroll_import_id", "row_number")
            .values_list("loan_id", "loan_reference", "employee_number", "amount", "status", "reason", "outcome",
                         "error_code", "repayment__reversed_at"))
    by_ref = {x.loan_reference: loan_id for loan_id, x in asked.items()}
    seen: dict[object, dict] = {}
    for loan_id, ref, number, amount, status, reason, outcome, code, reversed_at in rows:
        # a row rejected before its loan was resolved (e.g. a bad amount) still names the loan asked for
        key = loan_id if loan_id is not None else by_ref.get(ref.strip(), ("ref", ref))
        got = seen.setdefault(key, {"loan_id": loan_id, "ref": ref, "number": number, "deducted": ZERO,
                                    "status": "", "reason": "", "codes": [], "answered": False, "reversed": False})
        if outcome == RowOutcome.REVERSED or (outcome == RowOutcome.POSTED and reversed_at is not None):
            got["reversed"] = True  # posted, then its repayment was reversed: it no longer counts
            continue
        if outcome == RowOutcome.POSTED:
            got["deducted"] += amount
        if outcome in (RowOutcome.POSTED, RowOutcome.SKIPPED):
            got["answered"] = True
            got["status"], got["reason"] = status, reason
        elif outcome == RowOutcome.REJECTED:
            got["codes"].append(code)
            if not got["answered"]:
                got["status"], got["reason"] = status, reason
    lines = []
    for loan_id, line in asked.items():
        got = seen.pop(loan_id, None)
        deducted = got["deducted"] if got else ZERO
        if got is None:
            flag = "missing"
        elif deducted > 0:
            flag = "matched" if deducted == line.amount_due else ("short" if deducted < line.amount_due else "over")
        elif got["answered"]:
            flag = "not_deducted"
        elif got["reversed"]:
            flag = "reversed"
        else:
            flag = "rejected"
        lines.append(ReconciliationLine(
            loan_id=loan_id, loan_reference=line.loan_reference, employee_number=line.employee_number,
            requested=line.amount_due, deducted=deducted, flag=flag, employer_status=got["status"] if got else "",
            reason=got["reason"] if got else "", error_code=got["codes"][-1] if got and got["codes"] and flag == "rejected"
            else ""))
    for got in seen.values():  # rows for loans the file did not ask for: only what was posted matters here
        if got["deducted"] > 0:
            lines.append(ReconciliationLine(
                loan_id=got["loan_id"], loan_reference=got["ref"], employee_number=got["number"], requested=ZERO,
                deducted=got["deducted"], flag="not_requested", employer_status=got["status"], reason=got["reason"],
                error_code=""))
    lines.sort(key=lambda x: (RECONCILIATION_FLAGS.index(x.flag) == 0, x.employee_number, x.loan_reference))
    return Reconciliation(employer=employer, month=month, export=export, lines=lines)
