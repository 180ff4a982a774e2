"""Payroll deduction end to end on one node: export the month's deduction file for an employer with N enrolled
active loans, then import the employer's N-row result file (issue target: 10,000 rows in under 10 s).

    .venv/bin/python bench/payroll_import.py --profile test                  (a kept test cluster's PostgreSQL)
    .venv/bin/python bench/payroll_import.py --profile test --explain 1000   (+ where the time goes, on 1,000 rows)

Builds, once, a template database ``letsema_bench_payroll`` on the district's PostgreSQL (migrated; an MFI with its
chart of accounts, an MFI admin, employer ``gov-ls``, N borrowers each enrolled with one active 12-month loan of
6,000.00 disbursed 2026-03-01 at 600.00 a month; 70 % have paid everything due before July, 30 % are 1-3 months
behind). Each run clones it into ``letsema_bench_payroll_run`` (``CREATE DATABASE ... TEMPLATE``), so every run
starts from the same state without deleting anything from append-only tables, then times, through the services
the API and the commands call:

1. ``payroll_export`` for 2026-07 (CSV): the deduction query, the file, the export record and its audit event;
2. the employer's answer, built from that file (not timed): 90 % ``deducted`` in full, 8 % ``partial`` (half),
   2 % ``not_deducted``;
3. ``payroll_import`` of that file: parse + validate every row + store the report rows (one transaction), then
   post the valid rows through ``repayment_post_many`` in batches of ``--batch-size`` rows per transaction (set-based:
   a fixed number of statements per batch), then the summary and its audit event.

``--explain N`` re-clones the template and imports the first N rows again under cProfile and an SQL timer
(``connection.execute_wrapper``), and prints the statements by kind (count, share of the time) and the heaviest
Python functions: what one posted row costs and where.
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import io
import itertools
import os
import platform
import pstats
import re
import sys
import time
import uuid
from collections import defaultdict
from datetime import date
from decimal import Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
TEMPLATE_DB = "letsema_bench_payroll"
RUN_DB = "letsema_bench_payroll_run"
MONTH = date(2026, 7, 1)
MFI_CODE = "bench-pay"


def setup_django(profile: str) -> None:
    os.environ["LETSEMA_CONFIG__postgres__name"] = f'"{TEMPLATE_DB}"'
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.test_settings" if profile == "test" else "config.settings"
    import django

    django.setup()
    # repayment_post queues a notification delivery task after each commit (node.notifications): keep those
    # messages in this process, never on the shared cluster's broker where a worker of another database would
    # consume them
    from config.celery import app

    app.conf.broker_url = "memory://"


def _admin_connection():
    import psycopg2
    from django.conf import settings

    db = settings.DATABASES["default"]
    conn = psycopg2.connect(host=db["HOST"], port=db["PORT"], user=db["USER"], password=db["PASSWORD"],
                            dbname="postgres")
    conn.autocommit = True
    return conn


def ensure_template() -> None:
    from django.core.management import call_command

    conn = _admin_connection()
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (TEMPLATE_DB,))
        if cur.fetchone() is None:
            cur.execute(f'CREATE DATABASE "{TEMPLATE_DB}"')
    conn.close()
    call_command("migrate", verbosity=0)


def load(n: int) -> None:
    """The template's data (idempotent: does nothing when N loans are there)."""
    from django.db import connection, transaction
    from django.utils import timezone

    from node.borrowers.models import Borrower, MfiClient
    from node.ledger.services import ledger_ensure_chart
    from node.loans.models import Loan, LoanProduct
    from node.mfis.models import Mfi
    from node.payroll.models import Employer, PayrollEnrolment
    from node.users.models import Role, User

    if Loan.objects.filter(mfi__code=MFI_CODE).count() >= n:
        print(f"{TEMPLATE_DB} already holds {n:,} bench loans")
        return
    t0 = time.monotonic()
    with transaction.atomic():
        mfi, _ = Mfi.objects.get_or_create(code=MFI_CODE, defaults={
            "name": "Bench Payroll MFI", "home_district": "maseru", "dual_control_threshold": Decimal(100000)})
        admin, _ = User.objects.get_or_create(username="bench-pay-admin", defaults={"role": Role.MFI_ADMIN, "mfi": mfi})
        ledger_ensure_chart(mfi=mfi, actor=admin)
        product, _ = LoanProduct.objects.get_or_create(mfi=mfi, code="salary-12", defaults={
            "name": "Salary 12 months", "annual_interest_rate": Decimal(20), "interest_method": "FLAT",
            "amortization": "EQUAL_INSTALLMENTS", "repayment_frequency": "MONTHS", "min_principal": Decimal(500),
            "max_principal": Decimal(50000), "min_repayments": 1, "max_repayments": 36})
        employer, _ = Employer.objects.get_or_create(mfi=mfi, code="gov-ls", defaults={
            "name": "Government of Lesotho", "created_by": admin})
        have = Borrower.objects.filter(national_id__startswith="98pay").count()
        Borrower.objects.bulk_create([Borrower(
            national_id=f"98pay{i:07d}", borrower_key=f"v1:{uuid.uuid4().hex}{uuid.uuid4().hex}", first_name="Mpho",
            last_name=f"Bench{i}", date_of_birth=date(1990, 1, 1), phone=f"+2665{i:07d}", address="Maseru",
            residence_district="Maseru", monthly_income=Decimal("9000.00"), next_of_kin_name="K",
            next_of_kin_phone="+26662000001", next_of_kin_relationship="sibling", registration_channel="branch",
            ring_claim_id=uuid.uuid4()) for i in range(have, n)], batch_size=2000)
        borrowers = list(Borrower.objects.filter(national_id__startswith="98pay").order_by("national_id")[:n])
        MfiClient.objects.bulk_create([MfiClient(borrower=b, mfi=mfi) for b in borrowers], ignore_conflicts=True,
                                      batch_size=2000)
        enrolled = set(PayrollEnrolment.objects.filter(employer=employer).values_list("borrower_id", flat=True))
        PayrollEnrolment.objects.bulk_create([
            PayrollEnrolment(mfi=mfi, employer=employer, borrower=b, employee_number=f"GOV-{i:06d}", created_by=admin)
            for i, b in enumerate(borrowers) if b.pk not in enrolled], batch_size=2000)
        disbursed = date(2026, 3, 1)
        schedule = {"installments": [{"number": k, "due_date": f"2026-{2 + k:02d}-01" if k <= 10 else
                                      f"2027-{k - 10:02d}-01", "days": 30, "total": "600.00"} for k in range(1, 13)]}
        stamp = timezone.now()
        have_loans = Loan.objects.filter(mfi=mfi).count()
        Loan.objects.bulk_create([Loan(
            mfi=mfi, product=product, borrower=borrowers[i], reference=f"PAY-{i:07d}", status="active",
            principal=Decimal("6000.00"), number_of_repayments=12, annual_interest_rate=Decimal(20),
            expected_disbursement_date=disbursed, created_by=admin, approved_by=admin, approved_at=stamp,
            disbursed_by=admin, disbursed_at=stamp, disbursement_date=disbursed, schedule=schedule)
            for i in range(have_loans, n)], batch_size=2000)
        with connection.cursor() as cur:
            cur.execute("DELETE FROM loans_loaninstallment i USING loans_loan l WHERE l.id = i.loan_id "
                        "AND l.mfi_id = %s", [mfi.pk])
            # installment k due 2026-03-01 + k months: 500.00 principal + 100.00 interest. 70 % have paid everything
            # due before July (April, May, June); the others stopped 1, 2 or 3 installments earlier
            cur.execute("""
                INSERT INTO loans_loaninstallment (loan_id, number, due_date, principal, interest, fees, penalties,
                                                   principal_paid, interest_paid, fees_paid, penalties_paid)
                SELECT l.id, g.n, (l.disbursement_date + make_interval(months => g.n))::date, 500.00, 100.00, 0, 0,
                       CASE WHEN g.n <= 3 - behind THEN 500.00 ELSE 0 END,
                       CASE WHEN g.n <= 3 - behind THEN 100.00 ELSE 0 END, 0, 0
                FROM loans_loan l CROSS JOIN generate_series(1, 12) AS g(n)
                CROSS JOIN LATERAL (SELECT CASE l.id %% 10 WHEN 7 THEN 1 WHEN 8 THEN 2 WHEN 9 THEN 3 ELSE 0 END
                                    AS behind) b
                WHERE l.mfi_id = %s ORDER BY l.id, g.n
            """, [mfi.pk])
    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE")
    print(f"loaded {n:,} enrolled borrowers with one active loan each in {time.monotonic() - t0:.0f}s")


def clone_run_db() -> None:
    """A fresh copy of the template for one run (the template must have no other session)."""
    from django.db import connection

    connection.close()
    conn = _admin_connection()
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{RUN_DB}"')
        cur.execute(f'CREATE DATABASE "{RUN_DB}" TEMPLATE "{TEMPLATE_DB}"')
    conn.close()
    connection.settings_dict["NAME"] = RUN_DB


def employer_file(export_csv: bytes) -> bytes:
    """What the employer sends back: 90 % deducted in full, 8 % partial (half), 2 % not deducted."""
    rows = list(csv.DictReader(io.StringIO(export_csv.decode("utf-8"))))
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(["employee_number", "loan_reference", "amount_deducted", "status", "reason"])
    for i, r in enumerate(rows):
        due = Decimal(r["amount_due"])
        if i % 50 == 49:
            w.writerow([r["employee_number"], r["loan_reference"], "0.00", "not_deducted", "on leave"])
        elif i % 25 == 3:
            w.writerow([r["employee_number"], r["loan_reference"], f"{(due / 2).quantize(Decimal('0.01'))}",
                        "partial", "salary too low"])
        else:
            w.writerow([r["employee_number"], r["loan_reference"], f"{due:.2f}", "deducted", ""])
    return out.getvalue().encode("utf-8")


def context():
    from node.payroll.models import Employer
    from node.users.models import User

    employer = Employer.objects.select_related("mfi").get(mfi__code=MFI_CODE, code="gov-ls")
    return employer, User.objects.get(username="bench-pay-admin")


class Clocks:
    """Wall time, the CPU time of this process and its children (the forked posters), and the CPU time of the whole
    PostgreSQL server of the node (its postmaster, live backends and exited ones; same machine: /proc)."""

    def __init__(self):
        from django.db import connection

        connection.ensure_connection()
        with connection.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            backend = cur.fetchone()[0]
        self.postmaster = int(self._stat(backend)[1])  # the backend's parent
        self.tick = os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _stat(pid) -> list[str]:
        # fields after the command: state, ppid, ... utime (11), stime (12), cutime (13), cstime (14)
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()

    def postgres_cpu(self) -> float:
        try:
            f = self._stat(self.postmaster)
            ticks = sum(int(x) for x in f[11:15])  # its own time and that of its exited children
        except OSError:
            return float("nan")
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                try:
                    f = self._stat(entry.name)
                except OSError:
                    continue
                if f[1] == str(self.postmaster):
                    ticks += int(f[11]) + int(f[12])
        return ticks / self.tick

    def now(self) -> tuple[float, float, float]:
        t = os.times()
        return time.perf_counter(), t.user + t.system + t.children_user + t.children_system, self.postgres_cpu()


def _split(a, b) -> dict:
    wall, cpu, pg = (y - x for x, y in zip(a, b, strict=True))
    return {"wall": wall, "python": cpu, "postgres": pg, "other": max(wall - cpu - pg, 0.0)}


def _fmt(d: dict) -> str:
    return (f"{d['wall']:.1f}s wall; CPU: this process and its posters {d['python']:.1f}s, the node's PostgreSQL "
            f"{d['postgres']:.1f}s (2 cores: {2 * d['wall']:.1f}s of CPU in that wall time)")


def timed_run(batch_size: int, rows: int | None = None) -> dict:
    from node.payroll.services import payroll_export, payroll_import

    employer, admin = context()
    clocks = Clocks()
    load0 = os.getloadavg()[0]
    c0 = clocks.now()
    export = payroll_export(actor=admin, employer=employer, month=MONTH, file_format="csv")
    c1 = clocks.now()
    result_file = employer_file(export.content)
    if rows:
        result_file = _first_rows(result_file, rows)
    marks = {}

    def progress(done, total):
        marks.setdefault("validated", clocks.now())
        marks.setdefault("batches", []).append(time.perf_counter())
        sys.stderr.write(f"\r  posted {done:,}/{total:,}")
        sys.stderr.flush()

    c2 = clocks.now()
    result = payroll_import(actor=admin, employer=employer, month=MONTH, content=result_file, file_name="bench.csv",
                            batch_size=batch_size, progress=progress)
    c3 = clocks.now()
    batches = marks.get("batches", [])
    sys.stderr.write("\n")
    imp = result.payroll_import
    return {"export_rows": export.export.rows, "export_total": export.export.total, "export": _split(c0, c1),
            "rows": imp.rows, "posted": imp.posted, "skipped": imp.skipped, "rejected": imp.rejected,
            "total_posted": imp.total_posted, "validate": _split(c2, marks["validated"]),
            "post": _split(marks["validated"], c3), "import": _split(c2, c3), "file": result_file,
            "load": (load0, os.getloadavg()[0]),
            "longest_batch": max((b - a for a, b in itertools.pairwise(batches)), default=0.0)}


def background_run() -> dict:
    """``--background``: the API's path for a large upload, through a real Celery worker. The file is validated and
    stored in this process's transaction (``background_over`` = ``LETSEMA_PAYROLL_SYNC_ROWS``, as the API passes),
    the commit queues ``payroll_import_continue``, and a Celery worker started here (prefork, concurrency 1, as the
    cluster runs it; an isolated Redis database, this bench's database) posts the rows, forking its posters."""
    import subprocess

    import redis
    from django.conf import settings
    from django.db import transaction

    from config.celery import app
    from node.payroll.models import ImportStatus, PayrollImport
    from node.payroll.selectors import import_summary
    from node.payroll.services import payroll_export, payroll_import

    broker = settings.CELERY_BROKER_URL.rsplit("/", 1)[0] + "/15"
    redis.Redis.from_url(broker).flushdb()
    app.conf.broker_url = broker
    employer, admin = context()
    result_file = employer_file(payroll_export(actor=admin, employer=employer, month=MONTH, file_format="csv").content)
    log_path = REPO / "var" / "bench-payroll-worker.log"
    env = dict(os.environ, LETSEMA_CONFIG__postgres__name=f'"{RUN_DB}"', LETSEMA_CONFIG__redis__url=f'"{broker}"')
    with open(log_path, "w") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "prefork", "--concurrency", "1",
             "--without-gossip", "--without-mingle", "--loglevel", "INFO", "--hostname", "bench-payroll@%h"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while "ready." not in log_path.read_text():
            if worker.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the Celery worker did not start; see {log_path}")
            time.sleep(0.2)
        t0 = time.perf_counter()
        with transaction.atomic():
            result = payroll_import(actor=admin, employer=employer, month=MONTH, content=result_file,
                                    file_name="bench.csv", background_over=settings.LETSEMA_PAYROLL_SYNC_ROWS)
        t1 = time.perf_counter()
        if not result.queued:
            raise SystemExit("the import was not queued for the background")
        imp = result.payroll_import
        shown = None
        while True:
            imp.refresh_from_db()
            s = import_summary(imp)
            if s.posted != shown:
                shown = s.posted
                sys.stderr.write(f"\r  posted {s.posted:,}/{s.posted + s.pending:,}")
            if imp.status == ImportStatus.COMPLETED:
                break
            if worker.poll() is not None or time.perf_counter() - t1 > 300:
                raise SystemExit(f"the background posting stopped; see {log_path}")
            time.sleep(0.1)
        t2 = time.perf_counter()
        sys.stderr.write("\n")
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    imp = PayrollImport.objects.get(pk=imp.pk)
    return {"rows": imp.rows, "posted": imp.posted, "skipped": imp.skipped, "rejected": imp.rejected,
            "stored": t1 - t0, "background": t2 - t1, "total": t2 - t0}


_KIND = re.compile(r'\b(?:FROM|INTO|UPDATE)\s+"?([a-z_]+)"?', re.IGNORECASE)


def _kind(sql: str) -> str:
    s = sql.lstrip()
    verb = s.split(None, 1)[0].upper()
    if verb in ("SAVEPOINT", "RELEASE", "ROLLBACK"):
        return verb + " (savepoint)"
    if "pg_advisory_xact_lock" in s:
        return "SELECT pg_advisory_xact_lock (audit chain)"
    if verb == "SET":
        return "SET CONSTRAINTS (journal balance triggers)"
    m = _KIND.search(s)
    return f"{verb} {m.group(1) if m else s[:40]}" + (" FOR UPDATE" if "FOR UPDATE" in s else "")


def _first_rows(file_bytes: bytes, rows: int) -> bytes:
    lines = file_bytes.decode().split("\r\n")
    return ("\r\n".join(lines[: rows + 1]) + "\r\n").encode()


def explain(file_bytes: bytes, rows: int, batch_size: int) -> None:
    """Pass 1 (``rows`` rows): every SQL statement timed by kind, and the CPU split. Pass 2 (half as many rows, a
    fresh clone): cProfile, for the Python side."""
    from django.db import connection

    from node.payroll.services import payroll_import

    clone_run_db()
    employer, admin = context()
    stats = defaultdict(lambda: [0, 0.0])

    def timer(execute, sql, params, many, ctx):
        t = time.perf_counter()
        try:
            return execute(sql, params, many, ctx)
        finally:
            s = stats[_kind(sql)]
            s[0] += 1
            s[1] += time.perf_counter() - t

    clocks = Clocks()
    c0 = clocks.now()
    with connection.execute_wrapper(timer):
        result = payroll_import(actor=admin, employer=employer, month=MONTH, content=_first_rows(file_bytes, rows),
                                file_name="explain.csv", batch_size=batch_size)
    split = _split(c0, clocks.now())
    posted = max(result.payroll_import.posted, 1)
    sql_s = sum(v[1] for v in stats.values())
    n_sql = sum(v[0] for v in stats.values())
    print(f"\n--explain, pass 1: {rows:,} rows, {posted:,} posted: {_fmt(split)}")
    print(f"per posted row: {1000 * split['wall'] / posted:.1f} ms wall, {1000 * split['python'] / posted:.1f} ms "
          f"Python CPU, {1000 * split['postgres'] / posted:.1f} ms PostgreSQL CPU; {n_sql / posted:.1f} SQL statements "
          f"taking {1000 * sql_s / posted:.1f} ms from send to result ({100 * sql_s / split['wall']:.0f} % of wall)")
    print(f"{'statement kind':58} {'count':>7} {'/row':>6} {'seconds':>8} {'share':>6}")
    for k, (count, secs) in sorted(stats.items(), key=lambda kv: -kv[1][1])[:30]:
        print(f"{k[:58]:58} {count:>7,} {count / posted:>6.1f} {secs:>8.2f} {100 * secs / split['wall']:>5.1f}%")

    clone_run_db()
    employer, admin = context()
    prof = cProfile.Profile()
    prof.enable()
    payroll_import(actor=admin, employer=employer, month=MONTH, content=_first_rows(file_bytes, rows // 2),
                   file_name="explain-2.csv", batch_size=batch_size)
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(r"/node/|/replication/", 45)
    text = out.getvalue().splitlines()
    start = next(i for i, ln in enumerate(text) if ln.strip().startswith("ncalls"))
    print(f"\n--explain, pass 2 ({rows // 2:,} rows under cProfile, which slows Python down): the project's functions "
          "by cumulative time")
    print("\n".join(text[start:start + 46]))


def machine() -> str:
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())
    mem = int(next(ln.split()[1] for ln in Path("/proc/meminfo").read_text().splitlines()
                   if ln.startswith("MemTotal"))) / 1024**2
    return f"{os.cpu_count()} cores ({cpu}), {mem:.1f} GiB RAM"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", choices=["demo", "test"], default="demo")
    ap.add_argument("--loans", type=int, default=10_000)
    ap.add_argument("--batch-size", type=int, default=None, help="rows per transaction (default: the import's own, "
                                                                 "node.payroll.services.DEFAULT_BATCH)")
    ap.add_argument("--rows", type=int, default=None, help="import only the first ROWS rows of the result file "
                                                             "(quick experiments; the export is still complete)")
    ap.add_argument("--explain", type=int, default=0, metavar="ROWS", help="also profile an import of ROWS rows")
    ap.add_argument("--background", action="store_true",
                    help="post through a real Celery worker, as a large API upload is (the import only)")
    args = ap.parse_args()
    setup_django(args.profile)
    from django.conf import settings
    if args.batch_size is None:
        from node.payroll.services import DEFAULT_BATCH

        args.batch_size = DEFAULT_BATCH
    ensure_template()
    load(args.loans)
    clone_run_db()
    if args.background:
        b = background_run()
        print(f"\nmachine: {machine()}; load average {os.getloadavg()[0]:.1f} after")
        print(f"import through a Celery worker: {b['rows']:,} rows, posted {b['posted']:,}, skipped {b['skipped']:,}, "
              f"rejected {b['rejected']:,}: validated and stored in the upload's transaction {b['stored']:.1f}s, "
              f"then posted by the worker {b['background']:.1f}s; {b['total']:.1f}s from upload to completed")
        return
    r = timed_run(args.batch_size, args.rows)
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT version()")
        pg = cur.fetchone()[0].split(" on ")[0]
    print(f"\nmachine: {machine()}; {pg} on the same machine; load average {r['load'][0]:.1f} before, "
          f"{r['load'][1]:.1f} after; batch {args.batch_size} rows per transaction")
    e, v, p, i = r["export"], r["validate"], r["post"], r["import"]
    print(f"export  2026-07: {r['export_rows']:,} rows, total {r['export_total']:,.2f}: {_fmt(e)}")
    print(f"import  {r['rows']:,} rows: posted {r['posted']:,} (total {r['total_posted']:,.2f}), skipped "
          f"{r['skipped']:,}, rejected {r['rejected']:,}")
    print(f"  parse + validate + store the report: {_fmt(v)}")
    print(f"  post + complete: {_fmt(p)}; {r['posted'] / p['wall']:,.1f} repayments/s, "
          f"{1000 * p['wall'] / r['posted']:.1f} ms each; longest wait between two committed batches "
          f"{r['longest_batch']:.1f}s; " + (f"{n} posters side by side (forked processes)" if (
              n := settings.LETSEMA_PAYROLL_POST_WORKERS) > 1 else "1 poster (this process)")
          + " (LETSEMA_PAYROLL_POST_WORKERS)")
    total = e["wall"] + i["wall"]
    print(f"end to end (export + import): {total:.1f}s for {r['rows']:,} rows = {r['rows'] / total:,.1f} rows/s "
          f"(target: 10,000 rows in < 10 s)")
    if args.explain:
        explain(r["file"], args.explain, args.batch_size)


if __name__ == "__main__":
    main()
