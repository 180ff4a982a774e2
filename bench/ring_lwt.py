"""Lightweight-transaction latency on the ring: the stacking guard's compare-and-set, timed alone.

    .venv/bin/python bench/ring_lwt.py                    (against the running demo cluster)
    .venv/bin/python bench/ring_lwt.py --profile test     (against a kept test cluster)

Runs the guard's own primitive (``replication.holds``) on fresh partition keys in the bench keyspace
(``letsema_bench``, same CQL migrations and RF as the node's): a first hold (QUORUM read + ``INSERT ... IF NOT
EXISTS``), a second hold on the same row (QUORUM read + ``UPDATE ... IF version = v``), and a SERIAL read — one
client, then ``--clients`` concurrent clients on distinct keys (no contention: this measures the Paxos rounds, not
lost races). Prints the ring's ``paxos_variant`` and the machine it ran on.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from common import bench_ring, machine, pct  # noqa: E402  (bench/common.py, next to this script)

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", choices=["demo", "test"], default="demo")
    ap.add_argument("--rounds", type=int, default=300, help="keys per client")
    ap.add_argument("--clients", type=int, default=8)
    args = ap.parse_args()
    session, _ = bench_ring(args.profile)
    from replication.holds import holds_change, holds_read
    from replication.ring import RingSettings, node_setting

    s = RingSettings.from_django()
    variants = node_setting(session, "paxos_variant")
    answered = [v for v in variants.values() if v is not None]
    if answered and len(set(answered)) == 1:
        variant = f"{answered[0]} on {len(answered)}/{len(variants)} nodes"
    else:
        variant = ", ".join(f"{h}={v}" for h, v in variants.items())

    def add(name: str):
        return lambda holds: {**holds, name: {"state": "reserved", "principal": "1000.00"}}

    def one_round(times: dict[str, list[float]]) -> None:
        key = f"bench-lwt:{uuid.uuid4()}"
        for name, fn in (("first hold (INSERT IF NOT EXISTS)", lambda: holds_change(key, add("a"))),
                         ("second hold (UPDATE IF version)", lambda: holds_change(key, add("b"))),
                         ("SERIAL read", lambda: holds_read(key, serial=True))):
            t0 = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t0) * 1000)

    names = ("first hold (INSERT IF NOT EXISTS)", "second hold (UPDATE IF version)", "SERIAL read")
    warm = {n: [] for n in names}
    for _ in range(30):
        one_round(warm)

    results: list[tuple[str, dict[str, list[float]], float]] = []
    for clients in (1, args.clients):
        times = {n: [] for n in names}
        lock = threading.Lock()

        def client() -> None:
            mine = {n: [] for n in names}
            for _ in range(args.rounds if clients == 1 else max(1, args.rounds // 2)):
                one_round(mine)
            with lock:
                for n in names:
                    times[n].extend(mine[n])

        t0 = time.perf_counter()
        threads = [threading.Thread(target=client) for _ in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        results.append((f"{clients} client{'s' if clients > 1 else ''}", times, time.perf_counter() - t0))

    print(f"\nring: {len(variants)} node(s), paxos_variant={variant}, RF {s.replication_factor}; {machine()}")
    print("\n| clients | operation | n | p50 ms | p95 ms | p99 ms | changes/s |")
    print("|---|---|---|---|---|---|---|")
    for label, times, wall in results:
        for n in names:
            xs = times[n]
            rate = (len(times[names[0]]) + len(times[names[1]])) / wall
            print(f"| {label} | {n} | {len(xs)} | {pct(xs, 50):.1f} | {pct(xs, 95):.1f} | {pct(xs, 99):.1f} | "
                  f"{rate:.0f} |")


if __name__ == "__main__":
    main()
