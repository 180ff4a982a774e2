"""Payroll files: writing the deduction file (CSV or XLSX) and reading an employer's result file (CSV or XLSX).

Pure: no database. Money stays ``Decimal`` (or the text it was written as) throughout: the export writes amounts
as text cells, and the import reads text as written. An XLSX *numeric* cell is read by openpyxl as a binary float;
it is turned into the shortest decimal text that reads back as the same float (``repr``: what a spreadsheet
shows, e.g. ``150.1``) and then judged by the same rules as text — so ``150.125`` is still "3 decimal places".
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from dataclasses import dataclass

from node.payroll.errors import PayrollFileInvalid

EXPORT_COLUMNS = ("employee_number", "borrower_name", "loan_reference", "amount_due", "currency", "month")
RESULT_REQUIRED = ("employee_number", "loan_reference", "amount_deducted", "status")
RESULT_OPTIONAL = ("reason",)
MAX_BYTES = 20 * 1024 * 1024
MAX_ROWS = 100_000
XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_CONTENT_TYPE = "text/csv; charset=utf-8"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


_PLAIN_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def _safe_text(value: str) -> str:
    """Text a spreadsheet will not run as a formula (CSV/formula injection: borrowers type their own names). A plain
    number (``-92.94``, a negative difference) is not a formula and stays as it is."""
    if value.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


# --- export --------------------------------------------------------------------------------------------------------

def write_csv(rows: list[tuple[str, ...]], *, columns: tuple[str, ...] = EXPORT_COLUMNS) -> bytes:
    """UTF-8 (no BOM), comma-separated, CRLF line ends (RFC 4180), a header row, every value text."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(columns)
    for row in rows:
        w.writerow([_safe_text(v) for v in row])
    return buf.getvalue().encode("utf-8")


def write_xlsx(rows: list[tuple[str, ...]], *, sheet: str = "deductions",
               columns: tuple[str, ...] = EXPORT_COLUMNS) -> bytes:
    """One sheet, the same header and rows as the CSV; every cell is a text cell (amounts included: no floats)."""
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(sheet)
    ws.append(list(columns))
    for row in rows:
        ws.append([_safe_text(v) for v in row])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


# --- import --------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ResultRow:
    row_number: int  # in the file, the header being row 1
    employee_number: str
    loan_reference: str
    amount: str  # as written (trimmed); "" when empty
    status: str
    reason: str


@dataclass(frozen=True)
class ResultFile:
    file_format: str  # csv | xlsx
    rows: list[ResultRow]


def sniff_format(content: bytes) -> str:
    return "xlsx" if content[:4] == b"PK\x03\x04" else "csv"


def _header_key(value) -> str:
    return str(value or "").strip().lower().replace(" ", "_").replace("-", "_")


def _cell_text(value) -> str:
    """A cell as text. Integers as digits; floats (XLSX numeric cells) by their shortest round-trip text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).upper()  # TRUE/FALSE: never a valid amount or status
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    return str(value).strip()


def _rows_from_table(records, file_format: str) -> ResultFile:
    """``records``: an iterator of (row_number, list of cell values), the first being the header."""
    try:
        _, header = next(records)
    except StopIteration:
        raise PayrollFileInvalid("The file is empty.") from None
    keys = [_header_key(h) for h in header]
    missing = [c for c in RESULT_REQUIRED if c not in keys]
    if missing:
        raise PayrollFileInvalid(
            "The result file's first row must name the columns " + ", ".join(RESULT_REQUIRED) + " (and optionally "
            "reason).", details={"missing_columns": missing, "found_columns": [k for k in keys if k]})
    duplicated = sorted({k for k in keys if k and keys.count(k) > 1 and k in RESULT_REQUIRED + RESULT_OPTIONAL})
    if duplicated:
        raise PayrollFileInvalid("A column appears twice in the header.", details={"duplicated_columns": duplicated})
    index = {k: keys.index(k) for k in RESULT_REQUIRED + RESULT_OPTIONAL if k in keys}

    rows: list[ResultRow] = []
    for number, cells in records:
        texts = [_cell_text(c) for c in cells]
        if not any(texts):
            continue  # blank line: not a row
        if len(rows) >= MAX_ROWS:
            raise PayrollFileInvalid(f"The file has more than {MAX_ROWS:,} rows; split it.",
                                     details={"max_rows": MAX_ROWS})

        values = {col: texts[i] if i < len(texts) else "" for col, i in index.items()}
        rows.append(ResultRow(row_number=number, employee_number=values["employee_number"],
                              loan_reference=values["loan_reference"], amount=values["amount_deducted"],
                              status=values["status"], reason=values.get("reason", "")))
    if not rows:
        raise PayrollFileInvalid("The file has a header but no rows.")
    return ResultFile(file_format=file_format, rows=rows)


def _csv_records(content: bytes):
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = content[:exc.start].count(b"\n") + 1
        raise PayrollFileInvalid(
            f"A CSV result file must be UTF-8 text; line {line} is not (a spreadsheet saved as plain 'CSV' on "
            "Windows writes Windows-1252). Save it as 'CSV UTF-8' and upload it again.",
            details={"byte_offset": exc.start, "line": line}) from None
    if "\x00" in text:
        raise PayrollFileInvalid("This is not a CSV text file.")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        yield from enumerate(reader, start=1)
    except csv.Error as exc:
        raise PayrollFileInvalid(f"The CSV cannot be parsed: {exc}.") from None


def _xlsx_records(content: bytes):
    from openpyxl import load_workbook

    try:
        wb = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, TypeError) as exc:
        raise PayrollFileInvalid("The XLSX workbook cannot be opened.", details={"error": type(exc).__name__}) from None
    try:
        ws = wb.worksheets[0]
        rows = enumerate(ws.iter_rows(values_only=True), start=1)
        while True:
            try:
                number, cells = next(rows)
            except StopIteration:
                return
            except Exception as exc:  # noqa: BLE001 - a damaged sheet (XML and the like): the file's fault, not ours
                raise PayrollFileInvalid("The XLSX sheet cannot be read.",
                                         details={"error": type(exc).__name__}) from None
            yield number, list(cells)
    finally:
        wb.close()


def read_result_file(content: bytes) -> ResultFile:
    """Parse an employer's result file (the format is recognised from the bytes: XLSX is a zip)."""
    if len(content) > MAX_BYTES:
        raise PayrollFileInvalid(f"The file is larger than {MAX_BYTES // 1024 // 1024} MB.",
                                 details={"max_bytes": MAX_BYTES})
    fmt = sniff_format(content)
    return _rows_from_table(_xlsx_records(content) if fmt == "xlsx" else _csv_records(content), fmt)


# --- the reconciliation as a sheet (API and staff pages) ----------------------------------------------------------

RECONCILIATION_COLUMNS = ("employee_number", "loan_reference", "requested", "deducted", "difference", "flag",
                          "employer_status", "reason", "error_code")


@dataclass(frozen=True)
class Download:
    content: bytes
    content_type: str
    file_name: str


def reconciliation_download(r, kind: str) -> Download:
    """The reconciliation's lines (``node.payroll.selectors.Reconciliation``) as a CSV or XLSX sheet, in its order;
    money with two decimals, negative differences kept as numbers, formula-like text quoted."""
    rows = [(x.employee_number, x.loan_reference, f"{x.requested:.2f}", f"{x.deducted:.2f}", f"{x.difference:.2f}",
             x.flag, x.employer_status, x.reason, x.error_code) for x in r.lines]
    if kind == "csv":
        content, content_type = write_csv(rows, columns=RECONCILIATION_COLUMNS), CSV_CONTENT_TYPE
    else:
        content = write_xlsx(rows, sheet="reconciliation", columns=RECONCILIATION_COLUMNS)
        content_type = XLSX_CONTENT_TYPE
    month = f"{r.month.year:04d}-{r.month.month:02d}"
    return Download(content=content, content_type=content_type,
                    file_name=f"reconciliation-{r.employer.mfi.code}-{r.employer.code}-{month}.{kind}")
