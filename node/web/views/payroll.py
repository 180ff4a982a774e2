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

from node.core.errors import ApplicationError
from node.payroll import files, selectors, services
from node.payroll.models import ImportStatus
from node.users.models import Role
from node.web.forms import PayrollDownloadForm, PayrollImportForm
from node.web.views.common import add_errors, is_htmx, message_for, web_view

OFFICERS = (Role.LOAN_OFFICER, Role.MFI_ADMIN)


@web_view(*OFFICERS)
def employers(request):
    return render(request, "web/payroll/employers.html",
                  {"employers": selectors.employer_list_for(actor=request.user).order_by("name")})


def _page(request, employer, *, download=None, upload=None, status=200):
    month = timezone.localdate().strftime("%Y-%m")
    return render(request, "web/payroll/employer.html", {
        "employer": employer, "imports": selectors.import_list(employer=employer)[:24],
        "enrolled": selectors.enrolment_list(employer=employer).count(),
        "download_form": download or PayrollDownloadForm(initial={"month": month, "format": "csv"}),
        "upload_form": (upload or PayrollImportForm(initial={"month": month}))
        if request.user.role == Role.MFI_ADMIN else None,
    }, status=status)


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
