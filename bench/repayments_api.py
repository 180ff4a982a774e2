"""Repayment posting through the HTTP API of one node (issue: >= 500/s on one node, p99 < 50 ms at 20 clients).

    .venv/bin/python bench/repayments_api.py                      (demo cluster, Maseru node)
    .venv/bin/python bench/repayments_api.py --profile test       (a kept test cluster)

Set-up runs in-process against the node's own database through the services (an MFI, staff, borrowers registered
in the ring, and disbursed loans — the stacking guard allows 3 per borrower). The measurement is pure HTTP:
``--clients`` threads, each with its own keep-alive session and its own loans, POST
``/api/v1/loans/{id}/repayments`` with a fresh ``Idempotency-Key`` as fast as they can for ``--seconds``.
Every request goes through the whole path: JWT, idempotency record, row locks, allocation, journal entry (with its
balance trigger), audit row (hash chain), outbox event. The client runs on the same 2 cores as the server.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
import uuid
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from common import machine, pct  # noqa: E402  (bench/common.py, next to this script)


def setup(profile: str, loans_wanted: int):
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.test_settings" if profile == "test" else "config.settings"
    os.environ.setdefault("LETSEMA_DISTRICT", "maseru")
    import django

    django.setup()
    from django.conf import settings
    from rest_framework_simplejwt.tokens import AccessToken

    from node.borrowers.models import ConsentText
    from node.borrowers.services import RegistrationData, borrower_register, consent_give
    from node.loans import services as L
    from node.loans.models import Loan, LoanProduct
    from node.loans.products import product_create
    from node.mfis.models import Mfi
    from node.users.models import Role, User

    mfi, _ = Mfi.objects.get_or_create(code="bench-repay", defaults={
        "name": "Bench Repayments", "home_district": settings.DISTRICT.code, "interest_rate_cap": Decimal("60"),
        "dual_control_threshold": Decimal("100000")})

    def user(name, role):
        u, _ = User.objects.get_or_create(username=f"bench-repay-{name}", defaults={"role": role, "mfi": mfi})
        return u

    admin, officer, officer2 = user("admin", Role.MFI_ADMIN), user("officer", Role.LOAN_OFFICER), user("officer2", Role.LOAN_OFFICER)
    product = LoanProduct.objects.filter(mfi=mfi, code="bench-24").first() or product_create(actor=admin, mfi=mfi, data={
        "code": "bench-24", "name": "Bench 24 months", "annual_interest_rate": Decimal("30.000000"),
        "interest_method": "DECLINING_BALANCE", "amortization": "EQUAL_INSTALLMENTS", "repayment_frequency": "MONTHS",
        "min_principal": Decimal("500.00"), "max_principal": Decimal("50000.00"), "min_repayments": 3, "max_repayments": 36,
        "currency": "LSL", "currency_decimals": 2, "currency_in_multiples_of": 0, "repayment_every": 1,
        "interest_calculation_period": "SAME_AS_REPAYMENT_PERIOD", "schedule_type": "CUMULATIVE",
        "days_in_year": "ACTUAL", "days_in_month": "ACTUAL", "grace_on_principal_periods": 0,
        "grace_on_interest_payment_periods": 0, "grace_on_interest_charged_periods": 0, "fees": []})
    loans = list(Loan.objects.filter(mfi=mfi, status="active").values_list("pk", flat=True))
    if not ConsentText.objects.filter(version=1, language="en").exists():
        ConsentText.objects.create(version=1, language="en", title="Consent v1", body="Consent.")
    made = 0
    while len(loans) < loans_wanted:
        nid = str(uuid.uuid4().int)[:11]
        b = borrower_register(actor=officer, channel="branch", mfi=mfi, data=RegistrationData(
            national_id=nid, first_name="Bench", last_name="Borrower", date_of_birth=date(1990, 1, 1),
            phone="+2665" + nid[:7], address="Maseru", residence_district="Maseru", employer="", employee_number="",
            monthly_income=Decimal("50000.00"), next_of_kin_name="K", next_of_kin_phone="+26662000001",
            next_of_kin_relationship="sibling"))
        consent_give(actor=officer, borrower=b, version=1, language="en", channel="branch")
        for _ in range(3):
            loan = L.loan_apply(actor=officer, borrower=b, product=product, principal=Decimal("20000.00"),
                                number_of_repayments=24, expected_disbursement_date=date.today())
            loan = L.loan_submit(actor=officer, loan=loan)
            loan = L.loan_start_review(actor=officer, loan=loan)
            loan = L.loan_approve(actor=officer, loan=loan)
            loan = L.loan_initiate_disbursement(actor=officer2, loan=loan, channel="cash", reference="bench")
            loan = L.loan_confirm_disbursement(actor=admin, loan=loan, disbursement_date=date.today() - timedelta(days=10))
            loans.append(loan.pk)
            made += 1
        sys.stderr.write(f"\rset-up: {len(loans)}/{loans_wanted} disbursed loans")
    if made:
        sys.stderr.write("\n")
    return loans[:loans_wanted], str(AccessToken.for_user(officer)), settings



def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", choices=["demo", "test"], default="demo")
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--loans-per-client", type=int, default=3)
    args = ap.parse_args()
    loans, token, settings = setup(args.profile, args.clients * args.loans_per_client)
    base = settings.DISTRICT.public_url
    lat: list[float] = []
    errors: dict[int, int] = {}
    samples: list[str] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + 3 + args.seconds  # 3 s warm-up, not counted
    count_from = time.monotonic() + 3

    def client(c: int) -> None:
        sess = requests.Session()
        sess.headers["Authorization"] = f"Bearer {token}"
        mine = loans[c * args.loans_per_client:(c + 1) * args.loans_per_client]
        i = 0
        while time.monotonic() < stop_at:
            lid = mine[i % len(mine)]
            i += 1
            t0 = time.perf_counter()
            r = sess.post(f"{base}/api/v1/loans/{lid}/repayments", json={
                "amount": "1.00", "payment_date": date.today().isoformat(), "channel": "cash"},
                headers={"Idempotency-Key": uuid.uuid4().hex}, timeout=30)
            ms = (time.perf_counter() - t0) * 1000
            if time.monotonic() < count_from:
                continue
            with lock:
                if r.status_code == 201:
                    lat.append(ms)
                else:
                    errors[r.status_code] = errors.get(r.status_code, 0) + 1
                    if len(samples) < 3:
                        samples.append(r.text[:300])

    threads = [threading.Thread(target=client, args=(c,)) for c in range(args.clients)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    if not lat:
        raise SystemExit(f"no repayment was posted: {errors} {samples}")
    print(f"\nmachine: {machine()}; node {base} (gunicorn, PostgreSQL 15 local); "
          f"client threads on the same machine")
    print(f"{'clients':>7} {'seconds':>7} {'posted':>7} {'per s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'errors':>7}")
    print(f"{args.clients:>7} {args.seconds:>7} {len(lat):>7} {len(lat) / args.seconds:>7.0f} {statistics.median(lat):>7.1f} "
          f"{pct(lat, 95):>7.1f} {pct(lat, 99):>7.1f} {sum(errors.values()):>7} {errors or ''}")


if __name__ == "__main__":
    main()
