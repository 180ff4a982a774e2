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
import random
import statistics
import sys
import threading
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from common import machine, pct  # noqa: E402  (bench/common.py, next to this script)
from fixtures import bench_mfi, consented_borrower, django_setup, product, progress, staff  # noqa: E402
STEPS = ("apply", "submit", "review", "credit_report", "approve")
WARMUP = 3  # applications before the measurement


def setup(profile: str, borrowers_wanted: int, users: int):
    django_setup(profile)
    from django.conf import settings
    from node.users.tokens import access_token_for

    from node.users.models import Role

    mfi = bench_mfi("bench-apply", "Bench Applications", officer_approval_limit=None)
    admin = staff(mfi, "bench-apply-admin", Role.MFI_ADMIN)
    officer = staff(mfi, "bench-apply-officer", Role.LOAN_OFFICER)
    prod = product(admin, mfi, "bench-12", "Bench 12 months")
    # fresh borrowers only: one with a held reservation from an earlier run would be refused by the stacking limit
    made = []
    while len(made) < borrowers_wanted:
        made.append(consented_borrower(officer, mfi, last_name="Applicant", income=Decimal("40000.00")).pk)
        progress("set-up: borrowers", len(made), borrowers_wanted)
    # one loan officer per simulated user: the node allows each staff member LETSEMA_CREDIT_REPORTS_PER_HOUR
    # credit look-ups an hour (docs/auth.md), as a real branch's officers each have their own account
    officers = [officer] + [staff(mfi, f"bench-apply-officer-{u}", Role.LOAN_OFFICER) for u in range(1, users)]
    return made, prod.pk, [access_token_for(o) for o in officers], settings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", choices=["demo", "test"], default="demo")
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--applications", type=int, default=4, help="applications per user (each for a new borrower)")
    ap.add_argument("--think", type=float, default=1.0, help="mean pause between steps in seconds (0: none)")
    args = ap.parse_args()
    borrowers, product_id, tokens, settings = setup(args.profile, args.users * args.applications + WARMUP, args.users)
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
        sess.headers["Authorization"] = f"Bearer {tokens[u]}"
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
    warm.headers["Authorization"] = f"Bearer {tokens[0]}"
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
