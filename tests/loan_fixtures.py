"""Shared set-up for loan tests: an MFI with a product, staff of each role and a borrower."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal

from rest_framework.test import APIClient

from node.borrowers.models import Borrower, ConsentText
from node.mfis.models import Mfi
from node.users.models import Role, User
from tests.factories import PASSWORD, client_for, make_user
from tests.borrower_factory import payload

PRODUCT = {
    "code": "salary-12", "name": "Salary loan, 12 months", "annual_interest_rate": "36",
    "interest_method": "DECLINING_BALANCE", "amortization": "EQUAL_INSTALLMENTS", "repayment_frequency": "MONTHS",
    "min_principal": "500.00", "max_principal": "50000.00", "min_repayments": 3, "max_repayments": 24,
    "fees": [{"name": "Processing fee", "amount": "2", "calculation": "PERCENT_OF_PRINCIPAL", "charge_time": "DISBURSEMENT"}],
}




@dataclass
class Shop:
    mfi: Mfi
    admin: User
    admin2: User
    officer: User
    officer2: User
    analyst: User
    product_id: int
    borrower: Borrower
    borrower_user: User


def open_shop(code: str = "alpha", *, threshold: str = "20000", officer_limit: str | None = "30000") -> Shop:
    mfi = Mfi.objects.create(code=f"{code}-{uuid.uuid4().hex[:6]}", name=code.title(), home_district="maseru",
                             interest_rate_cap=Decimal("60"), dual_control_threshold=Decimal(threshold),
                             officer_approval_limit=Decimal(officer_limit) if officer_limit else None)
    admin = make_user(Role.MFI_ADMIN, mfi)
    r = client_for(admin).post("/api/v1/products/", PRODUCT, format="json")
    assert r.status_code == 201, r.content
    officer = make_user(Role.LOAN_OFFICER, mfi)
    data = payload(password=PASSWORD)
    reg = APIClient().post("/api/v1/borrowers/register", data, format="json")
    assert reg.status_code == 201, reg.content
    borrower_user = User.objects.get(username=data["phone"])
    # transactional tests run after a flush that empties data-migration rows too: make sure v1 is published
    ConsentText.objects.get_or_create(version=1, language="en", defaults={"title": "Consent v1", "body": "Consent."})
    consent = client_for(borrower_user).post(f"/api/v1/borrowers/{reg.json()['id']}/consents/",
                                             {"version": 1, "language": "en"}, format="json")
    assert consent.status_code == 201, consent.content
    return Shop(mfi=mfi, admin=admin, admin2=make_user(Role.MFI_ADMIN, mfi), officer=officer,
                officer2=make_user(Role.LOAN_OFFICER, mfi), analyst=make_user(Role.ANALYST, mfi),
                product_id=r.json()["id"], borrower=Borrower.objects.get(user=borrower_user), borrower_user=borrower_user)


def apply(shop: Shop, principal="10000.00", n=12, date="2026-12-01", borrower_user=None):
    r = client_for(borrower_user or shop.borrower_user).post("/api/v1/loans/", {
        "product": shop.product_id, "principal": principal, "number_of_repayments": n,
        "expected_disbursement_date": date, "purpose": "school fees"}, format="json")
    assert r.status_code == 201, r.content
    return r.json()["id"]


def key() -> str:
    return uuid.uuid4().hex


# --- request helpers shared by the API tests --------------------------------------------------------------------
def err(r, status, code):
    """Assert an error answer: the status and the stable code; returns the body."""
    assert r.status_code == status, (r.status_code, r.content)
    assert r.json()["code"] == code, r.json()
    return r.json()


def post(user, path, body=None, idem=None, **headers):
    """POST JSON as ``user``; ``idem`` is the Idempotency-Key, ``headers`` extra headers (``X_Step_Up_Token=...``)."""
    extra = {"HTTP_IDEMPOTENCY_KEY": idem} if idem else {}
    extra.update({f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()})
    return client_for(user).post(path, body or {}, format="json", **extra)


def to_approved(shop, lid, approver=None, borrower_user=None):
    assert post(borrower_user or shop.borrower_user, f"/api/v1/loans/{lid}/submit").status_code == 200
    assert post(shop.officer, f"/api/v1/loans/{lid}/review").status_code == 200
    r = post(approver or shop.officer, f"/api/v1/loans/{lid}/approve")
    assert r.status_code == 200, r.content
    return r


def disbursed(shop, principal="1000.00", n=3, on="2026-01-01", *, expected="2026-12-01", borrower_user=None) -> int:
    """A loan of ``shop``'s product applied for (expected disbursement ``expected``) by ``borrower_user`` (default the
    shop's borrower), approved by the officer, initiated by the second officer and confirmed by the admin on ``on``."""
    lid = apply(shop, principal=principal, n=n, date=expected, borrower_user=borrower_user)
    to_approved(shop, lid, borrower_user=borrower_user)
    assert post(shop.officer2, f"/api/v1/loans/{lid}/disbursement/initiate", {"channel": "cash"},
                idem=key()).status_code == 200
    r = post(shop.admin, f"/api/v1/loans/{lid}/disbursement/confirm", {"disbursement_date": on}, idem=key())
    assert r.status_code == 200 and r.json()["status"] == "active", r.content
    return lid
