import json

from django.core.management.base import BaseCommand

from node.notifications.services import deliver_pending


class Command(BaseCommand):
    help = "Deliver due notifications now (what the workers do every minute; safe alongside them)."

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=10000)
        parser.add_argument("--seconds", type=float, default=600.0)

    def handle(self, *args, **o):
        self.stdout.write(json.dumps(deliver_pending(limit=o["limit"], seconds=o["seconds"])))
