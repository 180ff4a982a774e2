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
import statistics
import sys
import threading
import time
import uuid
from datetime import date
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from common import machine, pct  # noqa: E402  (bench/common.py, next to this script)
from fixtures import bench_mfi, consented_borrower, disbursed_loan, django_setup, product, progress, staff  # noqa: E402


def setup(profile: str, loans_wanted: int):
    django_setup(profile)
    from django.conf import settings
    from node.users.tokens import access_token_for

    from node.loans.models import Loan
    from node.users.models import Role

    mfi = bench_mfi("bench-repay", "Bench Repayments")
    admin = staff(mfi, "bench-repay-admin", Role.MFI_ADMIN)
    officer = staff(mfi, "bench-repay-officer", Role.LOAN_OFFICER)
    officer2 = staff(mfi, "bench-repay-officer2", Role.LOAN_OFFICER)
    prod = product(admin, mfi, "bench-24", "Bench 24 months")
    loans = list(Loan.objects.filter(mfi=mfi, status="active").values_list("pk", flat=True))
    while len(loans) < loans_wanted:
        b = consented_borrower(officer, mfi)
        for _ in range(3):  # the stacking guard allows 3 active loans per borrower
            loans.append(disbursed_loan(officer=officer, officer2=officer2, admin=admin, borrower=b, product=prod).pk)
        progress("set-up: disbursed loans", min(len(loans), loans_wanted), loans_wanted)
    return loans[:loans_wanted], access_token_for(officer), settings


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
