from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from node.core.errors import ApplicationError
from node.payroll import selectors, services
from node.users.models import Role


class Command(BaseCommand):
    help = ("Write an employer's payroll deduction file for a month: every active loan of its enrolled borrowers at "
            "the MFI with the unpaid amounts of installments due by the month's end (arrears included). The export "
            "is recorded and audited like a download through the API.")

    def add_arguments(self, parser):
        parser.add_argument("--mfi", required=True, help="MFI code")
        parser.add_argument("--employer", required=True, help="employer code (at that MFI)")
        parser.add_argument("--month", required=True, help="YYYY-MM")
        parser.add_argument("--format", choices=["csv", "xlsx"], default="csv")
        parser.add_argument("--out", required=True, help="file to write ('-' for standard output, CSV only)")
        parser.add_argument("--user", help="record the export as this loan officer / MFI admin (default: no user)")

    def handle(self, *args, **o):
        try:
            employer = selectors.employer_by_code(mfi_code=o["mfi"], employer_code=o["employer"])
            actor = (selectors.command_actor(employer=employer, username=o["user"],
                                             roles=frozenset({Role.LOAN_OFFICER, Role.MFI_ADMIN}))
                     if o["user"] else None)
            out = services.payroll_export(actor=actor, employer=employer, month=services.parse_month(o["month"]),
                                          file_format=o["format"])
        except ApplicationError as exc:
            raise CommandError(f"{exc.code}: {exc.message}", returncode=2) from None
        if o["out"] == "-":
            if o["format"] != "csv":
                raise CommandError("--out - is for CSV only", returncode=2)
            self.stdout.write(out.content.decode("utf-8"), ending="")
            return
        Path(o["out"]).write_bytes(out.content)
        e = out.export
        self.stderr.write(f"export {e.pk}: {e.rows} rows, total {e.total:.2f}, sha256 {e.sha256} -> {o['out']}")
