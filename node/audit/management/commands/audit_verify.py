"""``manage.py audit_verify``: recompute the audit hash chain and report the first broken link.

Exit status 0 with ``audit chain OK: N events``; 1 with ``audit chain BROKEN at seq S: <reason>``. Progress goes
to stderr every 10,000 events.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from node.audit.selectors import audit_verify_chain


class Command(BaseCommand):
    help = "Verify the audit trail's hash chain; exit status 1 at the first broken link."

    def add_arguments(self, parser):
        parser.add_argument("--progress-every", type=int, default=10_000, help="report progress every N events")

    def handle(self, *args, **options):
        every = max(1, options["progress_every"])
        result = audit_verify_chain(
            progress=lambda n: self.stderr.write(f"audit_verify: {n} events checked"), progress_every=every
        )
        if not result.ok:
            raise CommandError(f"audit chain BROKEN at seq {result.first_broken_seq}: {result.reason}", returncode=1)
        self.stdout.write(f"audit chain OK: {result.checked} events")
