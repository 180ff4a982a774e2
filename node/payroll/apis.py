"""Payroll API: employers, enrolments, the monthly deduction file and result-file imports with their per-row report.
Views stay thin: access checks (selectors), input parsing, one service call, JSON (or the file) out."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from node.borrowers.selectors import access_borrower_by_id
from node.core.errors import ValidationFailed
from node.core.fields import StrictSerializer
from node.core.idempotency import idempotent
from node.core.paging import query_flag
from node.payroll import files, schemas, selectors, services
from node.payroll.errors import PayrollFileAlreadyImported, PayrollFileInvalid
from node.payroll.models import Employer, PayrollEnrolment, PayrollImport
from node.users.models import MFI_STAFF_ROLES, Role

STAFF = MFI_STAFF_ROLES
OFFICERS = frozenset({Role.LOAN_OFFICER, Role.MFI_ADMIN})
ADMINS = frozenset({Role.MFI_ADMIN})


def employer_json(e: Employer) -> dict:
    return {"id": e.pk, "code": e.code, "name": e.name, "mfi": e.mfi.code, "created_at": e.created_at.isoformat()}


def enrolment_json(e: PayrollEnrolment) -> dict:
    return {"id": e.pk, "employer": e.employer_id, "employer_code": e.employer.code, "borrower": e.borrower_id,
            "borrower_name": f"{e.borrower.first_name} {e.borrower.last_name}".strip(),
            "employee_number": e.employee_number, "created_at": e.created_at.isoformat(),
            "ended_at": e.ended_at.isoformat() if e.ended_at else None}


def import_json(imp: PayrollImport, *, with_rows: bool = True) -> dict:
    """The import report: header, summary (counted from the rows) and, by default, one entry per data row."""
    s = selectors.import_summary(imp)
    body = {
        "id": imp.pk,
        "employer": imp.employer_id,
        "employer_code": imp.employer.code,
        "month": selectors.month_label(imp.month),
        "payment_date": imp.payment_date.isoformat(),
        "file_name": imp.file_name,
        "format": imp.file_format,
        "sha256": imp.sha256,
        "status": imp.status,
        "imported_by": imp.created_by.username,
        "created_at": imp.created_at.isoformat(),
        "completed_at": imp.completed_at.isoformat() if imp.completed_at else None,
        "summary": {"rows": s.rows, "posted": s.posted, "reversed": s.reversed, "skipped": s.skipped,
                    "rejected": s.rejected,
                    "pending": s.pending, "total_posted": f"{s.total_posted:.2f}",
                    "rejected_by_code": s.rejected_by_code},
    }
    if with_rows:
        body["rows"] = [
            {"row": r.row_number, "employee_number": r.employee_number, "loan_reference": r.loan_reference,
             "amount_deducted": f"{r.amount:.2f}" if r.amount is not None else r.amount_text, "status": r.status,
             "outcome": r.outcome, "error_code": r.error_code or None, "message": r.message,
             "receipt_number": r.receipt_number or None, "repayment": r.repayment_id}
            for r in selectors.import_rows(imp)
        ]
    return body


def _month_param(request) -> str:
    return request.query_params.get("month", "")


# --- employers ---------------------------------------------------------------------------------------------------

class EmployerCreateSerializer(StrictSerializer):
    code = serializers.CharField(max_length=40)
    name = serializers.CharField(max_length=200)


class EmployerListApi(APIView):
    """``GET``: the MFI's payroll employers (its staff). ``POST`` (MFI admins): add one, ``{"code", "name"}``."""

    @extend_schema(responses=schemas.Employer(many=True))
    def get(self, request):
        return Response([employer_json(e) for e in selectors.employer_list_for(actor=request.user)])

    @extend_schema(request=EmployerCreateSerializer, responses={201: schemas.Employer})
    def post(self, request):
        s = EmployerCreateSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        employer = services.employer_create(actor=request.user, **s.validated_data)
        return Response(employer_json(employer), status=status.HTTP_201_CREATED)


class EmployerDetailApi(APIView):
    @extend_schema(responses=schemas.Employer)
    def get(self, request, employer_id):
        return Response(employer_json(selectors.access_employer_by_id(request.user, employer_id)))


# --- enrolments --------------------------------------------------------------------------------------------------

class EnrolmentCreateSerializer(StrictSerializer):
    borrower = serializers.IntegerField()
    employee_number = serializers.CharField(max_length=40)


class EnrolmentListApi(APIView):
    """``GET``: the employer's live enrolments (``?include_ended=true`` for all). ``POST`` (loan officers, MFI
    admins): enrol a client of the MFI, ``{"borrower": 12, "employee_number": "GOV-0042"}``."""

    @extend_schema(parameters=[OpenApiParameter("include_ended", bool)],
                   responses=schemas.Enrolment(many=True))
    def get(self, request, employer_id):
        employer = selectors.access_employer_by_id(request.user, employer_id)
        include_ended = query_flag(request, "include_ended")
        return Response([enrolment_json(e) for e in selectors.enrolment_list(employer=employer,
                                                                               include_ended=include_ended)])

    @extend_schema(request=EnrolmentCreateSerializer, responses={201: schemas.Enrolment})
    def post(self, request, employer_id):
        employer = selectors.access_employer_by_id(request.user, employer_id, roles=OFFICERS)
        s = EnrolmentCreateSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        borrower = access_borrower_by_id(request.user, s.validated_data["borrower"])
        enrolment = services.enrolment_create(actor=request.user, employer=employer, borrower=borrower,
                                              employee_number=s.validated_data["employee_number"])
        return Response(enrolment_json(enrolment), status=status.HTTP_201_CREATED)


class EnrolmentDetailApi(APIView):
    """``GET`` one enrolment; ``DELETE`` ends it (loan officers, MFI admins; it stays on record, ended)."""

    @extend_schema(responses=schemas.Enrolment)
    def get(self, request, enrolment_id):
        return Response(enrolment_json(selectors.access_enrolment_by_id(request.user, enrolment_id)))

    @extend_schema(responses={200: schemas.Enrolment})
    def delete(self, request, enrolment_id):
        enrolment = selectors.access_enrolment_by_id(request.user, enrolment_id, roles=OFFICERS)
        return Response(enrolment_json(services.enrolment_end(actor=request.user, enrolment=enrolment)))


# --- the deduction file ------------------------------------------------------------------------------------------

class DeductionsApi(APIView):
    """The month's deduction file for the employer (loan officers, MFI admins), as an attachment:
    ``?month=2026-07&format=csv|xlsx`` (format defaults to csv). Each download is recorded and audited."""

    def perform_content_negotiation(self, request, force=False):
        # ``format=csv|xlsx`` names the file's format, not a DRF renderer: errors still answer JSON
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(parameters=[OpenApiParameter("month", str, required=True, description="YYYY-MM"),
                               OpenApiParameter("format", str, enum=["csv", "xlsx"])],
                   responses={(200, "text/csv"): bytes, (200, files.XLSX_CONTENT_TYPE): bytes})
    def get(self, request, employer_id):
        employer = selectors.access_employer_by_id(request.user, employer_id, roles=OFFICERS)
        month = services.parse_month(_month_param(request))
        out = services.payroll_export(actor=request.user, employer=employer, month=month,
                                      file_format=request.query_params.get("format", "csv"))
        response = HttpResponse(out.content, content_type=out.content_type)
        response["Content-Disposition"] = f'attachment; filename="{out.file_name}"'
        response["Cache-Control"] = "no-store"
        response["X-Content-Type-Options"] = "nosniff"
        response["X-Payroll-Export"] = str(out.export.pk)
        response["X-Payroll-Rows"] = str(out.export.rows)
        response["X-Payroll-Total"] = f"{out.export.total:.2f}"
        response["X-Content-SHA256"] = out.export.sha256
        return response


# --- imports -----------------------------------------------------------------------------------------------------

class ImportSerializer(StrictSerializer):
    file = serializers.FileField()
    month = serializers.CharField(max_length=7)
    payment_date = serializers.DateField(required=False)


class ImportListApi(APIView):
    """``GET``: the employer's imports, newest first (summaries). ``POST`` (MFI admins; multipart ``file`` and
    ``month``, optional ``payment_date``; ``Idempotency-Key`` required): import a result file, answer its report —
    201; 200 when it resumed an interrupted import of the same file; 409 ``payroll_file_already_imported`` (with the
    first import's report in ``details.report``) when the same file was imported already; 202 (``status``
    ``posting``, a ``Location`` to poll) when the file has more rows to post than ``LETSEMA_PAYROLL_SYNC_ROWS``:
    they are posted in the background and the report's ``summary`` (``pending``, ``posted``) shows the progress."""

    parser_classes = [MultiPartParser]

    @extend_schema(responses=schemas.ImportHeader(many=True))
    def get(self, request, employer_id):
        employer = selectors.access_employer_by_id(request.user, employer_id)
        return Response([import_json(i, with_rows=False) for i in selectors.import_list(employer=employer)])

    @extend_schema(request={"multipart/form-data": {"type": "object", "properties": {
        "file": {"type": "string", "format": "binary"}, "month": {"type": "string", "example": "2026-07"},
        "payment_date": {"type": "string", "format": "date"}}}},
        responses={201: schemas.ImportPosted, 200: schemas.ImportPosted, 202: schemas.ImportPosted})
    @idempotent
    def post(self, request, employer_id):
        employer = selectors.access_employer_by_id(request.user, employer_id, roles=ADMINS)
        s = ImportSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        upload = s.validated_data["file"]
        if upload.size > files.MAX_BYTES:
            raise PayrollFileInvalid(f"The file is larger than {files.MAX_BYTES // 1024 // 1024} MB.",
                                     details={"max_bytes": files.MAX_BYTES})
        result = services.payroll_import(
            actor=request.user, employer=employer, month=services.parse_month(s.validated_data["month"]),
            content=upload.read(), file_name=upload.name or "", payment_date=s.validated_data.get("payment_date"),
            background_over=settings.LETSEMA_PAYROLL_SYNC_ROWS)
        report = import_json(result.payroll_import)
        if result.already_imported:
            raise PayrollFileAlreadyImported(
                f"This file was already imported for {report['month']} (import {report['id']}); nothing was posted "
                "again.", details={"import": report["id"], "report": report})
        body = {**report, "resumed": result.resumed}
        if result.queued:  # posted in the background: the report fills in as batches commit
            imp = result.payroll_import
            response = Response(body, status=status.HTTP_202_ACCEPTED)
            response["Location"] = reverse("payroll-import", kwargs={"employer_id": imp.employer_id,
                                                                     "import_id": imp.pk})
            return response
        return Response(body, status=status.HTTP_200_OK if result.resumed else status.HTTP_201_CREATED)


class ImportDetailApi(APIView):
    """One import's report (staff of the MFI)."""

    @extend_schema(responses=schemas.ImportReport)
    def get(self, request, employer_id, import_id):
        employer = selectors.access_employer_by_id(request.user, employer_id)
        imp = selectors.access_import(request.user, employer, import_id)
        return Response(import_json(imp))



# --- reconciliation --------------------------------------------------------------------------------------------

def _money(v) -> str:
    return f"{v:.2f}"


def reconciliation_json(r: selectors.Reconciliation) -> dict:
    m = _money
    return {
        "employer": r.employer.pk, "employer_code": r.employer.code, "month": selectors.month_label(r.month),
        "export": r.export.pk, "exported_at": r.export.created_at.isoformat(),
        "summary": {"loans": len(r.lines), "total_requested": m(r.total_requested),
                    "total_deducted": m(r.total_deducted), "difference": m(r.total_requested - r.total_deducted),
                    "by_flag": r.counts},
        "lines": [{"loan": x.loan_id, "loan_reference": x.loan_reference, "employee_number": x.employee_number,
                   "requested": m(x.requested), "deducted": m(x.deducted), "difference": m(x.difference),
                   "flag": x.flag, "employer_status": x.employer_status, "reason": x.reason,
                   "error_code": x.error_code} for x in r.lines],
    }


class ReconciliationApi(APIView):
    """``?month=YYYY-MM``: the month's latest deduction file against what the employer's result files deducted,
    loan by loan (MFI staff). ``payroll_not_exported`` (409) when nothing was exported for the month.
    ``&format=csv|xlsx``: the lines as a sheet to download (the JSON's ``lines``, same order)."""

    def perform_content_negotiation(self, request, force=False):
        # ``format=csv|xlsx`` names the download's format, not a DRF renderer: errors still answer JSON
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(parameters=[OpenApiParameter("month", str, required=True, description="YYYY-MM"),
                               OpenApiParameter("format", str, enum=["json", "csv", "xlsx"],
                                                description="default json")],
                   responses={(200, "application/json"): schemas.Reconciliation, (200, "text/csv"): bytes,
                              (200, files.XLSX_CONTENT_TYPE): bytes})
    def get(self, request, employer_id):
        employer = selectors.access_employer_by_id(request.user, employer_id)
        month = services.parse_month(_month_param(request))
        kind = request.query_params.get("format", "json")
        if kind not in ("json", "csv", "xlsx"):
            raise ValidationFailed("format must be json, csv or xlsx.",
                                   details={"fields": {"format": ["json", "csv", "xlsx"]}})
        r = selectors.payroll_reconciliation(employer=employer, month=month)
        if kind == "json":
            return Response(reconciliation_json(r))
        out = files.reconciliation_download(r, kind)
        response = HttpResponse(out.content, content_type=out.content_type)
        response["Content-Disposition"] = f'attachment; filename="{out.file_name}"'
        response["Cache-Control"] = "no-store"
        response["X-Content-Type-Options"] = "nosniff"
        return response
