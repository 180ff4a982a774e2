"""Close of business over many active loans on one node (issue target: 100,000 loans in under 60 s).

    .venv/bin/python bench/cob.py --loans 100000                 (demo cluster's Maseru PostgreSQL)
    .venv/bin/python bench/cob.py --profile test --loans 20000   (a kept test cluster)

Uses its own database (``letsema_bench_cob`` on the district's PostgreSQL; created and migrated on first use) and
loads, once, N active 12-month loans disbursed over six months, with installments paid so that 70 % are current and
the rest 1-30, 31-60 and 90+ days late, on a product with a flat overdue penalty. Each run resets the arrears
state, then times close of business for 2026-09-30 (first close: every late loan changes bucket, penalties are
charged, credit events go to the outbox) and for the next day (steady state). Prints a table and the machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import uuid
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
BENCH_DB = "letsema_bench_cob"
DAY = date(2026, 9, 30)


def setup_django(profile: str) -> None:
    os.environ["LETSEMA_CONFIG__postgres__name"] = f'"{BENCH_DB}"'
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.test_settings" if profile == "test" else "config.settings"
    import django

    django.setup()


def ensure_database() -> None:
    import psycopg2
    from django.conf import settings

    db = settings.DATABASES["default"]
    conn = psycopg2.connect(host=db["HOST"], port=db["PORT"], user=db["USER"], password=db["PASSWORD"], dbname="postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (BENCH_DB,))
        if cur.fetchone() is None:
            cur.execute(f'CREATE DATABASE "{BENCH_DB}"')
    conn.close()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def load(n: int) -> None:
    from django.db import connection

    from node.borrowers.models import Borrower
    from node.loans.models import Loan, LoanProduct
    from node.mfis.models import Mfi
    from node.users.models import Role, User

    if Loan.objects.filter(mfi__code="bench").count() >= n:
        print(f"{BENCH_DB} already holds {n:,} bench loans")
        return
    t0 = time.monotonic()
    mfi, _ = Mfi.objects.get_or_create(code="bench", defaults={"name": "Bench MFI", "home_district": "maseru"})
    user, _ = User.objects.get_or_create(username="bench-admin", defaults={"role": Role.MFI_ADMIN, "mfi": mfi})
    product, _ = LoanProduct.objects.get_or_create(mfi=mfi, code="bench-12", defaults=dict(
        name="Bench 12 months", annual_interest_rate=Decimal("36"), interest_method="FLAT",
        amortization="EQUAL_INSTALLMENTS", repayment_frequency="MONTHS", min_principal=Decimal("500"),
        max_principal=Decimal("50000"), min_repayments=1, max_repayments=36,
        overdue_penalty={"calculation": "FLAT", "amount": "25.00", "grace_days": 3}))
    borrowers = list(Borrower.objects.filter(national_id__startswith="99bench"))
    if len(borrowers) < 1000:
        Borrower.objects.bulk_create([Borrower(
            national_id=f"99bench{i:06d}", borrower_key=f"v1:{uuid.uuid4().hex}{uuid.uuid4().hex}", first_name="B",
            last_name=f"{i}", date_of_birth=date(1990, 1, 1), phone=f"+2665{i:07d}", address="Maseru",
            residence_district="Maseru", monthly_income=Decimal("6000.00"), next_of_kin_name="K",
            next_of_kin_phone="+26662000001", next_of_kin_relationship="sibling", registration_channel="branch",
            ring_claim_id=uuid.uuid4()) for i in range(len(borrowers), 1000)], batch_size=1000)
        borrowers = list(Borrower.objects.filter(national_id__startswith="99bench"))
    rows = [{"number": k, "due_date": "2026-01-01", "days": 30, "total": "600.00"} for k in range(1, 13)]
    schedule = {"installments": rows}
    existing = Loan.objects.filter(mfi=mfi).count()
    batch = []
    now = time.time()
    from django.utils import timezone

    stamp = timezone.now()
    for i in range(existing, n):
        disbursed = date(2026, 1, 1) + timedelta(days=i % 180)
        batch.append(Loan(mfi=mfi, product=product, borrower=borrowers[i % len(borrowers)], reference=f"BENCH-{i:07d}",
                          status="active", principal=Decimal("6000.00"), number_of_repayments=12,
                          annual_interest_rate=Decimal("36"), expected_disbursement_date=disbursed, created_by=user,
                          approved_by=user, approved_at=stamp, disbursed_by=user, disbursed_at=stamp,
                          disbursement_date=disbursed, schedule=schedule))
        if len(batch) == 5000:
            Loan.objects.bulk_create(batch)
            batch = []
            sys.stderr.write(f"\rloans {i + 1:,}/{n:,} ({(i + 1 - existing) / (time.time() - now):,.0f}/s)")
    if batch:
        Loan.objects.bulk_create(batch)
    sys.stderr.write("\ninstallments ...\n")
    with connection.cursor() as cur:
        cur.execute("DELETE FROM loans_loaninstallment i USING loans_loan l WHERE l.id = i.loan_id AND l.mfi_id = %s",
                    [mfi.pk])
        # 70 % pay everything due before DAY; the rest stop paying 20, 45 or 100 days before it
        cur.execute("""
            INSERT INTO loans_loaninstallment (loan_id, number, due_date, principal, interest, fees, penalties,
                                               principal_paid, interest_paid, fees_paid, penalties_paid)
            SELECT l.id, g.n, (l.disbursement_date + make_interval(months => g.n))::date, 500.00, 180.00, 0, 0,
                   CASE WHEN paid THEN 500.00 ELSE 0 END, CASE WHEN paid THEN 180.00 ELSE 0 END, 0, 0
            FROM loans_loan l CROSS JOIN generate_series(1, 12) AS g(n)
            CROSS JOIN LATERAL (SELECT (l.disbursement_date + make_interval(months => g.n))::date
                < %s::date - (CASE l.id %% 10 WHEN 7 THEN 20 WHEN 8 THEN 45 WHEN 9 THEN 100 ELSE 0 END) AS paid) p
            WHERE l.mfi_id = %s
            ORDER BY l.id, g.n  -- a loan's installments are written together, as a disbursement writes them
        """, [DAY, mfi.pk])
    print(f"loaded {n:,} loans with 12 installments each in {time.monotonic() - t0:.0f}s")


def reset() -> None:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("DELETE FROM cob_cobrun; DELETE FROM cob_businessdate; DELETE FROM replication_outboxevent")
        cur.execute("UPDATE loans_loan SET days_past_due = 0, delinquency_bucket = 'current', overdue_since = NULL, "
                    "status = 'active', closed_at = NULL WHERE reference LIKE 'BENCH-%%'")
        cur.execute("UPDATE loans_loaninstallment SET penalties = 0, penalty_applied_on = NULL WHERE penalties <> 0 "
                    "OR penalty_applied_on IS NOT NULL")
        cur.execute("VACUUM ANALYZE loans_loan")
        cur.execute("VACUUM ANALYZE loans_loaninstallment")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", choices=["demo", "test"], default="demo")
    ap.add_argument("--loans", type=int, default=100_000)
    ap.add_argument("--chunk-size", type=int, default=2000)
    args = ap.parse_args()
    setup_django(args.profile)
    ensure_database()
    load(args.loans)
    from django.db import connection

    connection.autocommit = True
    reset()

    from node.cob.services import cob_close
    from replication.models import OutboxEvent

    results = []
    for day in (DAY, DAY + timedelta(days=1)):
        t0 = time.perf_counter()
        r = cob_close(through=day, chunk_size=args.chunk_size)
        secs = time.perf_counter() - t0
        assert r.completed
        results.append((day, r.loans, secs, r.summary))
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())
    mem = int(next(ln.split()[1] for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal"))) // 1024**2
    print(f"\nmachine: {os.cpu_count()} cores ({cpu}), {mem} GiB RAM; PostgreSQL 15 local; chunk {args.chunk_size} loans")
    print(f"{'business day':14} {'loans':>8} {'seconds':>8} {'loans/s':>9} {'penalties':>10} {'bucket moves':>13} {'events':>7}")
    for day, loans, secs, s in results:
        moves = sum(s["bucket_moves"].values())
        print(f"{day.isoformat():14} {loans:>8,} {secs:>8.1f} {loans / secs:>9,.0f} {s['penalties_applied']:>10,} "
              f"{moves:>13,} {s['events']:>7,}")
    print(f"outbox rows written: {OutboxEvent.objects.count():,}; by bucket after: {results[-1][3].get('by_bucket')}")


if __name__ == "__main__":
    main()
