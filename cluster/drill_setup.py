"""Drill fixtures inside one district node (run by :mod:`cluster.drills` as a subprocess with the node's
environment, like ``manage.py``): ``python -m cluster.drill_setup --loans N``.

Creates once, and reuses afterwards, the MFI ``drill-ops`` with an admin and two loan officers, and ``N`` disbursed
loans the load generator repays through the HTTP API. Everything goes through the node's own services (audit rows,
journal entries, the ring's stacking guard), exactly like real work. Prints one JSON line: the loan ids, the MFI's
database id and a bearer token for the officer.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from datetime import date, timedelta
from decimal import Decimal

MFI_CODE = "drill-ops"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--loans", type=int, default=4)
    ap.add_argument("--review-loans", type=int, default=0,
                    help="also make this many new applications under review (approved by the drill's load)")
    args = ap.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.conf import settings
    from node.users.tokens import access_token_for

    from node.borrowers.models import ConsentText
    from node.borrowers.services import (
        RegistrationData,
        borrower_register,
        consent_give,
    )
    from node.loans import services as L
    from node.loans.models import Loan, LoanProduct
    from node.loans.products import product_create
    from node.mfis.models import Mfi
    from node.users.models import Role, User

    mfi, _ = Mfi.objects.get_or_create(code=MFI_CODE, defaults={
        "name": "Drill Operations", "home_district": settings.DISTRICT.code, "interest_rate_cap": Decimal(60),
        "dual_control_threshold": Decimal(100000)})

    def user(name: str, role: str) -> User:
        u, _ = User.objects.get_or_create(username=f"{MFI_CODE}-{settings.DISTRICT.code}-{name}",
                                          defaults={"role": role, "mfi": mfi})
        return u

    admin, officer, officer2 = user("admin", Role.MFI_ADMIN), user("officer", Role.LOAN_OFFICER), user(
        "officer2", Role.LOAN_OFFICER)
    product = LoanProduct.objects.filter(mfi=mfi, code="drill-24").first() or product_create(actor=admin, mfi=mfi, data={
        "code": "drill-24", "name": "Drill 24 months", "annual_interest_rate": Decimal("30.000000"),
        "interest_method": "DECLINING_BALANCE", "amortization": "EQUAL_INSTALLMENTS", "repayment_frequency": "MONTHS",
        "min_principal": Decimal("500.00"), "max_principal": Decimal("50000.00"), "min_repayments": 3,
        "max_repayments": 36, "currency": settings.DISTRICT.currency, "currency_decimals": 2,
        "currency_in_multiples_of": 0, "repayment_every": 1, "interest_calculation_period": "SAME_AS_REPAYMENT_PERIOD",
        "schedule_type": "CUMULATIVE", "days_in_year": "ACTUAL", "days_in_month": "ACTUAL",
        "grace_on_principal_periods": 0, "grace_on_interest_payment_periods": 0,
        "grace_on_interest_charged_periods": 0, "fees": []})
    if not ConsentText.objects.filter(version=1, language="en").exists():
        ConsentText.objects.create(version=1, language="en", title="Consent v1", body="Consent.")
    loans = list(Loan.objects.filter(mfi=mfi, status="active").order_by("pk").values_list("pk", flat=True))
    while len(loans) < args.loans:
        nid = str(uuid.uuid4().int)[:11]
        b = borrower_register(actor=officer, channel="branch", mfi=mfi, data=RegistrationData(
            national_id=nid, first_name="Drill", last_name="Borrower", date_of_birth=date(1990, 1, 1),
            phone="+2665" + nid[:7], address=settings.DISTRICT.name, residence_district=settings.DISTRICT.name,
            employer="", employee_number="", monthly_income=Decimal("50000.00"), next_of_kin_name="K",
            next_of_kin_phone="+26662000001", next_of_kin_relationship="sibling"))
        consent_give(actor=officer, borrower=b, version=1, language="en", channel="branch")
        for _ in range(min(3, args.loans - len(loans))):  # the stacking guard allows 3 loans per borrower
            loan = L.loan_apply(actor=officer, borrower=b, product=product, principal=Decimal("20000.00"),
                                number_of_repayments=24, expected_disbursement_date=date.today())
            loan = L.loan_submit(actor=officer, loan=loan)
            loan = L.loan_start_review(actor=officer, loan=loan)
            loan = L.loan_approve(actor=officer, loan=loan)
            loan = L.loan_initiate_disbursement(actor=officer2, loan=loan, channel="cash", reference="drill")
            loan = L.loan_confirm_disbursement(actor=admin, loan=loan,
                                               disbursement_date=date.today() - timedelta(days=10))
            loans.append(loan.pk)
    review = []
    while len(review) < args.review_loans:  # two small applications per new borrower, within the stacking policy
        nid = str(uuid.uuid4().int)[:11]
        b = borrower_register(actor=officer, channel="branch", mfi=mfi, data=RegistrationData(
            national_id=nid, first_name="Drill", last_name="Applicant", date_of_birth=date(1991, 1, 1),
            phone="+2665" + nid[:7], address=settings.DISTRICT.name, residence_district=settings.DISTRICT.name,
            employer="", employee_number="", monthly_income=Decimal("50000.00"), next_of_kin_name="K",
            next_of_kin_phone="+26662000001", next_of_kin_relationship="sibling"))
        consent_give(actor=officer, borrower=b, version=1, language="en", channel="branch")
        for _ in range(min(2, args.review_loans - len(review))):
            loan = L.loan_apply(actor=officer, borrower=b, product=product, principal=Decimal("1000.00"),
                                number_of_repayments=6, expected_disbursement_date=date.today())
            loan = L.loan_submit(actor=officer, loan=loan)
            loan = L.loan_start_review(actor=officer, loan=loan)
            review.append(loan.pk)
    print(json.dumps({"mfi_id": mfi.pk, "mfi": mfi.code, "loans": loans[:args.loans], "review_loans": review,
                      "token": access_token_for(officer), "url": settings.DISTRICT.public_url}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
