"""A report as a file: CSV (one table; a ``section`` column when there are several), XLSX (a sheet per section
plus an "About" sheet with the parameters) and PDF (the page's tables and charts, A4, WeasyPrint).

Values are written exactly: money as plain decimals with 2 places, ratios as decimals (0.1234) in CSV and as
percent-formatted numbers in XLSX."""

from __future__ import annotations

import csv
import io
import re
from datetime import date
from decimal import Decimal

from node.reports.catalog import INT, MONEY, RATIO

CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
}


def filename(result, fmt: str) -> str:
    from node.reports.selectors import stamp

    scope = "network" if result.query.scope == "network" else result.query.mfi_code or result.districts[0]
    as_of = result.as_of[:10] if result.as_of[:1].isdigit() else "latest"
    name = f"{result.spec.name}-{scope}-{as_of}-{stamp()}"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name) + f".{fmt}"  # a plain ASCII header value


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def to_csv(result) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    many = len(result.sections) > 1  # then each table follows the previous after a blank line
    for i, s in enumerate(result.sections):
        keys = [c["key"] for c in s["columns"]]
        if many and i:
            w.writerow([])
        w.writerow((["section"] if many else []) + keys)
        for r in s["rows"]:
            w.writerow(([s["key"]] if many else []) + [_cell(r.get(k)) for k in keys])
        if s.get("total"):
            w.writerow(([s["key"]] if many else []) + [_cell(s["total"].get(k)) for k in keys])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")  # BOM: Excel opens UTF-8 correctly


def to_xlsx(result) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    about = wb.active
    about.title = "About"
    meta = result.to_json()
    about.append(["Report", meta["title"]])
    about.append(["As of", meta["as_of"]])
    about.append(["Scope", meta["scope"]])
    about.append(["Districts", ", ".join(meta["districts"])])
    for k, v in meta["params"].items():
        about.append([f"Parameter: {k}", str(v)])
    about.append(["Generated at", meta["generated_at"]])
    for n in meta["notes"]:
        about.append(["Note", n])
    about["A1"].font = Font(bold=True)
    for s in result.sections:
        ws = wb.create_sheet(str(s["title"])[:31].replace("/", "-"))
        ws.append([str(c["label"]) for c in s["columns"]])
        for cell in ws[1]:
            cell.font = Font(bold=True)
        rows = list(s["rows"]) + ([s["total"]] if s.get("total") else [])
        for r in rows:
            ws.append([_xlsx_value(r.get(c["key"]), c["kind"]) for c in s["columns"]])
        for j, c in enumerate(s["columns"], start=1):
            fmt = {MONEY: "#,##0.00", RATIO: "0.00%", INT: "#,##0"}.get(c["kind"])
            if fmt:
                for row in ws.iter_rows(min_row=2, min_col=j, max_col=j):
                    row[0].number_format = fmt
            ws.column_dimensions[ws.cell(row=1, column=j).column_letter].width = max(12, len(str(c["label"])) + 2)
        if s.get("total"):
            for cell in ws[ws.max_row]:
                cell.font = Font(bold=True)
        ws.freeze_panes = "B2"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _xlsx_value(value, kind):
    if value is None:
        return None
    if kind in (MONEY, RATIO) and isinstance(value, (Decimal, str)):
        return Decimal(str(value))  # openpyxl writes Decimals as numbers, digit for digit
    if isinstance(value, date):
        return value
    return value if isinstance(value, (int, Decimal)) else str(value)


def to_pdf(html: str) -> bytes:
    from weasyprint import HTML

    return HTML(string=html).write_pdf()


def export_response(result, fmt: str):
    """The report as a download (``fmt`` one of catalog.EXPORTS)."""
    from django.http import HttpResponse
    from django.template.loader import render_to_string

    if fmt == "csv":
        body = to_csv(result)
    elif fmt == "xlsx":
        body = to_xlsx(result)
    else:
        body = to_pdf(render_to_string("web/reports/pdf.html", page_context(result)))
    resp = HttpResponse(body, content_type=CONTENT_TYPES[fmt])
    resp["Content-Disposition"] = f'attachment; filename="{filename(result, fmt)}"'
    return resp


def page_context(result) -> dict:
    """What the report page and its PDF show: the sections with their charts as inline SVG."""
    from django.utils.safestring import mark_safe

    from node.reports.charts import bar_chart

    return {"result": result, "report": result.spec,
            "sections": [{**s, "svg": mark_safe(bar_chart(s))} for s in result.sections]}  # nosec B308 B703 -- charts.py escapes every text it puts in the SVG
