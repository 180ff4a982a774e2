"""Soak: 60 users on one node for 15 minutes, mixed work (reliability notes, scenario P4).

    .venv/bin/python bench/soak.py --profile test                       (the full run: 60 users, 15 min)
    .venv/bin/python bench/soak.py --profile test --minutes 3           (the smoke run)

Users start at ``--ramp`` per second and, until the end, each repeats: pick a task (weights 70 reads, 20 repayments,
10 applications), run it, pause ``--think`` seconds (uniformly 0.5x-1.5x). Reads are what a loan officer opens: a
loan, its schedule, its balance, its payment history, the MFI's loan list, a borrower. A repayment is a POST with a
fresh ``Idempotency-Key``. An application is a new borrower's apply -> submit -> review -> credit report ->
approve, back to back (the approval reserves the exposure in the ring with a compare-and-set). Every request goes
over HTTP to the node's gunicorn; its Celery worker ships the credit events and sends the notifications meanwhile.

Pass criteria (printed with the measured values):
- no error: every request answers its expected status (a 409 ``stacking_limit`` would be an error too);
- p95 <= 1 s for reads and <= 2 s for writes (repayments and application steps);
- the node's memory (RSS of its gunicorn and Celery processes) grows by <= 10 % from the end of the ramp-up (plus a
  minute of warm-up) to the end;
- outbox age p99 <= 60 s: ``shipped_at - created_at`` of every credit event written during the run, and the oldest
  pending event as ``/healthz`` reported it every 5 s.
Set-up (an MFI, staff, disbursed loans, fresh borrowers with consent) runs in-process through the services and is
kept for later runs; borrowers used by an application are never reused (the stacking guard would refuse them).
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
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
from fixtures import bench_mfi, consented_borrower, disbursed_loan, django_setup, product, progress, staff  # noqa: E402

WEIGHTS = (("read", 70), ("repayment", 20), ("application", 10))
READS = ("loan", "schedule", "balance", "history", "loan_list", "borrower")


def setup(profile: str, loans_wanted: int, borrowers_wanted: int, users: int):
    django_setup(profile)
    from django.conf import settings

    from node.borrowers.models import Borrower
    from node.loans.models import Loan
    from node.users.models import Role
    from node.users.tokens import access_token_for

    mfi = bench_mfi("bench-soak", "Bench Soak", officer_approval_limit=None)
    admin = staff(mfi, "bench-soak-admin", Role.MFI_ADMIN)
    officer = staff(mfi, "bench-soak-officer", Role.LOAN_OFFICER)
    officer2 = staff(mfi, "bench-soak-officer2", Role.LOAN_OFFICER)
    prod = product(admin, mfi, "soak-24", "Soak 24 months")
    loans = list(Loan.objects.filter(mfi=mfi, status="active").order_by("pk")
                 .values_list("pk", "borrower_id")[:loans_wanted])
    while len(loans) < loans_wanted:
        b = consented_borrower(officer, mfi, last_name="Repays")
        for _ in range(3):  # the stacking guard allows 3 active loans per borrower
            lo = disbursed_loan(officer=officer, officer2=officer2, admin=admin, borrower=b, product=prod)
            loans.append((lo.pk, b.pk))
        progress("set-up: disbursed loans", min(len(loans), loans_wanted), loans_wanted)
    # borrowers with no loan yet at this MFI (fresh, or made by an earlier run and not used)
    fresh = list(Borrower.objects.filter(mfi_links__mfi=mfi, last_name="Applicant", loans__isnull=True)
                 .values_list("pk", flat=True)[:borrowers_wanted])
    while len(fresh) < borrowers_wanted:
        fresh.append(consented_borrower(officer, mfi, last_name="Applicant", income=Decimal("40000.00")).pk)
        progress("set-up: borrowers for applications", len(fresh), borrowers_wanted)
    # one loan officer per simulated user: the node allows each staff member LETSEMA_CREDIT_REPORTS_PER_HOUR
    # credit look-ups an hour (docs/auth.md), as a real branch's officers each have their own account
    officers = [officer] + [staff(mfi, f"bench-soak-officer-u{u}", Role.LOAN_OFFICER) for u in range(1, users)]
    return loans[:loans_wanted], fresh, prod.pk, lambda u: access_token_for(officers[u]), settings


def node_pids(district: str) -> list[int]:
    """The node's gunicorn (master and worker) and Celery (worker, pool, beat) processes."""
    pids = []
    for pattern in (f"gunicorn.*--name letsema-{district}( |$)", f"celery.*--hostname worker-{district}@"):
        out = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split()
        pids += [int(p) for p in out]
    return pids


def rss_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", choices=["demo", "test"], default="demo")
    ap.add_argument("--users", type=int, default=60)
    ap.add_argument("--ramp", type=float, default=5.0, help="users started per second")
    ap.add_argument("--minutes", type=float, default=15.0)
    ap.add_argument("--think", type=float, default=2.0, help="mean pause between a user's tasks, seconds")
    args = ap.parse_args()
    seconds = args.minutes * 60
    # applications expected: users x tasks per user x 10 %, with a margin
    apps_wanted = int(args.users * seconds / (args.think + 0.2) * 0.1 * 1.25) + 10
    loans, fresh, product_id, new_token, settings = setup(args.profile, args.users * 2, apps_wanted, args.users)
    # access tokens live 15 minutes: each officer's client renews its token every 5 (as an app with a refresh token)
    token = [new_token(u) for u in range(args.users)]
    from django.utils import timezone

    from replication.models import OutboxEvent

    base = settings.DISTRICT.public_url
    api = base + "/api/v1"
    pids = node_pids(settings.DISTRICT.code)
    if not pids:
        raise SystemExit(f"no gunicorn/Celery process found for {settings.DISTRICT.code}: is the cluster up?")
    lat: dict[str, list[float]] = {}
    errors: dict[str, int] = {}
    samples: list[str] = []
    lock = threading.Lock()
    borrowers = list(fresh)
    when = (date.today() + timedelta(days=3)).isoformat()
    started = time.monotonic()
    stop_at = started + args.users / args.ramp + seconds
    run_from = timezone.now()

    def record(kind: str, name: str, r: requests.Response | Exception, ms: float, ok: int) -> bool:
        good = not isinstance(r, Exception) and r.status_code == ok
        with lock:
            if good:
                lat.setdefault(kind, []).append(ms)
                lat.setdefault(name, []).append(ms)
            else:
                k = f"{name} {type(r).__name__ if isinstance(r, Exception) else r.status_code}"
                errors[k] = errors.get(k, 0) + 1
                if len(samples) < 5:
                    samples.append(f"{k}: {str(r)[:200] if isinstance(r, Exception) else r.text[:200]}")
        return good

    def call(sess, kind, name, method, url, ok=200, u=0, **kw):
        headers = {**kw.pop("headers", {}), "Authorization": f"Bearer {token[u]}"}
        t0 = time.perf_counter()
        try:
            r = sess.request(method, url, timeout=60, headers=headers, **kw)
        except requests.RequestException as exc:
            r = exc
        ms = (time.perf_counter() - t0) * 1000
        return r if record(kind, name, r, ms, ok) else None

    def user(u: int) -> None:
        rng = random.Random(u)
        sess = requests.Session()
        mine = loans[(u * 2) % len(loans):(u * 2) % len(loans) + 2]
        while time.monotonic() < stop_at:
            task = rng.choices([t for t, _ in WEIGHTS], [w for _, w in WEIGHTS])[0]
            lid, bid = rng.choice(mine)
            if task == "application":
                with lock:
                    nb = borrowers.pop() if borrowers else None
                if nb is None:
                    task = "read"  # out of fresh borrowers: counted under reads
                else:
                    r = call(sess, "write", "apply", "POST", f"{api}/loans/", ok=201, u=u, json={
                        "borrower": nb, "product": product_id, "principal": "6000.00", "number_of_repayments": 12,
                        "expected_disbursement_date": when, "purpose": "soak"})
                    if r is not None:
                        new = r.json()["id"]
                        for step, path in (("submit", "submit"), ("review", "review"),
                                           ("credit_report", "credit-report"), ("approve", "approve")):
                            if call(sess, "write", step, "POST", f"{api}/loans/{new}/{path}", u=u, json={}) is None:
                                break
            if task == "repayment":
                call(sess, "write", "repayment", "POST", f"{api}/loans/{lid}/repayments", ok=201, u=u,
                     json={"amount": "1.00", "payment_date": date.today().isoformat(), "channel": "cash"},
                     headers={"Idempotency-Key": uuid.uuid4().hex})
            elif task == "read":
                what = rng.choice(READS)
                url = {"loan": f"{api}/loans/{lid}/", "schedule": f"{api}/loans/{lid}/schedule",
                       "balance": f"{api}/loans/{lid}/balance", "history": f"{api}/loans/{lid}/repayments",
                       "loan_list": f"{api}/loans/?status=active", "borrower": f"{api}/borrowers/{bid}/"}[what]
                call(sess, "read", what, "GET", url, u=u)
            time.sleep(rng.uniform(0.5, 1.5) * args.think)

    # the health monitor: memory every 30 s, the oldest pending outbox event every 5 s
    mem: list[tuple[float, float]] = []
    oldest: list[float] = []
    done = threading.Event()

    def monitor() -> None:
        h = requests.Session()
        n = 0
        while not done.is_set():
            if n % 6 == 0:
                mem.append((time.monotonic() - started, rss_mib(pids)))
            if n % 60 == 59:
                for u in range(args.users):
                    token[u] = new_token(u)
            try:
                oldest.append(float(h.get(f"{base}/healthz", timeout=10).json()["outbox"]["oldest_pending_seconds"]))
            except Exception:  # noqa: BLE001 - a missed sample is not a failure of the node
                pass
            n += 1
            done.wait(5)
        mem.append((time.monotonic() - started, rss_mib(pids)))

    mon = threading.Thread(target=monitor, daemon=True)
    mon.start()
    threads = []
    for u in range(args.users):
        t = threading.Thread(target=user, args=(u,))
        t.start()
        threads.append(t)
        time.sleep(1 / args.ramp)
        progress("ramp-up: users", u + 1, args.users)
    while any(t.is_alive() for t in threads):
        left = max(0, stop_at - time.monotonic())
        sys.stderr.write(f"\rrunning: {int(left // 60)}:{int(left % 60):02d} left, "
                         f"{sum(len(v) for k, v in lat.items() if k in ('read', 'write'))} requests, "
                         f"{sum(errors.values())} errors   ")
        time.sleep(5)
    [t.join() for t in threads]
    sys.stderr.write("\n")
    wall = time.monotonic() - started
    # let the shipper finish what the last seconds wrote, then read every event's age
    deadline = time.monotonic() + 90
    while OutboxEvent.objects.filter(shipped_at__isnull=True, created_at__gte=run_from).exists() \
            and time.monotonic() < deadline:
        time.sleep(1)
    done.set()
    mon.join(15)
    ages = [(s - c).total_seconds() for c, s in OutboxEvent.objects.filter(created_at__gte=run_from)
            .values_list("created_at", "shipped_at") if s is not None]
    unshipped = OutboxEvent.objects.filter(created_at__gte=run_from, shipped_at__isnull=True).count()

    ramp_end = args.users / args.ramp + 60
    base_mem = next((m for t, m in mem if t >= ramp_end), mem[0][1])
    end_mem = mem[-1][1]
    growth = (end_mem - base_mem) / base_mem * 100
    reads, writes = lat.get("read", []), lat.get("write", [])
    n_err = sum(errors.values())
    print(f"\nmachine: {machine()}; node {base} (gunicorn, its Celery worker; PostgreSQL 15 and the 3-node ring on the "
          f"same cores); client on the same machine")
    print(f"{args.users} users (ramp {args.ramp:g}/s), {args.minutes:g} min, think {args.think:g} s; "
          f"{len(reads) + len(writes) + n_err} requests in {wall:.0f} s ({(len(reads) + len(writes)) / wall:.1f}/s); "
          f"applications approved: {len(lat.get('approve', []))}")
    print(f"{'request':16} {'n':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name in ("read", *READS, "write", "repayment", "apply", "submit", "review", "credit_report", "approve"):
        xs = lat.get(name)
        if xs:
            print(f"{name:16} {len(xs):>7} {statistics.median(xs):>8.1f} {pct(xs, 95):>8.1f} {pct(xs, 99):>8.1f} "
                  f"{max(xs):>8.1f}")
    print(f"memory (RSS of {len(pids)} node processes): {mem[0][1]:.0f} MiB at start, {base_mem:.0f} MiB after the "
          f"ramp-up and a minute, {end_mem:.0f} MiB at the end; peak {max(m for _, m in mem):.0f} MiB")
    age_p99 = pct(ages, 99) if ages else float("nan")
    print(f"outbox: {len(ages)} events shipped, {unshipped} not shipped; age p50 {statistics.median(ages) if ages else 0:.2f} s, "
          f"p99 {age_p99:.2f} s, max {max(ages) if ages else 0:.2f} s; oldest pending seen by /healthz: "
          f"max {max(oldest) if oldest else 0:.1f} s over {len(oldest)} samples")
    checks = [
        ("no errors", n_err == 0, f"{n_err} {errors or ''}"),
        ("reads p95 <= 1 s", bool(reads) and pct(reads, 95) <= 1000, f"{pct(reads, 95):.0f} ms" if reads else "none"),
        ("writes p95 <= 2 s", bool(writes) and pct(writes, 95) <= 2000, f"{pct(writes, 95):.0f} ms" if writes else "none"),
        ("memory growth <= 10 %", growth <= 10, f"{growth:+.1f} %"),
        ("outbox age p99 <= 60 s", bool(ages) and unshipped == 0 and age_p99 <= 60
         and max(oldest, default=0) <= 60, f"{age_p99:.2f} s, {unshipped} unshipped"),
    ]
    for name, ok, value in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {name:26} {value}")
    for s in samples:
        print("   ", s)
    raise SystemExit(0 if all(ok for _, ok, _ in checks) else 1)


if __name__ == "__main__":
    main()
