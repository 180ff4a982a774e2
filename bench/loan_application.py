"""A loan application through the HTTP API of one node, including the credit report and the stacking reservation
(issue: p99 under 50 ms at 50 concurrent users on one node).

    .venv/bin/python bench/loan_application.py                      (demo cluster, Maseru node)
    .venv/bin/python bench/loan_application.py --profile test       (a kept test cluster)

Set-up runs in-process through the services: an MFI with a product, a loan officer, and borrowers registered in the
ring with consent. The measurement is pure HTTP: ``--users`` loan officers, each with a keep-alive session, take an
application through its whole path for a new borrower each time:

    POST /loans/ (apply) -> submit -> review -> POST /loans/{id}/credit-report -> POST /loans/{id}/approve

The credit report writes an enquiry to the ring (QUORUM) and reads the borrower's partition; the approval reserves
the new exposure with a lightweight transaction (compare-and-set at SERIAL) on the borrower's partition. Each user
pauses ``--think`` seconds (uniformly 0.5x-1.5x) between steps, as an officer reading the screen does; ``--think 0``
drives the node flat out and so measures throughput and queueing instead. The client shares the node's cores.
"""

from __future__ import annotations

import argparse
import os
import random
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
STEPS = ("apply", "submit", "review", "credit_report", "approve")
WARMUP = 3  # applications before the measurement


def setup(profile: str, borrowers_wanted: int):
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.test_settings" if profile == "test" else "config.settings"
    os.environ.setdefault("LETSEMA_DISTRICT", "maseru")
    import django

    django.setup()
    from django.conf import settings
    from rest_framework_simplejwt.tokens import AccessToken

    from node.borrowers.models import Borrower, ConsentText
    from node.borrowers.services import (
        RegistrationData,
        borrower_register,
        consent_give,
    )
    from node.loans.models import LoanProduct
    from node.loans.products import product_create
    from node.mfis.models import Mfi
    from node.users.models import Role, User

    mfi, _ = Mfi.objects.get_or_create(code="bench-apply", defaults={
        "name": "Bench Applications", "home_district": settings.DISTRICT.code, "interest_rate_cap": Decimal(60),
        "dual_control_threshold": Decimal(100000), "officer_approval_limit": None})
    admin, _ = User.objects.get_or_create(username="bench-apply-admin", defaults={"role": Role.MFI_ADMIN, "mfi": mfi})
    officer, _ = User.objects.get_or_create(username="bench-apply-officer",
                                            defaults={"role": Role.LOAN_OFFICER, "mfi": mfi})
    product = LoanProduct.objects.filter(mfi=mfi, code="bench-12").first() or product_create(actor=admin, mfi=mfi, data={
        "code": "bench-12", "name": "Bench 12 months", "annual_interest_rate": Decimal("30.000000"),
        "interest_method": "DECLINING_BALANCE", "amortization": "EQUAL_INSTALLMENTS", "repayment_frequency": "MONTHS",
        "min_principal": Decimal("500.00"), "max_principal": Decimal("50000.00"), "min_repayments": 3, "max_repayments": 36,
        "currency": "LSL", "currency_decimals": 2, "currency_in_multiples_of": 0, "repayment_every": 1,
        "interest_calculation_period": "SAME_AS_REPAYMENT_PERIOD", "schedule_type": "CUMULATIVE",
        "days_in_year": "ACTUAL", "days_in_month": "ACTUAL", "grace_on_principal_periods": 0,
        "grace_on_interest_payment_periods": 0, "grace_on_interest_charged_periods": 0, "fees": []})
    if not ConsentText.objects.filter(version=1, language="en").exists():
        ConsentText.objects.create(version=1, language="en", title="Consent v1", body="Consent.")
    # fresh borrowers only: one with a held reservation from an earlier run would be refused by the stacking limit
    made = []
    while len(made) < borrowers_wanted:
        nid = str(uuid.uuid4().int)[:11]
        b = borrower_register(actor=officer, channel="branch", mfi=mfi, data=RegistrationData(
            national_id=nid, first_name="Bench", last_name="Applicant", date_of_birth=date(1988, 5, 5),
            phone="+2665" + nid[:7], address="Maseru", residence_district="Maseru", employer="", employee_number="",
            monthly_income=Decimal("40000.00"), next_of_kin_name="K", next_of_kin_phone="+26662000001",
            next_of_kin_relationship="sibling"))
        consent_give(actor=officer, borrower=b, version=1, language="en", channel="branch")
        made.append(b.pk)
        sys.stderr.write(f"\rset-up: {len(made)}/{borrowers_wanted} borrowers")
    sys.stderr.write("\n")
    assert Borrower.objects.filter(pk__in=made).count() == len(made)
    return made, product.pk, str(AccessToken.for_user(officer)), settings



def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", choices=["demo", "test"], default="demo")
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--applications", type=int, default=4, help="applications per user (each for a new borrower)")
    ap.add_argument("--think", type=float, default=1.0, help="mean pause between steps in seconds (0: none)")
    args = ap.parse_args()
    borrowers, product_id, token, settings = setup(args.profile, args.users * args.applications + WARMUP)
    borrowers, extra = borrowers[:-WARMUP], borrowers[-WARMUP:]
    base = settings.DISTRICT.public_url + "/api/v1"
    lat: dict[str, list[float]] = {s: [] for s in STEPS}
    errors: dict[str, int] = {}
    samples: list[str] = []
    both: list[float] = []  # per application: credit report + approval (reservation) request times
    lock = threading.Lock()
    when = (date.today() + timedelta(days=3)).isoformat()

    def step(sess: requests.Session, name: str, url: str, body: dict | None = None, ok: int = 200):
        if args.think:
            time.sleep(random.uniform(0.5, 1.5) * args.think)
        t0 = time.perf_counter()
        r = sess.post(url, json=body or {}, timeout=60)
        ms = (time.perf_counter() - t0) * 1000
        with lock:
            if r.status_code == ok:
                lat[name].append(ms)
            else:
                k = f"{name} {r.status_code}"
                errors[k] = errors.get(k, 0) + 1
                if len(samples) < 3:
                    samples.append(f"{k}: {r.text[:300]}")
        return (r, ms) if r.status_code == ok else (None, ms)

    def user(u: int) -> None:
        sess = requests.Session()
        sess.headers["Authorization"] = f"Bearer {token}"
        if args.think:
            time.sleep(random.uniform(0, args.think))  # users do not all start in the same instant
        for bid in borrowers[u * args.applications:(u + 1) * args.applications]:
            r, _ = step(sess, "apply", f"{base}/loans/", {
                "borrower": bid, "product": product_id, "principal": "6000.00", "number_of_repayments": 12,
                "expected_disbursement_date": when, "purpose": "stock for a shop"}, ok=201)
            if r is None:
                continue
            lid = r.json()["id"]
            spent = 0.0
            for name, path in (("submit", "submit"), ("review", "review"), ("credit_report", "credit-report"),
                               ("approve", "approve")):
                r, ms = step(sess, name, f"{base}/loans/{lid}/{path}")
                if r is None:
                    break
                if name in ("credit_report", "approve"):
                    spent += ms
            else:
                with lock:
                    both.append(spent)

    # warm-up, not counted: the first requests after a reload import and compile lazily (seconds, not ms)
    warm = requests.Session()
    warm.headers["Authorization"] = f"Bearer {token}"
    for bid in extra:
        r = warm.post(f"{base}/loans/", json={"borrower": bid, "product": product_id, "principal": "6000.00",
                                              "number_of_repayments": 12, "expected_disbursement_date": when,
                                              "purpose": "warm-up"}, timeout=60)
        if r.status_code == 201:
            for path in ("submit", "review", "credit-report", "approve"):
                warm.post(f"{base}/loans/{r.json()['id']}/{path}", json={}, timeout=60)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=user, args=(u,)) for u in range(args.users)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    wall = time.perf_counter() - t0
    if not lat["approve"]:
        raise SystemExit(f"no application was approved: {errors} {samples}")
    print(f"\nmachine: {machine()}; node {base} "
          f"(gunicorn, PostgreSQL 15 local, 3-node ring RF 3 on the same cores); client on the same machine")
    print(f"{args.users} users x {args.applications} applications, think time {args.think:g} s; "
          f"{len(lat['approve'])} approved in {wall:.0f} s ({sum(len(v) for v in lat.values()) / wall:.1f} requests/s)")
    print(f"{'step':28} {'n':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name in STEPS:
        xs = lat[name]
        if xs:
            print(f"{name:28} {len(xs):>6} {statistics.median(xs):>8.1f} {pct(xs, 95):>8.1f} {pct(xs, 99):>8.1f} "
                  f"{max(xs):>8.1f}")
    print(f"{'credit report + reservation':28} {len(both):>6} {statistics.median(both):>8.1f} {pct(both, 95):>8.1f} "
          f"{pct(both, 99):>8.1f} {max(both):>8.1f}   (both requests of one application)")
    print(f"errors: {errors or 'none'}")
    for s in samples:
        print("  ", s)


if __name__ == "__main__":
    main()
