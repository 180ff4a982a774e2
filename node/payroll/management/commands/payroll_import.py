import json
import sys
from datetime import date
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from node.core.errors import ApplicationError
from node.payroll import selectors, services
from node.users.models import Role

EXIT_REJECTED, EXIT_ERROR, EXIT_ALREADY_IMPORTED, EXIT_INTERRUPTED = 1, 2, 3, 4


class Command(BaseCommand):
    help = ("Import an employer's payroll result file (CSV or XLSX) for a month: validate every row, then post the "
            "valid ones as payroll repayments in batches. Prints a progress bar on stderr and a summary. Exit code: "
            "0 all rows posted or skipped, 1 some rows rejected, 2 the file or an argument is refused (nothing "
            "posted), 3 this file was already imported for the employer and month (nothing posted again).")

    def add_arguments(self, parser):
        parser.add_argument("file", help="the result file (.csv or .xlsx)")
        parser.add_argument("--mfi", required=True, help="MFI code")
        parser.add_argument("--employer", required=True, help="employer code (at that MFI)")
        parser.add_argument("--month", required=True, help="YYYY-MM")
        parser.add_argument("--user", help="post as this MFI admin (default: the MFI's only active MFI admin)")
        parser.add_argument("--payment-date", help="date of the repayments (default: the month's last day, or today)")
        parser.add_argument("--batch-size", type=int, default=services.DEFAULT_BATCH, help="rows per transaction")
        parser.add_argument("--workers", type=int, default=None,
                            help="batches posted side by side (default: LETSEMA_PAYROLL_POST_WORKERS, 2)")
        parser.add_argument("--json", action="store_true", help="print the summary as JSON")

    def handle(self, *args, **o):
        path = Path(o["file"])
        if not path.is_file():
            raise CommandError(f"no such file: {path}", returncode=EXIT_ERROR)
        if o["workers"] is not None and not 1 <= o["workers"] <= 8:
            raise CommandError("--workers must be 1-8", returncode=EXIT_ERROR)
        try:
            payment_date = date.fromisoformat(o["payment_date"]) if o["payment_date"] else None
        except ValueError:
            raise CommandError("--payment-date must be YYYY-MM-DD", returncode=EXIT_ERROR) from None
        tty = sys.stderr.isatty()

        def progress(done: int, total: int) -> None:
            width = 30
            filled = int(width * done / max(total, 1))
            sys.stderr.write(f"{chr(13) if tty else ''}[{'#' * filled}{'.' * (width - filled)}] {done}/{total} rows "
                             "posted" + ("" if tty else "\n"))
            sys.stderr.flush()

        try:
            employer = selectors.employer_by_code(mfi_code=o["mfi"], employer_code=o["employer"])
            actor = selectors.command_actor(employer=employer, username=o["user"], roles=frozenset({Role.MFI_ADMIN}))
            result = services.payroll_import(actor=actor, employer=employer, month=services.parse_month(o["month"]),
                                             content=path.read_bytes(), file_name=path.name,
                                             payment_date=payment_date, batch_size=o["batch_size"], progress=progress,
                                             workers=o["workers"])
        except services.PosterFailed as exc:
            if tty:
                sys.stderr.write("\n")
            raise CommandError(f"posting stopped: {exc}. The batches committed so far stay posted; run the same "
                               "command with the same file again to post the rest.",
                               returncode=EXIT_INTERRUPTED) from None
        except ApplicationError as exc:
            if tty:
                sys.stderr.write("\n")
            details = f" {json.dumps(exc.details, default=str)}" if exc.details else ""
            raise CommandError(f"{exc.code}: {exc.message}{details}", returncode=EXIT_ERROR) from None
        if tty:
            sys.stderr.write("\n")
        imp = result.payroll_import
        s = selectors.import_summary(imp)
        summary = {"import": imp.pk, "employer": employer.code, "month": selectors.month_label(imp.month),
                   "already_imported": result.already_imported, "resumed": result.resumed, "rows": s.rows,
                   "posted": s.posted, "skipped": s.skipped, "rejected": s.rejected,
                   "total_posted": f"{s.total_posted:.2f}", "rejected_by_code": s.rejected_by_code}
        if o["json"]:
            self.stdout.write(json.dumps(summary))
        else:
            by_code = ", ".join(f"{code} {n}" for code, n in s.rejected_by_code.items()) or "none"
            self.stdout.write(
                f"import {imp.pk} ({employer.code} {summary['month']}, {imp.file_name}): {s.rows} rows, posted "
                f"{s.posted} (total {summary['total_posted']}), skipped {s.skipped}, rejected {s.rejected} "
                f"(by code: {by_code})")
            for row in selectors.import_rows(imp).filter(outcome="rejected")[:50]:
                self.stdout.write(f"  row {row.row_number}: {row.error_code}: {row.message}")
            if s.rejected > 50:
                self.stdout.write(f"  ... and {s.rejected - 50} more (GET /api/v1/payroll/employers/{employer.pk}/"
                                  f"imports/{imp.pk})")
        if result.already_imported:
            raise CommandError(f"payroll_file_already_imported: this file was imported as import {imp.pk} on "
                               f"{imp.created_at:%Y-%m-%d %H:%M}; nothing posted again", returncode=EXIT_ALREADY_IMPORTED)
        if s.rejected:
            raise CommandError(f"{s.rejected} of {s.rows} rows rejected", returncode=EXIT_REJECTED)
