"""Reports over a large book on one node (issue target: the PAR report over 1,000,000 loans in under 2 s).

    .venv/bin/python bench/reports_par.py --loans 1000000                 (demo cluster's Maseru PostgreSQL)
    .venv/bin/python bench/reports_par.py --profile test --loans 100000   (a kept test cluster)

Uses close of business's bench database (``letsema_bench_cob``, see bench/cob.py: N active 12-month loans with
12 installments each, 70 % current and the rest 20, 45 or 100 days behind) and sets the days past due close of
business would keep. Then times each report the way the API runs it (``report_query`` + ``report_run``, i.e. the
SQL and the derived columns), ``--runs`` times after one warm-up, and the month-end classification close of
business writes. Prints a table and the machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.common import machine, pct  # noqa: E402
from bench.cob import DAY, ensure_database, load, setup_django  # noqa: E402

CASES = [
    ("par", {"by": "mfi"}), ("par", {"by": "product"}), ("par", {"by": "officer"}), ("par", {"by": "district"}),
    ("aging", {}), ("risk_grades", {}), ("repayment_rate", {"by": "mfi"}),
    ("flows", {"period": "month", "from": "2026-01-01", "to": "2026-09-30"}),
    ("demand_collection", {"period": "month", "from": "2026-07-01", "to": "2026-09-30"}),
    ("regulatory_return", {"month": "2026-09"}),
    ("loans", {"status": "active"}),
]


def arrears() -> None:
    """What close of business would keep on 2026-09-30 for bench/cob.py's installments."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("""
            UPDATE loans_loan l SET days_past_due = d.dpd, overdue_since = d.due,
                   delinquency_bucket = CASE WHEN d.dpd >= 91 THEN '90+' WHEN d.dpd >= 61 THEN '61-90'
                       WHEN d.dpd >= 31 THEN '31-60' WHEN d.dpd >= 1 THEN '1-30' ELSE 'current' END
            FROM (SELECT l2.id, o.due, COALESCE(%s::date - o.due, 0) AS dpd FROM loans_loan l2
                  LEFT JOIN (SELECT loan_id, MIN(due_date) AS due FROM loans_loaninstallment
                             WHERE number >= 1 AND due_date < %s AND principal_paid < principal GROUP BY loan_id) o
                         ON o.loan_id = l2.id
                  WHERE l2.reference LIKE 'BENCH-%%') d
            WHERE l.id = d.id AND l.days_past_due IS DISTINCT FROM d.dpd""", [DAY, DAY])
        cur.execute("UPDATE loans_loan SET risk_grade = (ARRAY['A','B','C','D','E'])[1 + id %% 5] "
                    "WHERE reference LIKE 'BENCH-%%' AND risk_grade = ''", [])
        cur.execute("VACUUM (ANALYZE) loans_loan")  # as autovacuum would have: index-only scans need it
        cur.execute("ANALYZE loans_loaninstallment")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", choices=["demo", "test"], default="demo")
    ap.add_argument("--loans", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    setup_django(args.profile)
    ensure_database()
    load(args.loans)
    from django.db import connection

    connection.autocommit = True
    t0 = time.perf_counter()
    arrears()
    print(f"arrears set in {time.perf_counter() - t0:.1f}s")

    from node.cob.services import month_end_snapshot
    from node.loans.models import Loan
    from node.reports.selectors import report_query, report_run
    from node.users.models import Role, User

    admin, _ = User.objects.get_or_create(username="bench-letsema", defaults={"role": Role.LETSEMA_ADMIN})
    t0 = time.perf_counter()
    month_end_snapshot(month_end=date(2026, 9, 30), as_of=DAY)
    snapshot_s = time.perf_counter() - t0
    active = Loan.objects.filter(status="active").count()
    rows = []
    for name, params in CASES:
        times = []
        for i in range(args.runs + 1):
            t0 = time.perf_counter()
            result = report_run(actor=admin, q=report_query(actor=admin, name=name, data=dict(params)))
            if i:
                times.append(time.perf_counter() - t0)
        groups = len(result.sections[0]["rows"])
        rows.append((name, " ".join(f"{k}={v}" for k, v in params.items()), groups, pct(times, 50), max(times)))
    print(f"\nmachine: {machine()}; PostgreSQL 15 local (default settings); {active:,} active loans, "
          f"{active * 12:,} installments; {args.runs} runs after a warm-up")
    print(f"{'report':18} {'parameters':40} {'rows':>5} {'p50 s':>7} {'max s':>7}")
    for name, params, groups, p50, worst in rows:
        print(f"{name:18} {params:40} {groups:>5} {p50:>7.2f} {worst:>7.2f}")
    print(f"{'month-end snapshot':18} {'(close of business, once a month)':40} {'':>5} {snapshot_s:>7.2f}")


if __name__ == "__main__":
    main()
