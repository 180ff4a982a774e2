"""Outbox -> ring lag at steady load (issue #6: p99 under 1 s).

    .venv/bin/python bench/outbox_lag.py --profile test [--rate 10] [--seconds 60]

Posts repayments through the HTTP API of one node at a fixed rate (open loop: a request is sent every 1/rate
seconds whatever the previous ones do, from a few client threads), each one writing a credit event to the node's
outbox in its transaction. The node's own Celery worker and beat ship them to the ring, as in production. The lag of
an event is ``shipped_at - created_at`` of its outbox row: from the insert inside the repayment's transaction to the
moment the shipper had it written to the ring at QUORUM. Set-up as ``bench/repayments_api.py`` (its MFI and loans).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from common import machine, pct  # noqa: E402  (bench/common.py, next to this script)
from repayments_api import setup  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", choices=["demo", "test"], default="demo")
    ap.add_argument("--rate", type=float, default=10.0, help="repayments per second")
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--clients", type=int, default=8, help="client threads sharing the schedule")
    args = ap.parse_args()
    loans, token, settings = setup(args.profile, args.clients * 3)
    from django.utils import timezone

    from replication.models import OutboxEvent

    base = settings.DISTRICT.public_url
    n = int(args.rate * args.seconds)
    lock = threading.Lock()
    next_slot = [0]
    late, errors = [0], {}
    start = time.monotonic() + 1.0
    window_from = timezone.now()

    def client(c: int) -> None:
        sess = requests.Session()
        sess.headers["Authorization"] = f"Bearer {token}"
        mine = loans[c * 3:(c + 1) * 3]
        i = 0
        while True:
            with lock:
                slot = next_slot[0]
                next_slot[0] += 1
            if slot >= n:
                return
            at = start + slot / args.rate
            wait = at - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            elif wait < -0.1:
                with lock:
                    late[0] += 1
            r = sess.post(f"{base}/api/v1/loans/{mine[i % 3]}/repayments", json={
                "amount": "1.00", "payment_date": date.today().isoformat(), "channel": "cash"},
                headers={"Idempotency-Key": uuid.uuid4().hex}, timeout=30)
            i += 1
            if r.status_code != 201:
                with lock:
                    errors[r.status_code] = errors.get(r.status_code, 0) + 1

    threads = [threading.Thread(target=client, args=(c,)) for c in range(args.clients)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    window_to = timezone.now()
    events = OutboxEvent.objects.filter(created_at__gte=window_from, created_at__lte=window_to)
    deadline = time.monotonic() + 60
    while events.filter(shipped_at__isnull=True).exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"{events.filter(shipped_at__isnull=True).count()} events still unshipped after 60 s")
        time.sleep(0.5)
    lags = [(s - c) / timedelta(milliseconds=1) for c, s in events.values_list("created_at", "shipped_at")]
    if not lags:
        raise SystemExit(f"no event was written: errors {errors}")
    print(f"\nmachine: {machine()}; node {base}; ship beat every {settings.CELERY_BEAT_SCHEDULE['ship-outbox']['schedule']} s, "
          f"wake-up after commit: " + (f"{settings.LETSEMA_SHIP_WAKE_MS} ms" if settings.LETSEMA_SHIP_WAKE_MS else "off")
          + " (the node's own settings may differ)")
    print(f"{args.rate:g} repayments/s for {args.seconds} s ({n} sent, {late[0]} sent more than 0.1 s late, errors "
          f"{errors or 'none'}): {len(lags)} outbox events")
    print(f"{'lag ms':>8} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8}")
    print(f"{'':>8} {pct(lags, 50):>8.0f} {pct(lags, 95):>8.0f} {pct(lags, 99):>8.0f} {max(lags):>8.0f}")


if __name__ == "__main__":
    main()
