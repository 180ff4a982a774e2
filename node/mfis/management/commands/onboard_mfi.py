from decimal import Decimal, InvalidOperation

from django.core.management.base import BaseCommand, CommandError

from node.core.errors import ApplicationError
from node.mfis.services import mfi_onboard


class Command(BaseCommand):
    help = "Onboard an MFI on this (its home) district node together with its first MFI admin."

    def add_arguments(self, parser):
        parser.add_argument("--code", required=True)
        parser.add_argument("--name", required=True)
        parser.add_argument("--registration-number", required=True)
        parser.add_argument("--rate-cap", required=True, help="annual interest-rate cap in percent, e.g. 60")
        parser.add_argument("--admin-username", required=True)
        parser.add_argument("--admin-first-name", required=True)
        parser.add_argument("--admin-last-name", required=True)
        parser.add_argument("--admin-email", default="")

    def handle(self, *args, **o):
        try:
            cap = Decimal(o["rate_cap"])
        except InvalidOperation:
            raise CommandError("--rate-cap must be a number such as 60 or 48.5") from None
        try:
            r = mfi_onboard(actor=None, code=o["code"], name=o["name"], registration_number=o["registration_number"],
                            interest_rate_cap=cap, admin_username=o["admin_username"],
                            admin_first_name=o["admin_first_name"], admin_last_name=o["admin_last_name"],
                            admin_email=o["admin_email"])
        except ApplicationError as exc:
            raise CommandError(f"{exc.code}: {exc.message} {exc.details or ''}".rstrip()) from None
        self.stdout.write(f"onboarded {r.mfi.code} ({r.mfi.name}); MFI admin {r.admin.username} "
                          f"temporary password: {r.temporary_password}")
