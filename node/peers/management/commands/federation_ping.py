"""Ping every peer (or the named ones) with a signed request and print who answered: a federation smoke test.

    manage.py federation_ping                 # all active peers in the directory
    manage.py federation_ping leribe --timeout 2

Prints the fan-out result as JSON (``partial``, ``answered`` with each peer's clock, ``missing`` with reasons) and
exits 1 when a peer is missing.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from federation.fanout import fanout
from federation.peers import get_directory


class Command(BaseCommand):
    help = "Send a signed GET /_federation/v1/ping to peers and print the answers."

    def add_arguments(self, parser):
        parser.add_argument("districts", nargs="*")
        parser.add_argument("--timeout", type=float, default=None, help="per-peer timeout in seconds")

    def handle(self, *args, districts: list[str], timeout: float | None, **options):
        directory = get_directory()
        peers = directory.fanout_peers(settings.DISTRICT.code)
        if districts:
            unknown = set(districts) - {p.district for p in peers}
            if unknown:
                raise CommandError(f"not active peers in the directory: {', '.join(sorted(unknown))}")
            peers = [p for p in peers if p.district in districts]
        result = fanout("GET", "/_federation/v1/ping", peers=peers, timeout=timeout)
        self.stdout.write(json.dumps({**result.to_json(), "ms": round(result.elapsed_ms, 1)}, indent=2))
        if result.partial:
            raise SystemExit(1)
