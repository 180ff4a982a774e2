"""Reports over HTTP: the catalogue, one report as JSON or as a CSV/XLSX/PDF download (``?export=``), and the
signed peer endpoint a network report fans out to (summed measures only)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from node.core.errors import ValidationFailed
from node.peers.apis import _PeerApi
from node.reports import selectors
from node.reports.catalog import EXPORTS, REPORTS
from node.reports.exports import export_response
from node.users.permissions import role_required

REPORT_PARAMETERS = {
    "by": "mfi, product, officer or district (the reports that group)",
    "period": "day, week or month (the reports over time)",
    "from": "YYYY-MM-DD", "to": "YYYY-MM-DD",
    "month": "YYYY-MM (month-end reports)",
    "status": "a loan status (loan lists)",
    "as_of": "YYYY-MM-DD: a day close of business kept (PAR; default the last close); 409 day_not_kept otherwise",
}


class ReportListApi(APIView):
    """The reports you may run, with the parameters each takes."""

    permission_classes = [role_required(*selectors.REPORT_ROLES)]

    @extend_schema(responses=dict)
    def get(self, request):
        return Response({"reports": [
            {"name": s.name, "title": str(s.title), "description": str(s.description), "params": list(s.params),
             "dimensions": list(s.dimensions), "network": s.network} for s in selectors.reports_for(request.user)]})


class ReportApi(APIView):
    """Run one report. Parameters (each report takes its own; unknown ones are refused): ``by`` (mfi, product,
    officer, district), ``period`` (day, week, month) with ``from``/``to`` dates, ``month`` (YYYY-MM), ``status``
    (loan lists), ``mfi`` (Letsema admins), ``scope`` (node or network; network: Letsema admins). ``export`` csv,
    xlsx or pdf returns a file instead of JSON."""

    permission_classes = [role_required(*selectors.REPORT_ROLES)]
    # each report refuses parameters it does not take (report_query); empty ones are the middleware's, with this code
    own_query_parameter_code = "invalid_report_parameter"

    @extend_schema(responses=dict, parameters=[
        OpenApiParameter("export", str, enum=list(EXPORTS)),
        OpenApiParameter("scope", str, enum=["node", "network"]),
        OpenApiParameter("mfi", str, description="an MFI's code (Letsema administrators)"),
        *(OpenApiParameter(name, str, description=REPORT_PARAMETERS[name])
          for name in sorted({p for spec in REPORTS.values() for p in spec.params}))])
    def get(self, request, name):
        fmt = request.query_params.get("export") or ""
        if fmt and fmt not in EXPORTS:
            raise ValidationFailed(f"'export' must be one of {', '.join(EXPORTS)}.", code="invalid_report_parameter",
                                   details={"fields": {"export": list(EXPORTS)}})
        q = selectors.report_query(actor=request.user, name=name, data=request.query_params.dict())
        result = selectors.report_run(actor=request.user, q=q)
        return export_response(result, fmt) if fmt else Response(result.to_json())


class FederationReportFactsApi(_PeerApi):
    """A peer's network report: this node's summed measures for the same report and parameters."""

    @extend_schema(exclude=True)
    def post(self, request):
        return Response(selectors.facts_json(selectors.report_query_from_peer(request.data)))
