from django.conf import settings
from django.core.management.base import BaseCommand

from replication.outbox import outbox_lag, ship_batch
from replication.ring_writer import write_event


class Command(BaseCommand):
    help = "Ship pending outbox events to the ring now (what the Celery task does), then print the lag."

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=1000)

    def handle(self, *args, **options):
        r = ship_batch(write_event, limit=options["limit"], concurrency=settings.LETSEMA_SHIP_CONCURRENCY)
        lag = outbox_lag()
        self.stdout.write(f"shipped {r.shipped}, failed {r.failed}, held back {r.blocked}; "
                          f"pending {lag.pending} (oldest {lag.oldest_pending_seconds:.0f}s)")
