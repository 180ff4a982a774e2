"""Helpers for federation tests and the federation benchmark: a stub peer server, signing as a test-cluster
district, and throw-away districts in the ring's node directory."""

from __future__ import annotations

import json
import secrets
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cluster.profiles import TEST
from federation.keys import load_private_key, public_key_pem
from federation.peers import (
    ACTIVE,
    PeerKey,
    RingEntry,
    ring_entry_delete,
    ring_entry_write,
)
from federation.signing import sign_request


class StubPeer:
    """A tiny HTTP peer on 127.0.0.1 in a thread. ``mode``: ``ok`` (answers a ping-shaped JSON at once), ``slow``
    (the same after ``delay`` seconds), or an HTTP status such as ``404``/``401``/``429``/``500``.
    It never checks signatures; it records what it received in ``hits``."""

    def __init__(self, district: str, mode: str = "slow", delay: float = 2.0, retry_after: int | None = None):
        self.district, self.mode, self.delay, self.retry_after = district, mode, delay, retry_after
        self.hits: list[dict] = []
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with stub._lock:
                    stub.hits.append({"method": self.command, "path": self.path, "headers": dict(self.headers),
                                      "body": body, "at": time.monotonic()})
                mode = stub.mode
                if mode == "slow":
                    time.sleep(stub.delay)
                if mode in ("ok", "slow"):
                    status, payload = 200, {"schema": 1, "district": stub.district, "origin": "?",
                                            "time": datetime.now(UTC).isoformat()}
                else:
                    status, payload = int(mode), {"code": "stub", "message": "stub", "details": {}}
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    if stub.retry_after is not None:
                        self.send_header("Retry-After", str(stub.retry_after))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout): expected for the slow mode

            do_GET = do_POST = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True, name=f"stub-{district}")

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def hit_count(self) -> int:
        with self._lock:
            return len(self.hits)


def district_key(code: str) -> Ed25519PrivateKey:
    """A test-cluster district's private key (var/test/secrets/<code>/node_ed25519.key)."""
    return load_private_key(TEST.secrets_dir(code) / "node_ed25519.key")


def signed_headers(method: str, url: str, body: bytes = b"", *, origin: str = "maseru", destination: str = "leribe",
                   key_id: str = "ed25519:1", key: Ed25519PrivateKey | None = None, created: int | None = None,
                   nonce: str | None = None) -> dict[str, str]:
    headers = sign_request(method, url, body, destination=destination, origin=origin, key_id=key_id,
                           private_key=key or district_key(origin), created=created, nonce=nonce)
    if body:
        headers["Content-Type"] = "application/json"
    return headers


def unique_district(prefix: str = "fedtest") -> str:
    return f"{prefix}_{secrets.token_hex(4)}"


class RingDistrict:
    """A throw-away district in the ring's node directory, deleted on exit. ``keys``: key id -> (private key,
    not_before, not_after) with times as offsets in seconds from now (None: open)."""

    def __init__(self, keys: dict[str, tuple[Ed25519PrivateKey, float | None, float | None]], *,
                 status: str = ACTIVE, public_url: str = "http://127.0.0.1:1", district: str | None = None):
        self.district = district or unique_district()
        now = datetime.now(UTC)
        self.private = {kid: k for kid, (k, _, _) in keys.items()}
        self.entry = RingEntry(
            self.district, public_url,
            {kid: PeerKey(kid, public_key_pem(k), None if nb is None else now + timedelta(seconds=nb),
                          None if na is None else now + timedelta(seconds=na), "ring")
             for kid, (k, nb, na) in keys.items()},
            status, now, "tests")

    def __enter__(self) -> Self:
        ring_entry_write(self.entry)
        return self

    def __exit__(self, *exc) -> None:
        ring_entry_delete(self.district)
