"""Helpers for federation tests and the federation benchmark: a stub peer server, signing as a test-cluster
district, and throw-away districts in the ring's node directory."""

from __future__ import annotations

import json
import queue
import secrets
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cluster.profiles import TEST
from config.district import REPO_ROOT
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


class FaultProxy:
    """A TCP proxy in a thread, in front of a real node: ``mode`` is ``pass`` (forward both ways), ``delay`` (hold
    each request ``delay`` seconds, then forward), ``latency`` (a path of round-trip time ``rtt`` seconds: a new
    connection waits one ``rtt`` before its first byte goes through, as a TCP handshake would, and every chunk
    waits half of it each way), ``reset`` (close the connection with a TCP reset) or ``refuse`` (the listening
    socket is closed: connection refused). The mode may change while it runs; it applies to kept-alive connections
    too, from their next request."""

    def __init__(self, target: tuple[str, int], mode: str = "pass", delay: float = 2.0, rtt: float = 0.15):
        import socket

        self.target, self.mode, self.delay, self.rtt = target, mode, delay, rtt
        self.connections = 0
        self._socket = socket
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True, name="fault-proxy")

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._close_listener()

    def _close_listener(self) -> None:
        try:
            self._listener.close()
        except OSError:
            pass

    def refuse(self) -> None:
        self.mode = "refuse"
        self._close_listener()  # nothing listens on the port any more

    def _serve(self) -> None:
        self._listener.settimeout(0.2)
        while not self._stop.is_set() and self.mode != "refuse":
            try:
                conn, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn) -> None:
        import struct

        sock = self._socket
        if self.mode == "reset":
            conn.setsockopt(sock.SOL_SOCKET, sock.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
            return
        if self.mode == "delay":
            time.sleep(self.delay)
        elif self.mode == "latency":
            time.sleep(self.rtt)  # the handshake's round trip
        try:
            upstream = sock.create_connection(self.target, timeout=10)
        except OSError:
            conn.close()
            return
        for end in (conn, upstream):  # forward each chunk at once, as the node itself does (gunicorn: TCP_NODELAY)
            end.setsockopt(sock.IPPROTO_TCP, sock.TCP_NODELAY, 1)

        def pump(src, dst, inbound=False):
            # in ``latency`` mode what is read goes out half a round trip after it arrived, whatever came before it
            # (back-to-back segments are not each delayed again): a reader stamps chunks, a sender releases them
            line: queue.Queue = queue.Queue()

            def release():
                while (item := line.get()) is not None:
                    due, data = item
                    time.sleep(max(0.0, due - time.monotonic()))
                    try:
                        dst.sendall(data)
                    except OSError:
                        return

            sender = threading.Thread(target=release, daemon=True)
            sender.start()
            try:
                while data := src.recv(65536):
                    if inbound and self.mode in ("reset", "refuse"):  # a kept-alive connection is cut too
                        conn.setsockopt(sock.SOL_SOCKET, sock.SO_LINGER, struct.pack("ii", 1, 0))
                        conn.close()
                        return
                    if inbound and self.mode == "delay":  # so is every request on it delayed
                        time.sleep(self.delay)
                    elif self.mode == "latency":  # half the round trip each way, as a delay line
                        line.put((time.monotonic() + self.rtt / 2, data))
                        continue
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                line.put(None)
                sender.join(timeout=5)
                for s in (src, dst):
                    try:
                        s.shutdown(sock.SHUT_RDWR)
                    except OSError:
                        pass

        threading.Thread(target=pump, args=(upstream, conn), daemon=True).start()
        pump(conn, upstream, inbound=True)


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


def manage(profile, code: str, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    """``manage.py`` run as a test-cluster district's node (its configuration, secrets and key)."""
    return subprocess.run([sys.executable, str(REPO_ROOT / "manage.py"), *args], env=profile.env_for(code),
                          capture_output=True, text=True, timeout=timeout, check=False)


def staff_auth(profile, code: str) -> dict[str, str]:
    """A new MFI with an admin on a running node of the test cluster; the admin's bearer header for that node."""
    mfi = f"fed-{uuid.uuid4().hex[:6]}"
    res = manage(profile, code, "onboard_mfi", "--code", mfi, "--name", "Federation Test MFI",
                 "--registration-number", f"R-{mfi}", "--rate-cap", "60", "--admin-username", f"{mfi}.admin",
                 "--admin-first-name", "Palesa", "--admin-last-name", "Mohapi")
    assert res.returncode == 0, res.stderr[-2000:]
    password = res.stdout.strip().rsplit(" ", 1)[-1]
    tok = requests.post(f"{profile.district(code).public_url}/api/v1/auth/token/",
                        json={"username": f"{mfi}.admin", "password": password}, timeout=20)
    assert tok.status_code == 200, tok.text
    return {"Authorization": f"Bearer {tok.json()['access']}"}


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
