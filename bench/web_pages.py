"""Web pages of one node under 50 users (issue: every page's server time p95 under 200 ms at 50 users; page
weight measured).

    .venv/bin/python bench/web_pages.py                      (demo cluster, Maseru node)
    .venv/bin/python bench/web_pages.py --profile test       (a kept test cluster)

Set-up runs in-process through the node's services: the MFI ``bench-web`` with an officer, a second officer, an
MFI admin and an analyst, a Letsema admin and an operator, and ``--borrowers`` borrowers with web accounts, each
with disbursed loans of different ages (so some are in arrears and the reports have something to count) and one
application waiting in the officer's queue; then close of business through yesterday, as the nightly job does.

The measurement is pure HTTP, like browsers: ``--users`` virtual users, each with its own session cookie, log in
through ``/login/`` (CSRF token and all) and then walk their role's pages in a loop, pausing ``--think`` seconds
(uniformly 0.5x-1.5x) between pages. The mix of roles is borrower-heavy, as a node's traffic is. For every page
the table gives the **server time** (the node's ``Server-Timing: app;dur=`` header: the request inside Django,
from the first middleware to the response) and the **client time** (adds gunicorn's queue, the network stack and
the client, which shares the node's 2 cores), plus the page's weight: HTML bytes as sent and gzip-compressed.
PDF and export downloads are measured apart (they are files, not pages).
"""

from __future__ import annotations

import argparse
import gzip
import random
import re
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from common import machine, pct  # noqa: E402  (bench/common.py, next to this script)
from fixtures import (  # noqa: E402
    bench_mfi,
    consented_borrower,
    disbursed_loan,
    django_setup,
    product,
    progress,
    staff,
)

PASSWORD = "Bench-web-2026!"
REPORTS = ("par", "aging", "flows", "demand_collection", "repayment_rate", "risk_grades", "loans", "regulatory_return")
# role -> share of the virtual users (borrowers are most of a node's traffic; staff work all day)
MIX = {"anonymous": 0.10, "borrower": 0.40, "officer": 0.20, "mfi_admin": 0.08, "analyst": 0.14, "letsema_admin": 0.04,
       "operator": 0.04}


@dataclass
class Fixture:
    base: str
    product_id: int
    officer_loan: int
    month_closed: bool = False
    accounts: dict[str, list[tuple[str, list[int]]]] = field(default_factory=dict)  # role -> [(username, loan ids)]


def setup(profile: str, borrowers: int) -> Fixture:
    django_setup(profile)
    from django.conf import settings

    from node.cob.models import MonthEndPortfolio
    from node.cob.services import cob_close
    from node.core.errors import ApplicationError
    from node.loans import services as L
    from node.loans.models import Loan
    from node.users.models import Role

    mfi = bench_mfi("bench-web", "Bench Web")
    admin = staff(mfi, "bench-web-admin", Role.MFI_ADMIN, PASSWORD)
    officer = staff(mfi, "bench-web-officer", Role.LOAN_OFFICER, PASSWORD)
    officer2 = staff(mfi, "bench-web-officer2", Role.LOAN_OFFICER, PASSWORD)
    analyst = staff(mfi, "bench-web-analyst", Role.ANALYST, PASSWORD)
    letsema = staff(None, "bench-web-letsema", Role.LETSEMA_ADMIN, PASSWORD)
    operator = staff(None, "bench-web-operator", Role.OPERATOR, PASSWORD)
    prod = product(admin, mfi, "bench-web-12", "Bench web 12 months")
    fx = Fixture(base=settings.DISTRICT.public_url, product_id=prod.pk, officer_loan=0, accounts={
        "officer": [(officer.username, [])], "mfi_admin": [(admin.username, [])], "analyst": [(analyst.username, [])],
        "letsema_admin": [(letsema.username, [])], "operator": [(operator.username, [])], "anonymous": [("", [])],
        "borrower": []})
    for i in range(borrowers):
        account = staff(None, f"bench-web-borrower{i}", Role.BORROWER, PASSWORD)
        loans = list(Loan.objects.filter(borrower__user=account).order_by("pk").values_list("pk", flat=True))
        if not loans:
            b = consented_borrower(officer, mfi, last_name=f"Webuser{i}", account=account)
            for days_ago in (20 + 37 * i % 200, 5 + 11 * i % 60):  # spread: some loans months in arrears
                loans.append(disbursed_loan(officer=officer, officer2=officer2, admin=admin, borrower=b, product=prod,
                                            principal=Decimal(2000 + 500 * (i % 9)), n=12, days_ago=days_ago).pk)
            waiting = L.loan_submit(actor=officer, loan=L.loan_apply(
                actor=officer, borrower=b, product=prod, principal=Decimal("1500.00"), number_of_repayments=6,
                expected_disbursement_date=date.today() + timedelta(days=7)))
            loans.append(waiting.pk)
        fx.accounts["borrower"].append((account.username, loans))
        progress("set-up: borrowers with loans", i + 1, borrowers)
    fx.officer_loan = fx.accounts["borrower"][0][1][-1]
    # the nightly close of business: first through the last month end (a node's first close keeps that month's
    # regulatory snapshot), then through yesterday; both are no-ops on a node that has closed them already
    for through in (date.today().replace(day=1) - timedelta(days=1), None):
        try:
            r = cob_close(through=through, actor_name="bench")
            print(f"close of business through {r.business_date}: {r.loans} loans", file=sys.stderr)
        except ApplicationError as exc:
            print(f"close of business not run: {exc.code}: {exc.message}", file=sys.stderr)
    fx.month_closed = MonthEndPortfolio.objects.exists()
    if not fx.month_closed:
        print("no month end closed on this node: the regulatory return is left out", file=sys.stderr)
    return fx


def pages_for(role: str, fx: Fixture, loans: list[int], rnd: random.Random) -> list[tuple[str, str]]:
    """(label, path) of the pages a user of ``role`` walks, in order."""
    if role == "anonymous":
        return [("home", "/"), ("calculator", f"/calculator/?product={fx.product_id}&principal=5000"
                 f"&number_of_repayments={rnd.choice((6, 12))}"), ("login", "/login/"), ("register", "/register/")]
    if role == "borrower":
        return [("me", "/me/"), *[("me_loan", f"/me/loans/{lid}/") for lid in loans], ("me_notifications",
                "/me/notifications/"), ("calculator", f"/calculator/?product={fx.product_id}&principal=3000"
                "&number_of_repayments=6")]
    if role == "officer":
        borrower_loans = rnd.choice(fx.accounts["borrower"])[1]
        return [("staff_queue", "/staff/"), ("staff_loan", f"/staff/loans/{fx.officer_loan}/"),
                ("staff_loan", f"/staff/loans/{borrower_loans[0]}/"),
                ("staff_borrowers", f"/staff/borrowers/?q=Webuser{rnd.randrange(len(fx.accounts['borrower']))}")]
    if role == "mfi_admin":
        return [("staff_disbursements", "/staff/disbursements/"), ("admin_team", "/staff/team/"),
                ("admin_products", "/staff/products/"), ("staff_queue", "/staff/")]
    if role == "analyst":
        return [("reports", "/reports/"), *[(f"report_{n}", f"/reports/{n}/") for n in REPORTS
                                            if n != "regulatory_return" or fx.month_closed]]
    if role == "letsema_admin":
        return [("network_node", "/network/"), ("network_districts", "/network/districts/"),
                ("report_par_node", "/reports/par/?scope=node")]
    if role == "operator":
        return [("network_node", "/network/"), ("network_districts", "/network/districts/")]
    raise ValueError(role)


def login(sess: requests.Session, base: str, username: str) -> None:
    r = sess.get(f"{base}/login/", timeout=30)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', r.text).group(1)
    r = sess.post(f"{base}/login/", data={"username": username, "password": PASSWORD, "csrfmiddlewaretoken": token},
                  headers={"Referer": f"{base}/login/"}, timeout=30, allow_redirects=False)
    if r.status_code != 302:
        raise SystemExit(f"log-in of {username} failed: HTTP {r.status_code}")


def server_ms(r: requests.Response) -> float | None:
    m = re.match(r"app;dur=([\d.]+)", r.headers.get("Server-Timing", ""))
    return float(m.group(1)) if m else None


def roles_for(users: int) -> list[str]:
    out = [role for role, share in MIX.items() for _ in range(max(1, round(users * share)))]
    return (out * 2)[:users] if len(out) < users else out[:users]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", choices=["demo", "test"], default="demo")
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--think", type=float, default=1.0, help="mean pause between pages in seconds (0: none)")
    ap.add_argument("--borrowers", type=int, default=20)
    args = ap.parse_args()
    fx = setup(args.profile, args.borrowers)
    server: dict[str, list[float]] = defaultdict(list)
    client: dict[str, list[float]] = defaultdict(list)
    weight: dict[str, tuple[int, int]] = {}
    errors: dict[str, int] = defaultdict(int)
    retried = [0]
    samples: list[str] = []
    lock = threading.Lock()
    roles = roles_for(args.users)
    ready = threading.Barrier(len(roles) + 1)
    go = threading.Event()
    window: list[float] = []

    def user(n: int, role: str) -> None:
        rnd = random.Random(n)
        accounts = fx.accounts[role]
        username, loans = accounts[n % len(accounts)]
        sess = requests.Session()
        if username:
            login(sess, fx.base, username)
        ready.wait()
        go.wait()
        while time.monotonic() < window[1]:
            for label, path in pages_for(role, fx, loans, rnd):
                if time.monotonic() >= window[1]:
                    break
                t0 = time.perf_counter()
                try:
                    r = sess.get(fx.base + path, timeout=60)
                except requests.ConnectionError:
                    # gunicorn closed the idle keep-alive connection (2 s) just as the request went out: a browser
                    # resends the GET at once on a new connection, and so does this user (counted apart)
                    with lock:
                        retried[0] += 1
                    try:
                        r = sess.get(fx.base + path, timeout=60)
                    except requests.RequestException as exc:
                        with lock:
                            errors[f"{label} {type(exc).__name__}"] += 1
                        continue
                ms = (time.perf_counter() - t0) * 1000
                srv = server_ms(r)
                with lock:
                    if r.status_code == 200 and srv is not None:
                        server[label].append(srv)
                        client[label].append(ms)
                        weight[label] = (len(r.content), len(gzip.compress(r.content, 6)))
                    else:
                        errors[f"{label} {r.status_code}"] += 1
                        if len(samples) < 3:
                            samples.append(f"{path}: {r.status_code} {r.text[:200]}")
                if args.think:
                    time.sleep(args.think * rnd.uniform(0.5, 1.5))

    threads = [threading.Thread(target=user, args=(n, role), daemon=True) for n, role in enumerate(roles)]
    [t.start() for t in threads]
    ready.wait()
    window.extend([time.monotonic(), time.monotonic() + args.seconds])
    go.set()
    [t.join() for t in threads]
    downloads = measure_downloads(fx)

    all_server = [x for xs in server.values() for x in xs]
    all_client = [x for xs in client.values() for x in xs]
    if not all_server:
        raise SystemExit(f"no page was served: {dict(errors)} {samples}")
    print(f"\nmachine: {machine()}; node {fx.base} (gunicorn, PostgreSQL 15 local); {args.users} users "
          f"({', '.join(f'{r} {roles.count(r)}' for r in MIX)}), think {args.think} s, {args.seconds} s; "
          "client threads on the same machine")
    head = (f"{'page':<26} {'n':>5} {'srv p50':>8} {'srv p95':>8} {'srv p99':>8} {'cli p50':>8} {'cli p95':>8} "
            f"{'HTML KB':>8} {'gzip KB':>8}")
    print(head)
    for label in sorted(server, key=lambda k: -pct(server[k], 95)):
        raw, gz = weight[label]
        print(f"{label:<26} {len(server[label]):>5} {pct(server[label], 50):>8.1f} {pct(server[label], 95):>8.1f} "
              f"{pct(server[label], 99):>8.1f} {pct(client[label], 50):>8.1f} {pct(client[label], 95):>8.1f} "
              f"{raw / 1024:>8.1f} {gz / 1024:>8.1f}")
    print(f"{'all pages':<26} {len(all_server):>5} {pct(all_server, 50):>8.1f} {pct(all_server, 95):>8.1f} "
          f"{pct(all_server, 99):>8.1f} {pct(all_client, 50):>8.1f} {pct(all_client, 95):>8.1f}")
    print(f"pages per second: {len(all_server) / args.seconds:.1f}; errors: {dict(errors) or 0} {samples or ''}; "
          f"requests resent after a dropped keep-alive connection: {retried[0]}")
    worst = max(server, key=lambda k: pct(server[k], 95))
    print(f"slowest page by server p95: {worst} {pct(server[worst], 95):.1f} ms "
          f"({'within' if pct(server[worst], 95) < 200 else 'OVER'} the 200 ms target)")
    print("\ndownloads, one at a time on the idle node (server ms, KB): "
          + "; ".join(f"{k} {ms:.0f} ms {kb:.1f} KB" for k, (ms, kb) in downloads.items()))


def measure_downloads(fx: Fixture) -> dict[str, tuple[float, float]]:
    """The files: each fetched 5 times after the load, median server time and size."""
    out = {}
    borrower, loans = fx.accounts["borrower"][0]
    jobs = [(borrower, f"/me/loans/{loans[0]}/statement.pdf", "statement.pdf"),
            *[("bench-web-analyst", f"/reports/par/?export={kind}", f"par.{kind}") for kind in ("csv", "xlsx", "pdf")]]
    for username, path, label in jobs:
        sess = requests.Session()
        login(sess, fx.base, username)
        times, size = [], 0
        for _ in range(5):
            r = sess.get(fx.base + path, timeout=60)
            if r.status_code != 200:
                raise SystemExit(f"{path}: HTTP {r.status_code} {r.text[:200]}")
            times.append(server_ms(r) or 0.0)
            size = len(r.content)
        out[label] = (pct(times, 50), size / 1024)
    return out


if __name__ == "__main__":
    main()
