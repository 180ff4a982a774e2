"""Load the demo data set for this district: its MFIs (from the district config), staff of every role,
a few borrowers with web accounts (no loans: they are for trying the journey), and a small loan book per MFI with
months of history — some loans repaid on time, some behind, some never repaid — closed by close of business
through the last month end and through yesterday, so the reports (PAR, aging, the regulatory return) have
something to show. Idempotent: re-running updates nothing that already exists."""

from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

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
        for index, m in enumerate(settings.DISTRICT.mfis):
            with transaction.atomic():  # one MFI's book at a time: a failure leaves no half-made book behind
                self._demo_book(settings.DISTRICT, index, m.code, password)
        self._close_business()  # its own transactions, as the nightly job

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

        for i, m in enumerate(d.mfis, 1):
            paybill = f"{d.port}{i:02d}"  # a demo business number ("Pay Bill", docs/mobile-money.md)
            mfi, _ = Mfi.objects.get_or_create(
                code=m.code,
                defaults={"name": m.name, "home_district": d.code, "registration_number": f"DEMO-{m.code.upper()}",
                          "interest_rate_cap": Decimal("60"), "paybill_number": paybill},
            )
            if mfi.paybill_number is None and not Mfi.objects.filter(paybill_number=paybill).exists():
                Mfi.objects.filter(pk=mfi.pk).update(paybill_number=paybill)
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

    # (principal, repayments, paid out this many days ago, installments repaid: "all" due ones, a number, or 0)
    BOOK = [(6000, 12, 200, "all"), (8000, 12, 160, "all"), (4000, 6, 130, "all"), (10000, 24, 100, "all"),
            (5000, 12, 75, "all"), (7000, 12, 45, "all"), (3000, 6, 20, "all"), (9000, 12, 250, 2),
            (6000, 12, 140, 2), (4500, 6, 110, 1), (5500, 12, 95, 0), (3500, 6, 70, 0)]

    def _demo_book(self, d, index: int, mfi_code: str, password: str) -> None:
        """Twelve loans of the MFI's salary product, each to its own borrower (registered at the branch, consent
        given), paid out in the past and repaid installment by installment on the due dates as far as the row
        says: the earliest ones are closed by now, the ones behind fall into the delinquency buckets."""
        from node.borrowers.services import RegistrationData, borrower_register, consent_give
        from node.loans import services as L
        from node.loans.models import Loan, LoanProduct
        from node.repayments.services import repayment_post

        officer = User.objects.get(username=f"{mfi_code}.officer")
        admin = User.objects.get(username=f"{mfi_code}.admin")
        if Loan.objects.filter(mfi=officer.mfi, purpose="Demo book").exists():
            return
        product = LoanProduct.objects.get(mfi=officer.mfi, code="salary")
        today = timezone.localdate()  # the business day, as close of business reckons it
        prefix = f"{sum(map(ord, d.code)) % 90 + 10}"
        for i, (principal, n, days_ago, repaid) in enumerate(self.BOOK, 1):
            data = RegistrationData(
                national_id=f"8{prefix}{index % 10}{i:07d}", first_name="Demo", last_name=f"Client {index + 1}-{i}",
                date_of_birth=date(1975 + i, i, 1 + i), phone=f"+2665{prefix}{index % 10}{i:03d}0"[:12],
                address="Demo village", residence_district=d.name if d.name in LESOTHO_DISTRICTS else "Maseru",
                employer="Demo employer", employee_number=f"B-{index}-{i}", monthly_income=Decimal("15000.00"),
                next_of_kin_name="Demo Kin", next_of_kin_phone=f"+2666{prefix}{index % 10}{i:03d}0"[:12],
                next_of_kin_relationship="sibling")
            borrower = borrower_register(actor=officer, data=data, channel="branch", mfi=officer.mfi)
            consent_give(actor=officer, borrower=borrower, version=1, language="en", channel="branch")
            paid_out = today - timedelta(days=days_ago)
            loan = L.loan_apply(actor=officer, borrower=borrower, product=product, principal=Decimal(principal),
                                number_of_repayments=n, expected_disbursement_date=paid_out, purpose="Demo book")
            for step in (L.loan_submit, L.loan_start_review, L.loan_approve):
                loan = step(actor=officer, loan=loan)
            loan = L.loan_initiate_disbursement(actor=officer, loan=loan, channel="bank_transfer",
                                                  reference=f"DEMO-{i}")
            token, _ = L.step_up_grant(user=admin, password=password)  # the checker's step-up, as on the web
            loan = L.loan_confirm_disbursement(actor=admin, loan=loan, disbursement_date=paid_out, step_up_token=token)
            due = [x for x in loan.installments.order_by("number") if x.number >= 1 and x.due_date < today]
            for inst in due if repaid == "all" else due[:repaid]:
                repayment_post(actor=officer, loan=loan, amount=inst.principal + inst.interest + inst.fees,
                               payment_date=inst.due_date, channel="payroll", reference=f"DEMO-{i}-{inst.number}")
                loan.refresh_from_db()
        self.stdout.write(f"demo loan book for {mfi_code}: {len(self.BOOK)} loans")

    def _close_business(self) -> None:
        """Close of business as the nightly job would have: on a node that has never closed a day, first through
        the last month end (which keeps that month's classification for the regulatory return), then through
        yesterday. Days already closed are not closed again."""
        from node.cob.services import closed_through, cob_close

        today = timezone.localdate()  # the business day, as close of business reckons it
        if closed_through() is None:
            r = cob_close(through=today.replace(day=1) - timedelta(days=1), actor_name="load_demo")
            self.stdout.write(f"close of business through {r.business_date}: {r.loans} active loans")
        r = cob_close(actor_name="load_demo")
        if not r.already_closed:
            self.stdout.write(f"close of business through {r.business_date}: {r.loans} active loans")
