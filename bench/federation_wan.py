"""The fan-out to peers that are far away (reliability notes P1: peers behind +150 ms of round-trip time): how
often a real peer answers within the per-peer deadline, on a new connection and on a kept-alive one, for a few
round-trip times and deadlines.

    .venv/bin/python bench/federation_wan.py --profile test
    .venv/bin/python bench/federation_wan.py --profile test --rtt 0,50,150,250 --timeouts 0.3,0.6,1.0

The two real peers of the cluster's Maseru node (leribe and mohales_hoek, their gunicorn and PostgreSQL) each sit
behind a TCP proxy that adds the round-trip time (``tests/federation_helpers.FaultProxy`` in ``latency`` mode: one
round trip before a new connection's first byte, as the TCP handshake costs; half of one each way for every
request and answer). The fan-out runs in this process with the node's own code (``federation.fanout``: signed
requests, per-peer deadline, thread-local kept-alive connections) and the Maseru node's key; the peers verify every
signature. Each case:

- **new connections**: ``--cold`` fan-outs, each from a fresh client (no connection to reuse) — what a node's
  first look-up after start-up, or after its peers' keep-alive (75 s) closed idle connections, pays;
- **kept-alive**: ``--warm`` fan-outs, one after another, on one client after a first one opened the connections;
- **cold start**: a fresh client with the real backoff (2 s, doubling) asks every 100 ms for ``--recover``
  seconds: how many look-ups were complete, and how long until the first one was.

A peer that misses its deadline is backed off by a real node (every look-up then names it missing until its retry
time); here each fan-out uses a fresh backoff so that every attempt is measured. Plain HTTP: TLS would add one
more round trip to a new connection (TLS 1.3), none to a kept-alive one.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
from common import machine, pct
from fixtures import django_setup

PING = "/_federation/v1/ping"
PEERS = ("leribe", "mohales_hoek")


def fresh_backoff():
    from federation.backoff import BackoffPolicy, PeerBackoff

    return PeerBackoff(BackoffPolicy(initial=0.01, multiplier=1.0, maximum=0.01), shared=False,
                       namespace=f"bench-wan-{uuid.uuid4().hex[:8]}")


def run_case(peers, timeout: float, cold: int, warm: int) -> dict:
    from federation.fanout import FanoutClient

    out = {"cold_ms": [], "warm_ms": [], "cold_missing": Counter(), "warm_missing": Counter(), "cold_n": 0,
           "warm_n": 0}
    for _ in range(cold):
        client = FanoutClient(backoff=fresh_backoff(), timeout=timeout)
        r = client.request("GET", PING, peers=peers)
        out["cold_ms"].append(r.elapsed_ms)
        out["cold_n"] += len(peers)
        out["cold_missing"].update(r.missing.values())
    client = FanoutClient(backoff=fresh_backoff(), timeout=max(timeout, 2.0))
    client.request("GET", PING, peers=peers)  # opens the connections, whatever they cost
    for _ in range(warm):
        client._backoff = fresh_backoff()  # every attempt measured, none skipped
        r = client.request("GET", PING, peers=peers, timeout=timeout)
        out["warm_ms"].append(r.elapsed_ms)
        out["warm_n"] += len(peers)
        out["warm_missing"].update(r.missing.values())
    return out


def recovery(peers, timeout: float, seconds: float) -> tuple[int, int, float | None]:
    """A node starting cold against far peers, with the real backoff (2 s, doubling, no jitter here): a look-up
    every 100 ms for ``seconds``. Returns (complete look-ups, look-ups, seconds until the first complete one)."""
    import time

    from federation.backoff import BackoffPolicy, PeerBackoff
    from federation.fanout import FanoutClient

    backoff = PeerBackoff(BackoffPolicy(initial=2.0, multiplier=2.0, maximum=30.0, jitter=(1.0, 1.0)), shared=False,
                          namespace=f"bench-wan-{uuid.uuid4().hex[:8]}")
    client = FanoutClient(backoff=backoff, timeout=timeout)
    t0, complete, n, first = time.monotonic(), 0, 0, None
    while time.monotonic() - t0 < seconds:
        r = client.request("GET", PING, peers=peers)
        n += 1
        if not r.partial:
            complete += 1
            first = first if first is not None else time.monotonic() - t0
        time.sleep(0.1)
    return complete, n, first


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", choices=["demo", "test"], default="demo")
    ap.add_argument("--rtt", default="0,50,150", help="round-trip times to add, ms (comma-separated)")
    ap.add_argument("--timeouts", default="0.3,0.6", help="per-peer deadlines, s (0.3 is the default setting)")
    ap.add_argument("--cold", type=int, default=10, help="fan-outs on new connections per case")
    ap.add_argument("--warm", type=int, default=30, help="fan-outs on kept-alive connections per case")
    ap.add_argument("--recover", type=float, default=10.0,
                    help="seconds of look-ups every 100 ms from a cold start with backoff, per case (0: skip)")
    args = ap.parse_args()
    django_setup(args.profile)
    from federation.peers import Peer, get_directory
    from tests.federation_helpers import FaultProxy

    directory = get_directory()
    rows = []
    for rtt_ms in (int(x) for x in args.rtt.split(",")):
        proxies = []
        for code in PEERS:
            real = directory.get(code)
            host, port = real.public_url.removeprefix("http://").split(":")
            proxy = FaultProxy((host, int(port)), mode="latency" if rtt_ms else "pass", rtt=rtt_ms / 1000)
            proxies.append((code, proxy.__enter__(), real))
        peers = [Peer(code, proxy.url, real.keys) for code, proxy, real in proxies]
        try:
            for timeout in (float(x) for x in args.timeouts.split(",")):
                r = run_case(peers, timeout, args.cold, args.warm)
                r["recovery"] = recovery(peers, timeout, args.recover) if args.recover else None
                rows.append((rtt_ms, timeout, r))
                print(f"rtt {rtt_ms} ms, deadline {timeout} s: done", file=sys.stderr)
        finally:
            for _, proxy, _ in proxies:
                proxy.__exit__(None, None, None)

    print(f"\nmachine: {machine()}; fan-out from this process (Maseru's key) to the real leribe and mohales_hoek "
          f"nodes, each behind a latency proxy; signed GET {PING}; plain HTTP (TLS 1.3 adds one round trip to a new "
          f"connection)")
    print(f"{'RTT ms':>6} {'deadline s':>10} | {'new conn: answered':>18} {'p50 ms':>7} {'max ms':>7} {'missing':<18} | "
          f"{'kept-alive: answered':>20} {'p50 ms':>7} {'p95 ms':>7} {'missing':<18} | cold start: complete, first")
    for rtt_ms, timeout, r in rows:
        print(f"{rtt_ms:>6} {timeout:>10.1f} | {answered(r, 'cold'):>18} {pct(r['cold_ms'], 50):>7.0f} "
              f"{max(r['cold_ms']):>7.0f} {missing(r, 'cold'):<18} | {answered(r, 'warm'):>20} "
              f"{pct(r['warm_ms'], 50):>7.0f} {pct(r['warm_ms'], 95):>7.0f} {missing(r, 'warm'):<18} | "
              f"{cold_start(r)}")


def cold_start(r: dict) -> str:
    if r["recovery"] is None:
        return "-"
    complete, n, first = r["recovery"]
    return f"{complete}/{n}, " + (f"after {first:.1f} s" if first is not None else "never")


def answered(r: dict, kind: str) -> str:
    n = r[f"{kind}_n"]
    return f"{n - sum(r[f'{kind}_missing'].values())}/{n}"


def missing(r: dict, kind: str) -> str:
    return ", ".join(f"{k} {v}" for k, v in r[f"{kind}_missing"].items()) or "-"


if __name__ == "__main__":
    main()
