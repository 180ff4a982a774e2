"""Load the demo data set for this district: its MFIs (from the district config), staff of every role
and a few borrowers. Idempotent: re-running updates nothing that already exists."""

from datetime import date
from decimal import Decimal

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from node.borrowers.identity import LESOTHO_DISTRICTS
from node.mfis.models import Mfi
from node.users.models import Role, User


class Command(BaseCommand):
    help = "Create the demo MFIs, staff and borrowers for this district (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--password", required=True, help="password for every demo account")

    def handle(self, *args, password: str, **options):
        with transaction.atomic():
            self._accounts(password)

    def _accounts(self, password: str) -> None:
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
        officer = User.objects.filter(role=Role.LOAN_OFFICER, mfi__code=d.mfis[0].code).first() if d.mfis else None
        self.stdout.write(f"demo data for {d.code}: {created} account(s) created")
        self._demo_products(d)
        if officer is not None:
            self._demo_borrowers(d, officer)

    def _demo_products(self, d) -> None:
        from node.loans.models import LoanProduct
        from node.loans.products import product_create

        for m in d.mfis:
            admin = User.objects.get(username=f"{m.code}.admin")
            if LoanProduct.objects.filter(mfi=admin.mfi, code="salary").exists():
                continue
            product_create(actor=admin, mfi=admin.mfi, data={
                "code": "salary", "name": "Salary-backed loan", "annual_interest_rate": Decimal("36"),
                "interest_method": "DECLINING_BALANCE", "amortization": "EQUAL_INSTALLMENTS",
                "repayment_frequency": "MONTHS", "min_principal": Decimal("500"), "max_principal": Decimal("50000"),
                "min_repayments": 3, "max_repayments": 24,
                "fees": [{"name": "Processing fee", "amount": "2", "calculation": "PERCENT_OF_PRINCIPAL",
                          "charge_time": "DISBURSEMENT"}],
                "overdue_penalty": {"calculation": "FLAT", "amount": "50.00", "grace_days": 3},
            })

    def _demo_borrowers(self, d, officer) -> None:
        """Borrower profiles for the demo borrower accounts, registered at the branch (ring claim included)."""
        from node.borrowers.models import Borrower
        from node.borrowers.services import RegistrationData, borrower_register, consent_give

        people = [("Mpho", "Nthane"), ("Refiloe", "Sello"), ("Teboho", "Ramoholi")]
        prefix = f"{sum(map(ord, d.code)) % 90 + 10}"  # two digits, stable per district
        made = 0
        for i, (first, last) in enumerate(people, 1):
            account = User.objects.get(username=f"{d.code}.borrower{i}")
            if Borrower.objects.filter(user=account).exists():
                continue
            data = RegistrationData(
                national_id=f"9{prefix}0000000{i}", first_name=first, last_name=last,
                date_of_birth=date(1985 + i, i, 10 + i), phone=f"+2665{prefix}0000{i}", address="Demo village",
                residence_district=d.name if d.name in LESOTHO_DISTRICTS else "Maseru", employer="Demo employer",
                employee_number=f"D-{i}", monthly_income=Decimal("6500.00") + 1000 * i,
                next_of_kin_name="Demo Kin", next_of_kin_phone=f"+2666{prefix}0000{i}", next_of_kin_relationship="sibling",
            )
            b = borrower_register(actor=officer, data=data, channel="branch", mfi=officer.mfi)
            Borrower.objects.filter(pk=b.pk).update(user=account)
            if i == 1:
                consent_give(actor=officer, borrower=b, version=1, language="st", channel="branch")
            made += 1
        self.stdout.write(f"demo borrowers for {d.code}: {made} registered")
