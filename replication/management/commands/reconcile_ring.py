import json
import sys

from django.core.management.base import BaseCommand

from replication.reconcile import reconcile


class Command(BaseCommand):
    help = ("Compare the events this node shipped with what the ring holds; --repair writes missing ones again "
            "(idempotent). Exit code 1 when a gap remains or the ring could not be read.")

    def add_arguments(self, parser):
        parser.add_argument("--repair", action="store_true", help="write missing events to the ring again")
        parser.add_argument("--json", action="store_true", help="print the report as JSON")

    def handle(self, *args, **o):
        tty = sys.stderr.isatty()

        def progress(done: int, total: int) -> None:
            if tty or done == total or done % 500 == 0:
                width = 30
                filled = int(width * done / max(total, 1))
                sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} borrowers")
                if done == total:
                    sys.stderr.write("\n")
                sys.stderr.flush()

        r = reconcile(repair=o["repair"], progress=progress)
        if o["json"]:
            self.stdout.write(json.dumps(r.to_json()))
        else:
            self.stdout.write(
                f"borrowers {r.partitions}, shipped events checked {r.checked}: present {r.present}, "
                f"missing {r.missing}, repaired {r.repaired}; in the ring but unknown here {r.unknown_in_ring}; "
                f"not shipped yet {r.pending}")
            for e in r.errors:
                self.stderr.write(f"error: {e}")
        if r.errors or r.missing > r.repaired:
            sys.exit(1)
