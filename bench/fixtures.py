"""Set-up shared by the benchmark scripts: Django for one node of a running cluster, and an MFI with staff, a
product, borrowers and disbursed loans, all made through the node's own services (audit rows, journal entries,
the ring's duplicate check and stacking guard) exactly as real work makes them. Everything is created once per
code and reused by later runs."""

from __future__ import annotations

import os
import sys
import uuid
from datetime import date, timedelta
from decimal import Decimal


def django_setup(profile: str, district: str = "maseru") -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.test_settings" if profile == "test" else "config.settings"
    os.environ.setdefault("LETSEMA_DISTRICT", district)
    import django

    django.setup()


def bench_mfi(code: str, name: str, **extra):
    from django.conf import settings

    from node.mfis.models import Mfi

    mfi, _ = Mfi.objects.get_or_create(code=code, defaults={
        "name": name, "home_district": settings.DISTRICT.code, "interest_rate_cap": Decimal(60),
        "dual_control_threshold": Decimal(100000), **extra})
    return mfi


def staff(mfi, username: str, role: str, password: str | None = None):
    """A user of ``mfi`` (``None`` for network roles); ``password`` set when given (for web log-ins)."""
    from node.users.models import User

    u, created = User.objects.get_or_create(username=username, defaults={"role": role, "mfi": mfi})
    if password and (created or not u.check_password(password)):
        u.set_password(password)
        u.save(update_fields=["password"])
    return u


def product(admin, mfi, code: str, name: str, max_repayments: int = 36):
    from node.loans.models import LoanProduct
    from node.loans.products import product_create

    return LoanProduct.objects.filter(mfi=mfi, code=code).first() or product_create(actor=admin, mfi=mfi, data={
        "code": code, "name": name, "annual_interest_rate": Decimal("30.000000"),
        "interest_method": "DECLINING_BALANCE", "amortization": "EQUAL_INSTALLMENTS", "repayment_frequency": "MONTHS",
        "min_principal": Decimal("500.00"), "max_principal": Decimal("50000.00"), "min_repayments": 3,
        "max_repayments": max_repayments, "currency": "LSL", "currency_decimals": 2, "currency_in_multiples_of": 0,
        "repayment_every": 1, "interest_calculation_period": "SAME_AS_REPAYMENT_PERIOD", "schedule_type": "CUMULATIVE",
        "days_in_year": "ACTUAL", "days_in_month": "ACTUAL", "grace_on_principal_periods": 0,
        "grace_on_interest_payment_periods": 0, "grace_on_interest_charged_periods": 0, "fees": []})


def consented_borrower(officer, mfi, *, last_name: str = "Borrower", income: Decimal = Decimal("50000.00"),
                       account=None):
    """A new borrower registered at ``mfi``'s branch (a fresh national ID: the ring claim succeeds), with consent;
    linked to the web ``account`` when one is given."""
    from node.borrowers.models import Borrower, ConsentText
    from node.borrowers.services import RegistrationData, borrower_register, consent_give

    if not ConsentText.objects.filter(version=1, language="en").exists():
        ConsentText.objects.create(version=1, language="en", title="Consent v1", body="Consent.")
    nid = str(uuid.uuid4().int)[:11]
    b = borrower_register(actor=officer, channel="branch", mfi=mfi, data=RegistrationData(
        national_id=nid, first_name="Bench", last_name=last_name, date_of_birth=date(1990, 1, 1),
        phone="+2665" + nid[:7], address="Maseru", residence_district="Maseru", employer="", employee_number="",
        monthly_income=income, next_of_kin_name="K", next_of_kin_phone="+26662000001",
        next_of_kin_relationship="sibling"))
    consent_give(actor=officer, borrower=b, version=1, language="en", channel="branch")
    if account is not None:
        Borrower.objects.filter(pk=b.pk).update(user=account)
        b.refresh_from_db()
    return b


def disbursed_loan(*, officer, officer2, admin, borrower, product, principal=Decimal("20000.00"), n: int = 24,
                   days_ago: int = 10):
    """A loan taken through apply → submit → review → approve → initiate (``officer2``) → confirm (``admin``),
    paid out ``days_ago`` days before today."""
    from node.loans import services as L

    loan = L.loan_apply(actor=officer, borrower=borrower, product=product, principal=principal,
                        number_of_repayments=n, expected_disbursement_date=date.today())
    loan = L.loan_submit(actor=officer, loan=loan)
    loan = L.loan_start_review(actor=officer, loan=loan)
    loan = L.loan_approve(actor=officer, loan=loan)
    loan = L.loan_initiate_disbursement(actor=officer2, loan=loan, channel="cash", reference="bench")
    return L.loan_confirm_disbursement(actor=admin, loan=loan,
                                       disbursement_date=date.today() - timedelta(days=days_ago))


def progress(label: str, done: int, total: int) -> None:
    sys.stderr.write(f"\r{label}: {done}/{total}")
    if done >= total:
        sys.stderr.write("\n")
