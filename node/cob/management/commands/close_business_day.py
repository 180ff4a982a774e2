import json
import sys
from datetime import date

from django.core.management.base import BaseCommand, CommandError

from node.cob.services import business_date_get, cob_close
from node.core.errors import ApplicationError


class Command(BaseCommand):
    help = ("Close of business: penalties, days past due, delinquency buckets, closures and credit events for every "
            "active loan. Default: close through yesterday. Resumes an interrupted run; re-running a closed day "
            "changes nothing.")

    def add_arguments(self, parser):
        parser.add_argument("--date", help="close the business day(s) through this date (YYYY-MM-DD); catch-up "
                                           "closes the missed days as one, as of this date")
        parser.add_argument("--chunk-size", type=int, default=2000)
        parser.add_argument("--max-chunks", type=int, default=None, help="stop after this many chunks (resumable)")
        parser.add_argument("--json", action="store_true", help="print the summary as JSON")

    def handle(self, *args, **o):
        try:
            through = date.fromisoformat(o["date"]) if o["date"] else None
        except ValueError:
            raise CommandError("--date must be YYYY-MM-DD") from None
        tty = sys.stderr.isatty()

        def progress(done: int, total: int) -> None:
            width = 30
            filled = int(width * done / max(total, 1))
            sys.stderr.write(f"{chr(13) if tty else ''}[{'#' * filled}{'.' * (width - filled)}] {done}/{total} loans"
                             + ("" if tty else "\n"))
            sys.stderr.flush()

        try:
            r = cob_close(through=through, actor_name="manage.py", chunk_size=o["chunk_size"],
                          max_chunks=o["max_chunks"], progress=progress)
        except ApplicationError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from None
        if tty:
            sys.stderr.write("\n")
        if o["json"]:
            self.stdout.write(json.dumps({"business_date": r.business_date.isoformat(), "completed": r.completed,
                                          "already_closed": r.already_closed, "loans": r.loans,
                                          "seconds": round(r.seconds, 2), **r.summary}))
            return
        if r.already_closed:
            self.stdout.write(f"business day {r.business_date} is already closed; business date is {business_date_get()}")
            return
        state = "closed" if r.completed else "NOT finished (run again to resume)"
        s = r.summary
        self.stdout.write(
            f"business day {r.business_date} {state} in {r.seconds:.1f}s: {r.loans} loans; penalties "
            f"{s['penalties_applied']} ({s['penalties_total']}); bucket moves {s['bucket_moves'] or 'none'}; "
            f"closed {s['closed']}; credit events {s['events']}"
            + (f"; in arrears {s.get('in_arrears')}; by bucket {s.get('by_bucket')}" if r.completed else ""))
