"""Credit-report latency on a ring holding many borrowers (issue: p99 under 10 ms for 50 events, 1,000,000 borrowers).

    .venv/bin/python bench/credit_report.py --borrowers 1000000            (against the running demo cluster)
    .venv/bin/python bench/credit_report.py --profile test --borrowers 20000 (against a kept test cluster)

Loads a separate keyspace (``letsema_bench``, same CQL migrations, same RF) once: N borrowers with one disbursed-loan
event each, plus 20 borrowers with 50 events each (loans at several MFIs, repayments, DPD changes, enquiries). It
then times the report path exactly as the node runs it — one partition read at the working consistency level, the
fold into the report and the scorecard — from one client and from 16 concurrent clients, and the enquiry insert
that precedes every report. Prints a table with the machine it ran on.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from common import BENCH_KEYSPACE, bench_ring, machine, pct  # noqa: E402  (bench/common.py, next to this script)
HOT = 20  # borrowers with 50 events each


def bkey(i: int) -> str:
    return "v1:" + hashlib.sha256(f"bench-{i}".encode()).hexdigest()


def hot_key(n: int, i: int) -> str:
    return f"v1:{hashlib.sha256(f'hot-{n}-{i}'.encode()).hexdigest()}"


def hot_events(key: str, i: int) -> list[tuple]:
    """50 events for one borrower, with fixed times and ids: loading them twice leaves 50 rows."""
    rows = []
    t = datetime(2024, 1, 1, tzinfo=UTC)
    seq = iter(range(1000))
    for loan in range(8):
        ref = f"M{loan}-2501-{i:06d}"
        base = {"schema": 2, "mfi": f"mfi{loan % 4}", "district": ["maseru", "leribe", "mohales_hoek"][loan % 3],
                "loan_ref": ref, "principal": "5000.00", "monthly_installment": "502.31", "currency": "LSL"}
        for etype, extra in (("loan.applied", {}), ("loan.approved", {}),
                             ("loan.disbursed", {"outstanding_principal": "5000.00", "disbursement_date": "2025-01-10"}),
                             ("loan.repaid", {"outstanding_principal": "2500.00"}),
                             ("loan.dpd_changed", {"days_past_due": 12}),
                             ("loan.closed" if loan < 5 else "loan.repaid", {"outstanding_principal": "0.00" if loan < 5 else "1200.00"})):
            t += timedelta(days=3)
            rows.append((key, t, uuid.uuid5(uuid.NAMESPACE_URL, f"{key}/{next(seq)}"), etype, base["district"],
                         json.dumps({**base, **extra})))
    for e in range(50 - len(rows)):
        t += timedelta(days=5)
        rows.append((key, t, uuid.uuid5(uuid.NAMESPACE_URL, f"{key}/{next(seq)}"), "enquiry", "maseru",
                     json.dumps({"mfi": f"mfi{e % 4}", "district": "maseru", "purpose": "loan_application"})))
    return rows[:50]


def load(session, cl, n: int) -> None:
    from cassandra.concurrent import execute_concurrent_with_args

    ins = session.prepare("INSERT INTO credit_events (borrower_key, event_time, event_id, event_type, origin_district, "
                          "payload) VALUES (?, ?, ?, ?, ?, ?)")
    ins.consistency_level = cl
    hot = [r for i in range(HOT) for r in hot_events(hot_key(n, i), i)]
    execute_concurrent_with_args(session, ins, hot, concurrency=100, raise_on_first_error=True)
    marker = session.execute("SELECT node, updated_at FROM ring_heartbeat WHERE node = %s", (f"bench-loaded-{n}",)).one()
    if marker is not None:
        print(f"keyspace {BENCH_KEYSPACE} already holds {n:,} borrowers (loaded {marker.updated_at})")
        return
    now = datetime.now(UTC)
    payload = json.dumps({"schema": 2, "mfi": "mfi0", "district": "maseru", "loan_ref": "L", "principal": "3000.00",
                          "outstanding_principal": "3000.00", "monthly_installment": "300.00", "currency": "LSL"})
    started, chunk = time.monotonic(), 20000
    for lo in range(0, n, chunk):
        args = [(bkey(i), now, uuid.uuid4(), "loan.disbursed", "maseru", payload) for i in range(lo, min(n, lo + chunk))]
        for ok, res in execute_concurrent_with_args(session, ins, args, concurrency=200, raise_on_first_error=True):
            pass
        done = min(n, lo + chunk)
        rate = done / (time.monotonic() - started)
        sys.stderr.write(f"\rloading {done:,}/{n:,} borrowers ({rate:,.0f}/s)")
        sys.stderr.flush()
    sys.stderr.write("\n")
    session.execute("INSERT INTO ring_heartbeat (node, updated_at) VALUES (%s, toTimestamp(now()))", (f"bench-loaded-{n}",))
    print(f"loaded {n:,} borrowers + {HOT} with 50 events in {time.monotonic() - started:.0f}s")



def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", choices=["demo", "test"], default="demo")
    ap.add_argument("--borrowers", type=int, default=1_000_000)
    ap.add_argument("--reads", type=int, default=3000)
    args = ap.parse_args()
    session, cl = bench_ring(args.profile)

    from django.conf import settings

    from node.credit.report import RingRow, fold
    from node.credit.score import score_report, scorecard_from_settings
    from replication.events import event_insert, events_read
    from replication.ring import RingSettings

    s = RingSettings.from_django()
    load(session, cl, args.borrowers)
    card = scorecard_from_settings()
    keys = [hot_key(args.borrowers, i) for i in range(HOT)]

    def report_once(k: str) -> float:
        t0 = time.perf_counter()
        rows = [RingRow(r.event_time, str(r.event_id), r.event_type, r.origin_district, r.payload) for r in events_read(k)]
        rep = fold(k, rows, as_of=datetime.now(UTC))
        score_report(rep, monthly_income=Decimal("8500.00"), new_monthly_installment=Decimal("400.00"), card=card)
        assert rep.events_read == 50, rep.events_read
        return (time.perf_counter() - t0) * 1000

    for k in keys * 5:  # warm-up: connections, prepared paths, JIT on the ring
        report_once(k)
    single = [report_once(keys[i % HOT]) for i in range(args.reads)]

    conc: list[float] = []
    lock = threading.Lock()

    def client(c: int) -> None:
        mine = [report_once(keys[(c + i) % HOT]) for i in range(args.reads // 16)]
        with lock:
            conc.extend(mine)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client, args=(c,)) for c in range(16)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    wall = time.perf_counter() - t0

    enq = []
    for i in range(500):
        t1 = time.perf_counter()
        event_insert(partition_key=f"v1:bench-enquiry-{i % 50}", event_time=datetime.now(UTC), event_id=uuid.uuid4(),
                     event_type="enquiry", origin_district=settings.DISTRICT.code,
                     payload={"mfi": "bench", "district": settings.DISTRICT.code, "purpose": "loan_application"})
        enq.append((time.perf_counter() - t1) * 1000)

    ring = len(s.contact_points)
    print(f"\nmachine: {machine()}; ring: {ring} local nodes, RF {s.replication_factor}, "
          f"consistency {'QUORUM' if cl == 4 else cl}; ring holds {args.borrowers:,} borrowers + {HOT} with 50 events")
    print(f"{'measure':46} {'n':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, xs in (("credit report (read+fold+score), 1 client", single),
                     (f"credit report, 16 clients ({len(conc) / wall:,.0f}/s)", conc),
                     ("enquiry insert (QUORUM), 1 client", enq)):
        print(f"{name:46} {len(xs):>6} {statistics.median(xs):>8.2f} {pct(xs, 95):>8.2f} {pct(xs, 99):>8.2f} {max(xs):>8.2f}")


if __name__ == "__main__":
    main()
