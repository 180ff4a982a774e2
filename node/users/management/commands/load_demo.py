"""Load the demo data set for this district: its MFIs (from the district config), staff of every role
and a few borrowers. Idempotent: re-running updates nothing that already exists."""

from decimal import Decimal

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from node.mfis.models import Mfi
from node.users.models import Role, User


class Command(BaseCommand):
    help = "Create the demo MFIs, staff and borrowers for this district (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--password", required=True, help="password for every demo account")

    @transaction.atomic
    def handle(self, *args, password: str, **options):
        d = settings.DISTRICT
        created = 0

        def user(username: str, role: Role, first: str, last: str, mfi: Mfi | None = None, **extra) -> None:
            nonlocal created
            if User.objects.filter(username=username).exists():
                return
            u = User(username=username, role=role, first_name=first, last_name=last, mfi=mfi, **extra)
            u.set_password(password)
            u.save()
            created += 1

        for m in d.mfis:
            mfi, _ = Mfi.objects.get_or_create(
                code=m.code,
                defaults={"name": m.name, "home_district": d.code, "registration_number": f"DEMO-{m.code.upper()}",
                          "interest_rate_cap": Decimal("60")},
            )
            user(f"{m.code}.officer", Role.LOAN_OFFICER, "Lineo", "Mokoena", mfi)
            user(f"{m.code}.admin", Role.MFI_ADMIN, "Thabo", "Letsie", mfi)
            user(f"{m.code}.analyst", Role.ANALYST, "Palesa", "Moshoeshoe", mfi)
        user(f"{d.code}.admin", Role.LETSEMA_ADMIN, "Letsema", "Admin", is_staff=True, is_superuser=True)
        user(f"{d.code}.operator", Role.OPERATOR, "Ops", "Operator")
        for i, (first, last) in enumerate([("Mpho", "Nthane"), ("Refiloe", "Sello"), ("Teboho", "Ramoholi")], 1):
            user(f"{d.code}.borrower{i}", Role.BORROWER, first, last)
        self.stdout.write(f"demo data for {d.code}: {created} account(s) created")
