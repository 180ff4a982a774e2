"""Report pages for analysts, MFI admins and Letsema admins: the catalogue, and one report with its parameter form
(a GET form: usable without JavaScript), tables, SVG charts and CSV/XLSX/PDF downloads (``?export=``). The same
selectors as ``/api/v1/reports/``."""

from __future__ import annotations

from django.shortcuts import render

from node.core.errors import ApplicationError, ValidationFailed
from node.mfis.selectors import mfi_list_for
from node.reports import selectors
from node.reports.catalog import DIMENSIONS, EXPORTS, LOAN_LISTS, NETWORK_DIMENSIONS, PERIODS, REPORTS
from node.reports.exports import export_response, page_context
from node.users.models import Role
from node.web.views.common import message_for, web_view


@web_view(*selectors.REPORT_ROLES)
def index(request):
    return render(request, "web/reports/index.html", {"reports": selectors.reports_for(request.user)})


@web_view(*selectors.REPORT_ROLES)
def report(request, name):
    spec = REPORTS.get(name)
    data = request.GET.dict()
    fmt = data.pop("export", "")
    ctx = {"report": spec, "params": data, "periods": PERIODS, "loan_lists": LOAN_LISTS, "exports": EXPORTS,
           "is_letsema": request.user.role == Role.LETSEMA_ADMIN,
           "mfis": mfi_list_for(actor=request.user) if request.user.role == Role.LETSEMA_ADMIN else []}
    try:
        q = selectors.report_query(actor=request.user, name=name, data=data)
        if fmt and fmt not in EXPORTS:
            raise ValidationFailed(f"'export' must be one of {', '.join(EXPORTS)}.", code="invalid_report_parameter")
        result = selectors.report_run(actor=request.user, q=q)
    except ApplicationError as exc:  # the form again, with the reason (a bad date, a month not closed yet...)
        if spec is None:
            raise
        return render(request, "web/reports/report.html", {**ctx, "error": message_for(exc)}, status=exc.status)
    if fmt:
        return export_response(result, fmt)
    dims = NETWORK_DIMENSIONS if q.scope == "network" else spec.dimensions
    query = request.GET.copy()
    query.pop("export", None)
    return render(request, "web/reports/report.html", {
        **ctx, **page_context(result), "q": q, "dimensions": [(d, DIMENSIONS[d]) for d in dims],
        "query": query.urlencode(), "list_rows": result.sections[0]["rows"][:selectors.PAGE_LIMIT]
        if name == "loans" else None, "page_limit": selectors.PAGE_LIMIT})
