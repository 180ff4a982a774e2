from decimal import Decimal, InvalidOperation

from django.core.management.base import BaseCommand, CommandError

from node.core.errors import ApplicationError
from node.credit.services import network_policy_set
from node.credit.stacking import policy_get
from replication.ring import RingUnavailable

UNSET = "none"


class Command(BaseCommand):
    help = ("Show or set the network lending policy the stacking guard enforces on every node "
            "(e.g. --max-active-loans 3 --max-dti 0.6; 'none' removes a limit).")

    def add_arguments(self, parser):
        parser.add_argument("--max-active-loans", help="loans and approvals a borrower may hold network-wide, or none")
        parser.add_argument("--max-dti", help="maximum monthly repayments / declared monthly income, e.g. 0.6, or none")
        parser.add_argument("--reservation-days", type=int, help="days an approval holds its exposure (default 30)")

    def handle(self, *args, **o):
        try:
            current = policy_get()
        except RingUnavailable as exc:
            raise CommandError(f"credit_network_unavailable: {exc}") from None
        if o["max_active_loans"] is None and o["max_dti"] is None and o["reservation_days"] is None:
            self._show(current)
            return
        try:
            mal = current.max_active_loans if o["max_active_loans"] is None else (
                None if o["max_active_loans"] == UNSET else int(o["max_active_loans"]))
            dti = current.max_dti if o["max_dti"] is None else (None if o["max_dti"] == UNSET else Decimal(o["max_dti"]))
        except (ValueError, InvalidOperation):
            raise CommandError("--max-active-loans takes a whole number and --max-dti a decimal such as 0.6 "
                               "(or 'none')") from None
        days = current.reservation_days if o["reservation_days"] is None else o["reservation_days"]
        try:
            policy = network_policy_set(actor=None, max_active_loans=mal, max_dti=dti, reservation_days=days)
        except ApplicationError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from None
        self._show(policy)

    def _show(self, p):
        self.stdout.write(f"network policy ({p.source}): max active loans {p.max_active_loans or 'no limit'}, "
                          f"max debt-to-income {p.max_dti if p.max_dti is not None else 'no limit'}, "
                          f"reservations held {p.reservation_days} days")
