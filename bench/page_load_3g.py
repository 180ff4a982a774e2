"""Web pages in a real browser on a slow mobile link (reliability notes P3: the login, borrower and loan pages paint
their largest content within 3 s on 3G; critical-path bytes under 150 KB; at most 3 critical-path round trips).

    .venv/bin/python bench/page_load_3g.py                      (demo cluster, Maseru node)
    .venv/bin/python bench/page_load_3g.py --profile test       (a kept test cluster)
    .venv/bin/python bench/page_load_3g.py --revisit-after 0    (skip the revisit after the cache lifetime)

Debian's Chromium, driven by Playwright, with Lighthouse's mobile throttling applied through the DevTools protocol:
150 ms RTT and 1.6 Mbit/s down / 750 kbit/s up, which DevTools (request-level throttling) needs as 562.5 ms of
request latency and 1.44 / 0.675 Mbit/s (Lighthouse's own adjustment factors, 3.75 and 0.9), and the renderer's CPU
slowed 4x. The data is the one ``bench/web_pages.py`` sets up (a borrower with loans, their officer); the users
are logged in over HTTP first and their session cookie handed to the browser, so the log-in form's POST is not
in the figures.

Every page is loaded three ways, ``--runs`` times each:

- **cold**: a new browser profile (empty cache): the HTML, the stylesheet and the script all travel;
- **warm**: the same page again a moment later: the HTML travels, the stylesheet and script come from the cache;
- **revisit**: the same page again after ``--revisit-after`` seconds (default 65: past a 60 s cache lifetime):
  what a user opening the next page after reading this one for a minute gets.

Per page and way: largest contentful paint (LCP, the P3 criterion), first contentful paint, the node's own server
time (``Server-Timing``; the time to first byte as the page sees it does not include DevTools' added latency), the
bytes that travelled (transfer sizes: headers and compressed bodies), the requests that went to the network, the
revalidations among them (304s), and the render-blocking requests (the critical path is the HTML plus those: they
are referenced by the HTML itself, so one more round trip).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
from common import machine
from web_pages import login, setup

CHROMIUM = "/usr/bin/chromium"
# Lighthouse's mobile preset ("slow 4G", formerly "fast 3G"; WebPageTest's "Mobile 3G - Fast") and the factors it
# uses to apply it with DevTools' request-level throttling
RTT_MS, DOWN_KBPS, UP_KBPS = 150, 1.6 * 1024, 750
LATENCY_FACTOR, THROUGHPUT_FACTOR = 3.75, 0.9
CPU_SLOWDOWN = 4
LCP_TARGET_MS, CRITICAL_BYTES_TARGET, CRITICAL_TRIPS_TARGET = 3000, 150 * 1024, 3

MEASURE_JS = """() => new Promise(resolve => {
  const nav = performance.getEntriesByType('navigation')[0];
  const res = performance.getEntriesByType('resource');
  const fcp = performance.getEntriesByName('first-contentful-paint')[0];
  const done = lcp => resolve({
    lcp, fcp: fcp ? fcp.startTime : null,
    server: (nav.serverTiming.find(t => t.name === 'app') || {}).duration ?? null,
    html: nav.transferSize,
    resources: res.map(r => ({name: r.name, transfer: r.transferSize, body: r.encodedBodySize,
                              blocking: r.renderBlockingStatus === 'blocking'})),
  });
  new PerformanceObserver(list => { const e = list.getEntries(); done(e[e.length - 1].startTime); })
    .observe({type: 'largest-contentful-paint', buffered: true});
  setTimeout(() => done(null), 5000);
})"""


def throttle(context, page) -> None:
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": RTT_MS * LATENCY_FACTOR,
        "downloadThroughput": DOWN_KBPS * 1024 / 8 * THROUGHPUT_FACTOR,
        "uploadThroughput": UP_KBPS * 1024 / 8 * THROUGHPUT_FACTOR})
    cdp.send("Emulation.setCPUThrottlingRate", {"rate": CPU_SLOWDOWN})


def load(page, url: str) -> dict:
    page.goto(url, wait_until="load", timeout=60_000)
    m = page.evaluate(MEASURE_JS)
    # a resource answered from the browser's cache has no transfer at all; a revalidation (304) costs its headers
    # and a round trip; anything with a body came over the network
    m["network"] = 1 + sum(1 for r in m["resources"] if r["transfer"] > 0)
    m["revalidated"] = sum(1 for r in m["resources"] if r["transfer"] > 0 and r["body"] == 0)
    m["bytes"] = m["html"] + sum(r["transfer"] for r in m["resources"])
    blocking = [r for r in m["resources"] if r["blocking"] and r["transfer"] > 0]
    m["critical_bytes"] = m["html"] + sum(r["transfer"] for r in blocking)
    m["critical_trips"] = 1 + (1 if blocking else 0)
    return m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", choices=["demo", "test"], default="demo")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--revisit-after", type=float, default=65.0,
                    help="seconds before the revisit (0: skip it); static files are cached for 60 s unless versioned")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    fx = setup(args.profile, 1)
    from node.loans.models import Loan

    borrower_user, loans = fx.accounts["borrower"][0]
    loan = Loan.objects.filter(pk__in=loans, status="active").order_by("pk").first() or Loan.objects.get(pk=loans[0])
    pages = [("login (anonymous)", "", "/login/"),
             ("borrower: my loans", borrower_user, "/me/"),
             ("borrower: a loan", borrower_user, f"/me/loans/{loan.pk}/"),
             ("officer: a borrower", "bench-web-officer", f"/staff/borrowers/{loan.borrower_id}/"),
             ("officer: a loan", "bench-web-officer", f"/staff/loans/{loan.pk}/")]
    cookies: dict[str, list[dict]] = {}
    for _, user, _ in pages:
        if user and user not in cookies:
            sess = requests.Session()
            login(sess, fx.base, user)
            cookies[user] = [{"name": c.name, "value": c.value, "url": fx.base} for c in sess.cookies]
    static = requests.get(fx.base + "/login/", timeout=30)
    results: dict[tuple[str, str], list[dict]] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
            "--disable-component-update"])
        for run in range(args.runs):
            for label, user, path in pages:
                context = browser.new_context(viewport={"width": 412, "height": 823}, device_scale_factor=1.75,
                                              is_mobile=True, has_touch=True)
                if user:
                    context.add_cookies(cookies[user])
                page = context.new_page()
                throttle(context, page)
                results.setdefault((label, "cold"), []).append(load(page, fx.base + path))
                time.sleep(1)
                results.setdefault((label, "warm"), []).append(load(page, fx.base + path))
                context.close()
            print(f"run {run + 1}/{args.runs}: cold and warm loads done", file=sys.stderr)
        if args.revisit_after:
            # one context per page, all first loaded, then all revisited after the wait (one wait for every page)
            opened = []
            for label, user, path in pages:
                context = browser.new_context(viewport={"width": 412, "height": 823}, is_mobile=True)
                if user:
                    context.add_cookies(cookies[user])
                page = context.new_page()
                throttle(context, page)
                load(page, fx.base + path)
                opened.append((label, path, context, page))
            print(f"revisit: waiting {args.revisit_after:.0f} s", file=sys.stderr)
            time.sleep(args.revisit_after)
            for label, path, context, page in opened:
                results.setdefault((label, "revisit"), []).append(load(page, fx.base + path))
                context.close()
        browser.close()

    print(f"\nmachine: {machine()}; node {fx.base} (gunicorn over plain HTTP: no TLS handshake in the figures); "
          f"Chromium {CHROMIUM}, {RTT_MS} ms RTT, {DOWN_KBPS / 1024:.1f} Mbit/s down, {UP_KBPS} kbit/s up "
          f"(DevTools: x{LATENCY_FACTOR} latency, x{THROUGHPUT_FACTOR} throughput), CPU x{CPU_SLOWDOWN}; "
          f"{args.runs} runs; static files' Cache-Control: {static_cache_control(fx.base, static.text)}")
    print(f"{'page':<22} {'load':<8} {'LCP med':>8} {'LCP max':>8} {'FCP med':>8} {'server':>7} "
          f"{'KB sent':>8} {'crit KB':>8} {'requests':>8} {'304s':>5} {'crit trips':>10}")
    worst_lcp, worst_bytes, worst_trips = 0.0, 0, 0
    for (label, way), ms in results.items():
        lcps = [m["lcp"] for m in ms if m["lcp"] is not None]
        if len(lcps) < len(ms):
            raise SystemExit(f"{label} {way}: the browser reported no largest contentful paint")
        worst_lcp = max(worst_lcp, max(lcps))
        worst_bytes = max(worst_bytes, max(m["critical_bytes"] for m in ms))
        worst_trips = max(worst_trips, max(m["critical_trips"] for m in ms))
        med = {key: median_of(ms, key) for key in ("fcp", "server", "bytes", "critical_bytes", "network",
                                                      "revalidated", "critical_trips")}
        print(f"{label:<22} {way:<8} {statistics.median(lcps):>8.0f} {max(lcps):>8.0f} {med['fcp']:>8.0f} "
              f"{med['server']:>7.1f} {med['bytes'] / 1024:>8.1f} {med['critical_bytes'] / 1024:>8.1f} "
              f"{med['network']:>8.0f} {med['revalidated']:>5.0f} {med['critical_trips']:>10.0f}")
    verdict = [f"LCP max {worst_lcp:.0f} ms ({'within' if worst_lcp <= LCP_TARGET_MS else 'OVER'} 3,000 ms)",
               (f"critical-path bytes max {worst_bytes / 1024:.1f} KB "
                f"({'within' if worst_bytes <= CRITICAL_BYTES_TARGET else 'OVER'} 150 KB)"),
               (f"critical-path round trips max {worst_trips} "
                f"({'within' if worst_trips <= CRITICAL_TRIPS_TARGET else 'OVER'} 3, after the connection)")]
    print("P3: " + "; ".join(verdict))
    sys.exit(0 if worst_lcp <= LCP_TARGET_MS and worst_bytes <= CRITICAL_BYTES_TARGET
             and worst_trips <= CRITICAL_TRIPS_TARGET else 1)


def median_of(ms: list[dict], key: str) -> float:
    """Median of ``key`` over the loads that report it (NaN if none: Chromium leaves out a paint it skipped)."""
    known = [m[key] for m in ms if m[key] is not None]
    return statistics.median(known) if known else float("nan")


def static_cache_control(base: str, html: str) -> str:
    import re

    out = []
    for href in re.findall(r'(?:href|src)="(/static/[^"]+)"', html):
        r = requests.head(base + href, timeout=30, headers={"Accept-Encoding": "gzip"})
        out.append(f"{href.rsplit('/', 1)[-1]} {r.headers.get('Cache-Control', '-')!r}")
    return ", ".join(out)


if __name__ == "__main__":
    main()
