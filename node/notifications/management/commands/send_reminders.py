import json
from datetime import date

from django.core.management.base import BaseCommand, CommandError

from node.core.errors import ApplicationError
from node.notifications.services import reminders_create, reminders_run_due


class Command(BaseCommand):
    help = ("Create installment reminders: due in N days (NOTIFY_DAYS_BEFORE_DUE, default 3) and overdue since "
            "yesterday, for every active loan. Default: the node's business date (and any day the daily job missed). "
            "Running it again for a date creates nothing new. Delivery is done by the workers "
            "(or manage.py deliver_notifications).")

    def add_arguments(self, parser):
        parser.add_argument("--date", help="business date YYYY-MM-DD (default: the node's business date)")
        parser.add_argument("--days-before", type=int, default=None, help="N (default NOTIFY_DAYS_BEFORE_DUE)")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **o):
        try:
            day = date.fromisoformat(o["date"]) if o["date"] else None
        except ValueError:
            raise CommandError("--date must be YYYY-MM-DD") from None
        try:
            if day is None and o["days_before"] is None:
                results = reminders_run_due(by="manage.py")
            else:
                from node.cob.services import business_date_get

                results = [reminders_create(day=day or business_date_get(), days_before=o["days_before"],
                                            by="manage.py")]
        except ApplicationError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from None
        for r in results:
            if o["json"]:
                self.stdout.write(json.dumps({"business_date": r.business_date.isoformat(),
                                              "upcoming": r.upcoming_created, "overdue": r.overdue_created}))
            else:
                self.stdout.write(f"business date {r.business_date}: {r.upcoming_created} due-soon reminders, "
                                  f"{r.overdue_created} overdue notices created")
