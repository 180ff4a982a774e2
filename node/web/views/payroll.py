"""Payroll pages for loan officers and MFI admins: the MFI's employers; an employer's page (download the month's
deduction file; MFI admins upload the employer's result file; the imports so far); an import's report row by row,
with a progress bar that refreshes itself while a large file is posted in the background. The same selectors and
services as ``/api/v1/payroll/`` (another MFI's employer is "not found")."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from node.borrowers import selectors as borrower_selectors
from node.core.errors import ApplicationError, NotFound
from node.payroll import files, selectors, services
from node.payroll.models import ImportStatus
from node.users.models import Role
from node.web.forms import (
    EmployerForm,
    EnrolmentForm,
    PayrollDownloadForm,
    PayrollImportForm,
    PayrollReconciliationForm,
)
from node.web.views.common import add_errors, is_htmx, message_for, web_view

OFFICERS = (Role.LOAN_OFFICER, Role.MFI_ADMIN)
SHOWN = 200  # enrolments listed on the employer's page (a government payroll has thousands: the API lists all)


@web_view(*OFFICERS)
def employers(request):
    """The MFI's employers; MFI admins add one here."""
    form = None
    if request.user.role == Role.MFI_ADMIN:
        form = EmployerForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                emp = services.employer_create(actor=request.user, code=form.cleaned_data["code"],
                                               name=form.cleaned_data["name"])
            except ApplicationError as exc:
                add_errors(form, exc.details.get("fields") or message_for(exc))
            else:
                messages.success(request, _("Employer added."))
                return redirect("web:payroll-employer", employer_id=emp.pk)
    elif request.method == "POST":
        return render(request, "web/error.html", {"message": _("Your role may not open this page."),
                                                  "code": "permission_denied"}, status=403)
    return render(request, "web/payroll/employers.html", {
        "employers": selectors.employer_list_for(actor=request.user).order_by("name"), "form": form},
        status=400 if form is not None and form.errors else 200)


def _page(request, employer, *, download=None, upload=None, enrol=None, status=200):
    month = timezone.localdate().strftime("%Y-%m")
    enrolments = selectors.enrolment_list(employer=employer)
    return render(request, "web/payroll/employer.html", {
        "employer": employer, "imports": selectors.import_list(employer=employer)[:24],
        "enrolments": enrolments.select_related("borrower").order_by("employee_number")[:SHOWN],
        "enrolled": enrolments.count(), "shown": SHOWN,
        "download_form": download or PayrollDownloadForm(initial={"month": month, "format": "csv"}),
        "upload_form": (upload or PayrollImportForm(initial={"month": month}))
        if request.user.role == Role.MFI_ADMIN else None,
        "enrol_form": enrol or EnrolmentForm(),
        "reconcile_form": PayrollReconciliationForm(initial={"month": month, "format": "page"}),
    }, status=status)


def _client_by_identity(actor, typed: str):
    """The MFI's client whose national ID or phone number this is, or None."""
    match = borrower_selectors.identity_match(typed)
    return borrower_selectors.borrower_list_for(actor=actor).filter(match).first() if match else None


@web_view(*OFFICERS)
def enrol(request, employer_id):
    """Enrol a client of the MFI at the employer (the API's ``enrolment_create``)."""
    emp = selectors.access_employer_by_id(request.user, employer_id)
    if request.method != "POST":
        return redirect("web:payroll-employer", employer_id=emp.pk)
    form = EnrolmentForm(request.POST)
    status = 400
    if form.is_valid():
        borrower = _client_by_identity(request.user, form.cleaned_data["who"])
        if borrower is None:
            form.add_error("who", _("No client of your MFI has this national ID or phone number."))
        else:
            try:
                services.enrolment_create(actor=request.user, employer=emp, borrower=borrower,
                                          employee_number=form.cleaned_data["employee_number"])
            except ApplicationError as exc:  # already enrolled, the number taken (409), a bad number (400)
                add_errors(form, exc.details.get("fields") if "fields" in exc.details else message_for(exc))
                status = exc.status
            else:
                messages.success(request, _("%(name)s enrolled as %(number)s.") % {
                    "name": f"{borrower.first_name} {borrower.last_name}",
                    "number": form.cleaned_data["employee_number"].strip()})
                return redirect("web:payroll-employer", employer_id=emp.pk)
    return _page(request, emp, enrol=form, status=status)


@web_view(*OFFICERS)
def enrolment_end(request, employer_id, enrolment_id):
    """End an enrolment (the employee left): later deduction files leave them out."""
    emp = selectors.access_employer_by_id(request.user, employer_id)
    if request.method == "POST":
        enrolment = selectors.access_enrolment_by_id(request.user, enrolment_id)
        if enrolment.employer_id != emp.pk:
            raise NotFound("No such enrolment.")
        services.enrolment_end(actor=request.user, enrolment=enrolment)
        messages.success(request, _("Enrolment of %(number)s ended.") % {"number": enrolment.employee_number})
    return redirect("web:payroll-employer", employer_id=emp.pk)


@web_view(*OFFICERS)
def employer(request, employer_id):
    return _page(request, selectors.access_employer_by_id(request.user, employer_id))


@web_view(*OFFICERS)
def deductions(request, employer_id):
    """The deduction file as a download (recorded and audited by the service, as over the API)."""
    emp = selectors.access_employer_by_id(request.user, employer_id)
    form = PayrollDownloadForm(request.GET)
    if not form.is_valid():
        return _page(request, emp, download=form, status=400)
    out = services.payroll_export(actor=request.user, employer=emp,
                                  month=services.parse_month(form.cleaned_data["month"]),
                                  file_format=form.cleaned_data["format"])
    response = HttpResponse(out.content, content_type=out.content_type)
    response["Content-Disposition"] = f'attachment; filename="{out.file_name}"'
    response["Cache-Control"] = "no-store"
    return response


@web_view(Role.MFI_ADMIN)
def import_upload(request, employer_id):
    """Upload the employer's result file: every row checked first; the valid ones posted (in the background when
    there are many); the same file twice posts nothing twice (the first import is shown)."""
    emp = selectors.access_employer_by_id(request.user, employer_id, roles=frozenset({Role.MFI_ADMIN}))
    if request.method != "POST":
        return redirect("web:payroll-employer", employer_id=emp.pk)
    form = PayrollImportForm(request.POST, request.FILES)
    if not form.is_valid():
        return _page(request, emp, upload=form, status=400)
    upload = form.cleaned_data["file"]
    if upload.size > files.MAX_BYTES:
        form.add_error("file", _("The file is larger than %(mb)s MB.") % {"mb": files.MAX_BYTES // 1024 // 1024})
        return _page(request, emp, upload=form, status=400)
    try:
        result = services.payroll_import(
            actor=request.user, employer=emp, month=services.parse_month(form.cleaned_data["month"]),
            content=upload.read(), file_name=upload.name or "", payment_date=form.cleaned_data["payment_date"],
            background_over=settings.LETSEMA_PAYROLL_SYNC_ROWS)
    except ApplicationError as exc:  # the whole file refused (encoding, columns, a month not started...)
        add_errors(form, exc.details.get("fields") or message_for(exc))
        return _page(request, emp, upload=form, status=exc.status)
    imp = result.payroll_import
    if result.already_imported:
        messages.info(request, _("This file was already imported for this month; nothing was posted again."))
    elif result.queued:
        messages.success(request, _("The file is valid row by row; its repayments are being posted."))
    else:
        messages.success(request, _("File imported."))
    return redirect("web:payroll-import", employer_id=emp.pk, import_id=imp.pk)


@web_view(*OFFICERS)
def import_report(request, employer_id, import_id):
    emp = selectors.access_employer_by_id(request.user, employer_id)
    imp = selectors.access_import(request.user, emp, import_id)
    summary = selectors.import_summary(imp)
    ctx = {"employer": emp, "imp": imp, "summary": summary, "posting": imp.status == ImportStatus.POSTING,
           "done": summary.rows - summary.pending}
    if is_htmx(request):  # the progress panel, polled while the rows are posted
        return render(request, "web/payroll/import_progress.html", ctx)
    return render(request, "web/payroll/import.html", {**ctx, "rows": selectors.import_rows(imp)})


#: How each reconciliation flag reads on the page (the API and the sheets keep the codes).
FLAG_LABELS = {
    "matched": gettext_lazy("Deducted as asked"), "short": gettext_lazy("Short"), "over": gettext_lazy("More than asked"),
    "not_deducted": gettext_lazy("Not deducted"), "reversed": gettext_lazy("Deducted, then reversed"),
    "missing": gettext_lazy("No answer from the employer"), "rejected": gettext_lazy("Refused at import"),
    "not_requested": gettext_lazy("Not asked for"),
}


@web_view(*OFFICERS)
def reconciliation(request, employer_id):
    """The month's latest deduction file against what the employer's result files deducted, loan by loan (the
    API's ``payroll_reconciliation``): differences first; the same lines as a CSV or XLSX download."""
    emp = selectors.access_employer_by_id(request.user, employer_id)
    form = PayrollReconciliationForm(request.GET)
    if not form.is_valid():
        return _reconcile_page(request, emp, form, None, 400)
    try:
        r = selectors.payroll_reconciliation(employer=emp, month=services.parse_month(form.cleaned_data["month"]))
    except ApplicationError as exc:  # nothing exported that month, a month that does not parse
        add_errors(form, exc.details.get("fields") or message_for(exc))
        return _reconcile_page(request, emp, form, None, exc.status)
    kind = form.cleaned_data.get("format") or "page"
    if kind != "page":
        out = files.reconciliation_download(r, kind)
        response = HttpResponse(out.content, content_type=out.content_type)
        response["Content-Disposition"] = f'attachment; filename="{out.file_name}"'
        response["Cache-Control"] = "no-store"
        return response
    return _reconcile_page(request, emp, form, r, 200)


def _reconcile_page(request, emp, form, r, status):
    lines = [{"line": x, "label": FLAG_LABELS[x.flag]} for x in r.lines] if r else []
    counts = [(FLAG_LABELS[f], n) for f, n in r.counts.items() if n] if r else []
    return render(request, "web/payroll/reconciliation.html", {
        "employer": emp, "form": form, "r": r, "lines": lines, "counts": counts,
        "month": form.data.get("month", ""), "difference": (r.total_requested - r.total_deducted) if r else None,
    }, status=status)
