"""Network borrower look-up across 4 peers, one dead and one answering after 2 s (issue #7: p95 under 300 ms at 50
concurrent look-ups, every response partial with the missing districts named, zero server errors), plus the cost of
signing and verifying one request.

    .venv/bin/python bench/federation_lookup.py --profile test                 (against a kept test cluster)
    .venv/bin/python bench/federation_lookup.py --profile test --clients 50 --duration 30 --think 0

What it does:

1. Starts a stub peer on 127.0.0.1 that answers after 2 s, and publishes two throw-away districts in the ring's
   node directory: ``bench_dead`` (http://127.0.0.1:1, nothing listens) and ``bench_slow`` (the stub). With the
   two real peers of the cluster, the maseru node then has 4 peers. Waits until the node's directory cache
   (30 s TTL) has picked them up.
2. Onboards (once) an MFI ``bench-fed`` on the maseru node's database and mints its admin's access token.
3. ``--clients`` threads each call ``GET /api/v1/network/borrowers/<key>/where`` on the maseru node in a closed loop
   (optionally with ``--think`` seconds between calls) for ``--duration`` seconds, after a short warm-up that is
   reported separately. Every answer is checked: HTTP 200, ``partial`` true, ``bench_dead`` and ``bench_slow``
   named in ``missing``.
4. Times ``sign_request`` and ``verify_request`` in this process (verification with an in-memory nonce set and
   with the Redis ``SET NX``), in microseconds.
5. Removes the two districts from the ring. Prints a table with the machine it ran on.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DEAD, SLOW = "bench_dead", "bench_slow"


def setup_django(profile: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.test_settings" if profile == "test" else "config.settings"
    os.environ.setdefault("LETSEMA_DISTRICT", "maseru")
    import django

    django.setup()


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s) + 0.5) - 1))]


def machine() -> str:
    cpu = platform.processor()
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                   if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = ""
    try:
        kb = int(next(ln.split()[1] for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal")))
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, StopIteration):
        pass
    return f"{os.cpu_count()} cores ({cpu}){mem}, Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f}"


def staff_token() -> str:
    from decimal import Decimal

    from node.mfis.models import Mfi
    from node.mfis.services import mfi_onboard
    from node.users.models import User
    from node.users.tokens import access_token_for

    if not Mfi.objects.filter(code="bench-fed").exists():
        mfi_onboard(actor=None, code="bench-fed", name="Bench Federation MFI", registration_number="R-BENCH-FED",
                    interest_rate_cap=Decimal(60), admin_username="bench-fed.admin", admin_first_name="Bench",
                    admin_last_name="Admin")
    return access_token_for(User.objects.get(username="bench-fed.admin"))


def crypto_costs(n: int) -> dict[str, float]:
    from federation import state
    from federation.backoff import default_backoff
    from federation.peers import get_directory
    from federation.signing import IncomingRequest, local_signer, verify_request

    signer = local_signer()
    url, body = "http://127.0.0.1:8202/_federation/v1/borrowers/status", json.dumps(
        {"schema": 1, "borrower_key": "v1:" + "ab" * 32}).encode()
    directory = get_directory()
    backoff = default_backoff()
    out = {}
    t = time.perf_counter()
    signed = [signer.sign("POST", url, body, destination=signer.district) for _ in range(n)]
    out["sign_us"] = (time.perf_counter() - t) / n * 1e6
    seen: set = set()

    def claim_memory(origin, nonce, ttl):
        if (origin, nonce) in seen:
            return False
        seen.add((origin, nonce))
        return True

    reqs = [IncomingRequest("POST", "/_federation/v1/borrowers/status", "", h, body) for h in signed]
    t = time.perf_counter()
    for r in reqs:
        verify_request(r, own_district=signer.district, directory=lambda: directory, refresh_directory=lambda: directory,
                       claim_nonce=claim_memory)
    out["verify_us"] = (time.perf_counter() - t) / n * 1e6
    # again with the real nonce store (Redis SET NX EX): fresh signatures, the nonces above are spent in memory only
    signed = [signer.sign("POST", url, body, destination=signer.district) for _ in range(n)]
    reqs = [IncomingRequest("POST", "/_federation/v1/borrowers/status", "", h, body) for h in signed]
    t = time.perf_counter()
    for r in reqs:
        verify_request(r, own_district=signer.district, directory=lambda: directory, refresh_directory=lambda: directory,
                       claim_nonce=lambda o, nonce, ttl: state.claim_nonce(o, nonce, ttl, clear=backoff.shared_keys(o)))
    out["verify_redis_us"] = (time.perf_counter() - t) / n * 1e6
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", choices=["test", "demo"], default="test")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--think", type=float, default=0.0, help="seconds each client waits between look-ups")
    ap.add_argument("--node", default="maseru", help="the node the look-ups are sent to")
    ap.add_argument("--node-url", default=None, help="override the node's URL (e.g. a separately started gunicorn)")
    ap.add_argument("--crypto-n", type=int, default=3000)
    ap.add_argument("--baseline", action="store_true",
                    help="no dead or slow peer: only the cluster's real peers (what the bad peers cost, by difference)")
    args = ap.parse_args()
    os.environ["LETSEMA_DISTRICT"] = args.node
    setup_django(args.profile)

    import requests

    from cluster.profiles import DEMO, TEST

    profile = TEST if args.profile == "test" else DEMO
    base = args.node_url or profile.district(args.node).public_url
    key = "v1:" + hashlib.sha256(f"bench-fed-{time.time()}".encode()).hexdigest()
    where = f"{base}/api/v1/network/borrowers/{key}/where"
    headers = {"Authorization": f"Bearer {staff_token()}"}

    print(f"machine: {machine()}")
    if not _real_peers_answer(where, headers):
        return 2
    if args.baseline:
        r = requests.get(where, headers=headers, timeout=30)
        print(f"baseline: {args.node} peers answered {sorted(r.json()['answered'])}, missing {r.json()['missing']}")
        results, slow_probes = run_load(where, headers, args), 0
    else:
        results, slow_probes = _with_bad_peers(where, headers, args)
        if results is None:
            return 2
    costs = crypto_costs(args.crypto_n)
    report(results, costs, args, slow_probes)
    if not args.baseline:
        from federation.backoff import default_backoff

        default_backoff().forget([DEAD, SLOW])  # this process only; the node's state expires on its own
    return 0


def _real_peers_answer(where: str, headers: dict) -> bool:
    """The measured case has the cluster's real peers answering. A peer that timed out in an earlier run (a cold node,
    or a run that saturated it) can still be backed off for up to the backoff cap, and every look-up would then skip
    it, which measures a different, cheaper look-up. Forget the real peers' retry state (the node shares it through
    Redis) and wait until one look-up hears from all of them."""
    import requests
    from django.conf import settings

    from federation.backoff import default_backoff
    from federation.peers import get_directory

    real = [p.district for p in get_directory().fanout_peers(settings.DISTRICT.code) if p.district not in (DEAD, SLOW)]
    t0 = time.monotonic()
    while True:
        default_backoff().forget(real)
        r = requests.get(where, headers=headers, timeout=30)
        missing = {d for d in (r.json().get("missing") or {}) if d not in (DEAD, SLOW)} if r.status_code == 200 else {"?"}
        if not missing:
            return True
        if time.monotonic() - t0 > 60:
            print("the real peers do not answer:", r.status_code, r.text[:300])
            return False
        time.sleep(1)


def _with_bad_peers(where: str, headers: dict, args):
    import requests

    from federation.peers import ACTIVE, RingEntry, ring_entry_delete, ring_entry_write
    from tests.federation_helpers import StubPeer

    with StubPeer(SLOW, mode="slow", delay=2.0) as slow:
        ring_entry_write(RingEntry(DEAD, "http://127.0.0.1:1", {}, ACTIVE, None, "bench"))
        ring_entry_write(RingEntry(SLOW, slow.url, {}, ACTIVE, None, "bench"))
        try:
            t0 = time.monotonic()
            while True:  # the node's directory cache refreshes every 30 s
                r = requests.get(where, headers=headers, timeout=30)
                if r.status_code == 200 and {DEAD, SLOW} <= set(r.json()["missing"]):
                    break
                if time.monotonic() - t0 > 90:
                    print("the node never listed the bench peers:", r.status_code, r.text[:300])
                    return None, 0
                time.sleep(2)
            print(f"{args.node} sees {len(r.json()['answered']) + len(r.json()['missing']) - 1} peers "
                  f"after {time.monotonic() - t0:.0f}s: answered {sorted(r.json()['answered'])}, "
                  f"missing {r.json()['missing']}")
            results = run_load(where, headers, args)
        finally:
            ring_entry_delete(DEAD)
            ring_entry_delete(SLOW)
        return results, slow.hit_count


def run_load(url: str, headers: dict, args) -> list[tuple[float, float, int, dict | None]]:
    import requests

    results: list[tuple[float, float, int, dict | None]] = []  # (start offset, seconds, status, body)
    lock = threading.Lock()
    start = time.monotonic()
    stop_at = start + args.warmup + args.duration
    barrier = threading.Barrier(args.clients)

    from requests.adapters import HTTPAdapter
    from urllib3.util import Retry

    errors: dict[str, int] = {}

    def client():
        s = requests.Session()
        # gunicorn closes idle keep-alive connections after 2 s: a GET on a connection it just closed is retried once
        s.mount("http://", HTTPAdapter(max_retries=Retry(total=1, connect=1, read=1, status=0, other=0,
                                                         allowed_methods=["GET"], raise_on_status=False)))
        barrier.wait()
        while time.monotonic() < stop_at:
            t = time.monotonic()
            try:
                r = s.get(url, headers=headers, timeout=30)
                status, body = r.status_code, (r.json() if r.headers.get("Content-Type", "").startswith("application/json") else None)
            except requests.RequestException as exc:
                status, body = 0, None
                with lock:
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            took = time.monotonic() - t
            with lock:
                results.append((t - start, took, status, body))
            if args.think:
                time.sleep(args.think)

    threads = [threading.Thread(target=client) for _ in range(args.clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if errors:
        print(f"client-side errors: {errors}")
    return results


def report(results, costs, args, slow_probes: int) -> None:
    def summary(rows):
        lat = [r[1] * 1000 for r in rows]
        ok = [r for r in rows if r[2] == 200 and r[3]]
        partial_named = [r for r in ok if r[3]["partial"] and {DEAD, SLOW} <= set(r[3]["missing"])]
        extra = [r for r in ok if set(r[3]["missing"]) - {DEAD, SLOW}]
        return {
            "n": len(rows), "rps": len(rows) / max(1e-9, (max(r[0] + r[1] for r in rows) - min(r[0] for r in rows))) if rows else 0,
            "p50": pct(lat, 50), "p95": pct(lat, 95), "p99": pct(lat, 99), "max": max(lat) if lat else float("nan"),
            "mean": statistics.fmean(lat) if lat else float("nan"),
            "5xx": sum(1 for r in rows if r[2] >= 500), "errors": sum(1 for r in rows if r[2] == 0),
            "non_200": sum(1 for r in rows if r[2] != 200), "partial_named": len(partial_named),
            "real_peer_missing": len(extra),
            "missing_reasons": _reasons(ok),
        }

    warm = [r for r in results if r[0] < args.warmup]
    steady = [r for r in results if r[0] >= args.warmup]
    print(f"\n{args.clients} concurrent clients, closed loop (think {args.think}s), {args.duration:.0f}s after a "
          f"{args.warmup:.0f}s warm-up; " + ("baseline: only the 2 real peers" if args.baseline else
                                             f"4 peers: 2 real, {DEAD} (refused), {SLOW} (answers after 2 s)"))
    print(f"{'phase':<8} {'n':>6} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8} "
          f"{'5xx':>4} {'neterr':>6} {'partial+named':>14} {'real peer missing':>18}")
    for name, rows in (("warm-up", warm), ("steady", steady), ("all", results)):
        if not rows:
            continue
        s = summary(rows)
        print(f"{name:<8} {s['n']:>6} {s['rps']:>7.1f} {s['p50']:>8.1f} {s['p95']:>8.1f} {s['p99']:>8.1f} "
              f"{s['max']:>8.1f} {s['5xx']:>4} {s['errors']:>6} {s['partial_named']:>7}/{s['n']:<6} "
              f"{s['real_peer_missing']:>18}")
    print(f"missing reasons (all): {summary(results)['missing_reasons']}")
    print(f"requests that reached the slow stub (probes): {slow_probes}")
    print(f"\nsigning and verification, per request ({args.crypto_n} each, this process):")
    print(f"  sign (digest + Ed25519 sign + headers)           {costs['sign_us']:8.1f} µs")
    print(f"  verify (parse + digest + Ed25519 verify), memory {costs['verify_us']:8.1f} µs")
    print(f"  verify + Redis nonce/backoff (one round trip)    {costs['verify_redis_us']:8.1f} µs")
    print(f"\nmachine at the end: {machine()}")


def _reasons(rows) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rows:
        for d, why in r[3]["missing"].items():
            out[f"{d}:{why}"] = out.get(f"{d}:{why}", 0) + 1
    return dict(sorted(out.items()))


if __name__ == "__main__":
    raise SystemExit(main())
