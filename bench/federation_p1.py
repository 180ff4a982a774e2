"""Reliability notes P1 end to end: the staff borrower look-up through a node's API while its peers are far away.

    .venv/bin/python bench/federation_p1.py --profile test                    # peers at +150 ms, 50 users, 1 s think
    .venv/bin/python bench/federation_p1.py --profile test --rtt 150 --think 0 --duration 30

P1: peers behind +150 ms of round-trip time, 50 concurrent users: the look-up's p95 ≤ 1.0 s, p50 ≤ 400 ms, no error;
a look-up served by the local node alone p95 ≤ 200 ms under the same load.

The running cluster's nodes are left alone. The bench starts a **second Maseru web node** (the same database, Redis,
key and code; gunicorn 2 workers × 4 threads like the node) whose district configuration directory is a copy of the
cluster's with every peer's ``public_url`` pointing at a latency proxy in front of that peer
(``tests/federation_helpers.FaultProxy`` in ``latency`` mode: a new connection waits one round trip before its first
byte, every chunk half of one each way) and ``LETSEMA_FEDERATION_PEER_TIMEOUT`` set as docs/federation.md advises
for that distance. Then, after a warm-up:

1. ``--clients`` users each call ``GET /api/v1/network/borrowers/<key>/where`` on it (the fan-out to every peer,
   signed, through the proxies), pausing ``--think`` seconds between calls, for ``--duration`` seconds;
2. the same users call ``GET /api/v1/borrowers/`` (answered from the node's own database: no peer) for as long.

Every federated answer must be HTTP 200 and name no peer missing (a peer that missed its deadline is reported).
Prints the table and the machine; exits 1 if a P1 criterion fails. The second node and the proxies are stopped at
the end (also on Ctrl-C).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
import federation_lookup as fl  # noqa: E402
from common import machine, pct  # noqa: E402


PROXIES = """
import json, sys, time
import django
django.setup()
from tests.federation_helpers import FaultProxy
proxies = [FaultProxy((h, p), mode="latency", rtt=float(sys.argv[2])).__enter__() for h, p in json.loads(sys.argv[1])]
print(json.dumps([x.url for x in proxies]), flush=True)
while True:
    time.sleep(3600)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def summary(rows, *, federated: bool) -> dict:
    lat = [r[1] * 1000 for r in rows]
    ok = [r for r in rows if r[2] == 200 and r[3] is not None]
    return {"n": len(rows), "p50": pct(lat, 50), "p95": pct(lat, 95), "p99": pct(lat, 99),
            "max": max(lat) if lat else float("nan"), "errors": sum(1 for r in rows if r[2] != 200),
            "missing": sum(1 for r in ok if federated and r[3].get("missing")),
            "reasons": fl._reasons(ok) if federated else {}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", choices=["test", "demo"], default="test")
    ap.add_argument("--node", default="maseru")
    ap.add_argument("--rtt", type=float, default=150.0, help="round-trip time added in front of every peer, ms")
    ap.add_argument("--peer-timeout", type=float, default=None,
                    help="the node's per-peer deadline, s (default: 2 × RTT + 50 ms, plain HTTP, at least 0.3)")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--think", type=float, default=1.0)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--workers", type=int, default=2, help="the second node's gunicorn workers")
    ap.add_argument("--threads", type=int, default=4, help="threads per worker (the node's default: 4)")
    args = ap.parse_args()
    rtt = args.rtt / 1000
    peer_timeout = args.peer_timeout or max(0.3, round(2 * rtt + 0.05, 3))

    os.environ["LETSEMA_DISTRICT"] = args.node
    fl.setup_django(args.profile)
    import requests

    from cluster.procs import spawn, wait_port
    from cluster.profiles import DEMO, TEST

    profile = TEST if args.profile == "test" else DEMO
    peers = [c for c in profile.all_configured_districts if c != args.node]
    tmp = Path(tempfile.mkdtemp(prefix="letsema-p1-"))
    proxies, pid = [], None
    try:
        configs = tmp / "district_configs"
        shutil.copytree(profile.config_dir, configs)
        # the proxies run in a process of their own: in this one, 50 client threads would starve them of the GIL
        targets = []
        for code in peers:
            host, port = profile.district(code).public_url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)
            targets.append((host, int(port)))
        proxy_proc = subprocess.Popen(
            [sys.executable, "-c", PROXIES, json.dumps(targets), str(rtt)], cwd=REPO, stdout=subprocess.PIPE,
            text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
        proxies.append(proxy_proc)
        urls = json.loads(proxy_proc.stdout.readline())
        for code, url in zip(peers, urls):
            path = configs / f"{code}.toml"
            text, n = re.subn(r'(?m)^(\s*public_url\s*=\s*)"[^"]*"', rf'\1"{url}"', path.read_text())
            assert n == 1, f"{path}: no public_url to rewrite"
            path.write_text(text)
        port = free_port()
        env = profile.env_for(args.node)
        env.update({"LETSEMA_DISTRICT_CONFIG_DIR": str(configs), "LETSEMA_FEDERATION_PEER_TIMEOUT": str(peer_timeout)})
        log = tmp / "web.log"
        pid = spawn([sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
                     "--workers", str(args.workers), "--threads", str(args.threads), "--timeout", "60",
                     "--keep-alive", "75",
                     "--name", "letsema-p1-bench"], log=log, pidfile=tmp / "web.pid", env=env, cwd=REPO)
        wait_port("127.0.0.1", port, 60, pid=pid, what="the bench's second node", log=log)
        base = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {fl.staff_token()}"}
        key = "v1:" + hashlib.sha256(f"bench-p1-{time.time()}".encode()).hexdigest()
        where = f"{base}/api/v1/network/borrowers/{key}/where"

        print(f"machine: {machine()}")
        print(f"{args.node} (a second web node on :{port}, {args.workers} workers × {args.threads} threads) → peers "
              f"{peers}, each behind +{args.rtt:.0f} ms RTT; per-peer deadline {peer_timeout} s")
        if not fl._real_peers_answer(where, headers):
            print(open(log).read()[-3000:])
            return 2
        load = SimpleNamespace(clients=args.clients, warmup=args.warmup, duration=args.duration, think=args.think)
        fed = [r for r in fl.run_load(where, headers, load) if r[0] >= args.warmup]
        local = [r for r in fl.run_load(f"{base}/api/v1/borrowers/", headers, load) if r[0] >= args.warmup]
    finally:
        if pid is not None:
            subprocess.run(["kill", str(pid)], check=False)
        for proc in proxies:
            proc.terminate()
        shutil.rmtree(tmp, ignore_errors=True)

    f, loc = summary(fed, federated=True), summary(local, federated=False)
    print(f"\n{args.clients} users, {args.think}s think, {args.duration:.0f}s each after a {args.warmup:.0f}s warm-up")
    print(f"{'look-up':<34} {'n':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8} {'errors':>7} "
          f"{'peer missing':>13}")
    for name, s in ((f"network (fan-out, +{args.rtt:.0f} ms peers)", f), ("local only (borrower list)", loc)):
        print(f"{name:<34} {s['n']:>6} {s['p50']:>8.1f} {s['p95']:>8.1f} {s['p99']:>8.1f} {s['max']:>8.1f} "
              f"{s['errors']:>7} {s['missing']:>13}")
    if f["reasons"]:
        print(f"peers missing, why: {f['reasons']}")
    complete = 1 - f["missing"] / max(1, f["n"])
    print(f"network look-ups that heard from every peer: {complete:.1%}")
    checks = [("network p95 ≤ 1000 ms", f["p95"] <= 1000), ("network p50 ≤ 400 ms", f["p50"] <= 400),
              ("≥ 99 % of network look-ups complete (no peer missing)", complete >= 0.99),
              ("no error", f["errors"] == 0 and loc["errors"] == 0), ("local p95 ≤ 200 ms", loc["p95"] <= 200)]
    for name, ok in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    print(f"machine at the end: {machine()}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
