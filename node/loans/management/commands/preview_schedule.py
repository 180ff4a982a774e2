"""Read schedule input JSON on standard input; print the schedule JSON on standard output.

    echo '{"principal": "10000", ...}' | LETSEMA_DISTRICT=maseru ./manage.py preview_schedule

No database is touched. Invalid input: the field errors as JSON on standard error, exit status 2.
"""

import json
import sys

from django.core.management.base import BaseCommand

from node.loans.schedule import ScheduleInputError, generate_schedule, parse_schedule_input, schedule_to_json


class Command(BaseCommand):
    help = "Print the repayment schedule (JSON) for the schedule input JSON read from standard input."
    requires_system_checks: list = []
    requires_migrations_checks = False

    def handle(self, *args, **options):
        raw = sys.stdin.read()
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            self._fail({"code": "malformed_request", "message": f"Standard input is not JSON: {exc}", "details": {}})
        try:
            result = schedule_to_json(generate_schedule(parse_schedule_input(data)))
        except ScheduleInputError as exc:
            self._fail({"code": "validation_error", "message": "The schedule input is invalid.",
                        "details": {"fields": exc.errors}})
        self.stdout.write(json.dumps(result, indent=2))

    def _fail(self, body):
        sys.stderr.write(json.dumps(body) + "\n")
        sys.exit(2)
