"""Measure the cold start time and resident memory of the local demo cluster.

    .venv/bin/python bench/cluster_up.py --ring 1      (wipes var/ first: a cold start)

Prints a table. Resident memory is the sum of RSS over every cluster process (PostgreSQL with its
children, Redis, Cassandra JVMs, Celery workers and gunicorn masters with their workers).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from cluster.commands import status_rows  # noqa: E402
from cluster.profiles import DEMO  # noqa: E402


def rss_tree_kib(pid: int) -> int:
    total = 0
    stack = [pid]
    seen = set()
    while stack:
        p = stack.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            with open(f"/proc/{p}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
            stack += [int(c) for c in children]
        except OSError:
            continue
    return total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ring", type=int, default=1)
    args = ap.parse_args()
    letsema = str(REPO / "letsema")
    subprocess.run([letsema, "reset"], check=True, stdout=subprocess.DEVNULL)
    t0 = time.monotonic()
    subprocess.run([letsema, "up", "--ring", str(args.ring)], check=True, stdout=subprocess.DEVNULL)
    took = time.monotonic() - t0
    time.sleep(5)
    rows = status_rows(DEMO)
    by_kind: dict[str, int] = {}
    for name, pid, *_ in rows:
        if pid.isdigit():
            kind = name.split("-")[0]
            by_kind[kind] = by_kind.get(kind, 0) + rss_tree_kib(int(pid))
    total = sum(by_kind.values())
    print("| ring nodes | cold `up` (s) | total RSS (MiB) | " + " | ".join(f"{k} (MiB)" for k in sorted(by_kind)) + " |")
    print("|" + "---|" * (3 + len(by_kind)))
    print(f"| {args.ring} | {took:.0f} | {total / 1024:.0f} | " + " | ".join(f"{by_kind[k] / 1024:.0f}" for k in sorted(by_kind)) + " |")
    print(f"(cpus: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
