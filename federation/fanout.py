"""The one fan-out to peer nodes: concurrent, bounded, deadline-limited, backoff-aware, signed.

``FanoutClient.request(method, path, payload, parse=...)`` signs one request per peer (federation.signing) and sends
them at once through a bounded thread pool. Every peer gets a deadline from the start of the call
(``peer_timeout_seconds``, or its own in ``peer_timeouts``: a far peer), and the call returns at the latest of its
peers' deadlines at most (plus a few ms): a slow peer is reported as ``timeout``, never waited for. Peers that are down (federation.backoff) are skipped without a request.

The result always says which peers answered and why the others are missing::

    FanoutResult(partial=True, answered={"leribe": {...}}, missing={"mohales_hoek": "timeout"})

Missing reasons (stable): ``backoff`` (down, skipped until its retry time), ``timeout``, ``unreachable``
(connection refused/reset, DNS, TLS), ``http_<status>``, ``bad_response`` (not JSON, too large, or refused by
``parse``), ``insecure_url`` (http to anything but 127.0.0.x; never attempted), ``internal_error`` (a bug on this side;
logged, the peer is not blamed). Failures that mark a peer down:
timeout, unreachable, 5xx, 401, 429, bad_response. Other 4xx mean the peer is up (its state is cleared).

Never call this inside a database transaction (ARCHITECTURE.md, Boundaries).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import requests

from federation import conf
from federation.backoff import PeerBackoff, RetryState, default_backoff
from federation.peers import Peer, get_directory, url_allowed
from federation.signing import LocalSigner, local_signer

log = logging.getLogger("letsema.federation")

_GRACE = 0.02  # lets a request that times out exactly at the deadline report its own reason


class BadResponse(ValueError):
    """Raised by a ``parse`` callable: the answer does not match the expected schema."""


@dataclass
class FanoutResult:
    answered: dict[str, Any] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    elapsed_ms: float = 0.0

    @property
    def partial(self) -> bool:
        return bool(self.missing)

    def to_json(self) -> dict:
        return {"partial": self.partial, "answered": self.answered, "missing": dict(sorted(self.missing.items()))}


@dataclass(frozen=True)
class _Outcome:
    ok: bool
    payload: Any = None
    reason: str = ""
    mark_down: bool = False
    retry_after: float | None = None


class FanoutClient:
    def __init__(self, *, backoff: PeerBackoff | None = None, timeout: float | None = None,
                 max_workers: int | None = None, signer: LocalSigner | None = None,
                 peer_timeouts: dict[str, float] | None = None):
        self._backoff = backoff
        self._timeout = timeout
        self._peer_timeouts = peer_timeouts
        self._max_workers = max_workers
        self._signer = signer
        self._pool: ThreadPoolExecutor | None = None
        self._http: requests.adapters.HTTPAdapter | None = None
        self._pool_lock = threading.Lock()
        self._local = threading.local()

    @property
    def backoff(self) -> PeerBackoff:
        return self._backoff or default_backoff()

    @property
    def timeout(self) -> float:
        return float(self._timeout if self._timeout is not None else conf.get("peer_timeout_seconds"))

    def timeout_for(self, district: str) -> float:
        """A peer's deadline: its own (``peer_timeouts``: a far peer) or the default."""
        per = self._peer_timeouts if self._peer_timeouts is not None else (conf.get("peer_timeouts") or {})
        return float(per.get(district, self.timeout))

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                workers = int(self._max_workers or conf.get("fanout_max_workers"))
                self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="federation-fanout")
            return self._pool

    def _adapter(self) -> requests.adapters.HTTPAdapter:
        """One connection pool per peer, shared by every thread of the pool: a kept-alive connection to a peer
        serves whichever thread calls it next. (With a pool per thread, a peer's request landed on one of
        ``fanout_max_workers`` threads, most of them without a connection to it yet: each new connection costs one
        more round trip — two with TLS — which a far peer's deadline cannot afford: bench/federation_wan.py.)"""
        with self._pool_lock:
            if self._http is None:
                workers = int(self._max_workers or conf.get("fanout_max_workers"))
                self._http = requests.adapters.HTTPAdapter(pool_connections=16, pool_maxsize=workers, max_retries=0)
            return self._http

    def _session(self) -> requests.Session:
        s = getattr(self._local, "session", None)
        if s is None:  # a Session per thread (its cookie jar and settings); the connections are the shared pool's
            s = requests.Session()
            s.trust_env = False  # no proxies or CA bundles from the environment between nodes
            adapter = self._adapter()
            s.mount("http://", adapter)
            s.mount("https://", adapter)
            self._local.session = s
        return s

    # --- one call ------------------------------------------------------------------------------
    def request(self, method: str, path: str, payload: dict | None = None, *, peers: Iterable[Peer] | None = None,
                timeout: float | None = None,
                parse: Callable[[str, Any], Any] | None = None) -> FanoutResult:
        """Send ``method path`` (JSON ``payload``) to ``peers`` (default: every active peer but this node)."""
        started = time.monotonic()
        signer = self._signer or local_signer()
        if peers is None:
            peers = get_directory().fanout_peers(signer.district)
        peers = [p for p in peers if p.district != signer.district]
        body = b"" if payload is None else json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        result = FanoutResult()
        states = self.backoff.states(p.district for p in peers)
        futures: dict[Future, Peer] = {}
        deadlines: dict[Future, float] = {}
        for peer in peers:
            st = states.get(peer.district, RetryState())
            if not url_allowed(peer.public_url):
                result.missing[peer.district] = "insecure_url"
                continue
            limit = self.timeout_for(peer.district) if timeout is None else float(timeout)
            if not self.backoff.admit(peer.district, st, lease=limit + 1.0):
                result.missing[peer.district] = "backoff"
                continue
            deadline = started + limit
            fut = self._executor().submit(self._safe_call, signer, peer, method, path, body, deadline, parse)
            futures[fut], deadlines[fut] = peer, deadline
        pending, expired = set(futures), []
        while pending:
            now = time.monotonic()
            for fut in [f for f in pending if deadlines[f] + _GRACE <= now]:  # its own deadline has passed
                pending.discard(fut)
                expired.append(fut)
            if not pending:
                break
            left = min(deadlines[f] for f in pending) + _GRACE - now
            done, pending = wait(pending, timeout=left, return_when=FIRST_COMPLETED)
            for fut in done:
                self._settle(result, futures[fut], fut.result(), states)
        for fut in expired:
            fut.cancel()
            peer = futures[fut]
            result.missing[peer.district] = "timeout"
            self.backoff.record_failure(peer.district, "timeout")
        result.elapsed_ms = (time.monotonic() - started) * 1000
        if any(reason != "backoff" for reason in result.missing.values()):  # skips alone are not news
            log.info("federation fan-out partial", extra={
                "path": path, "answered": ",".join(sorted(result.answered)),
                "missing": ",".join(f"{d}:{r}" for d, r in sorted(result.missing.items())),
                "ms": round(result.elapsed_ms, 1)})
        return result

    def _settle(self, result: FanoutResult, peer: Peer, outcome: _Outcome, states: dict[str, RetryState]) -> None:
        if outcome.ok:
            result.answered[peer.district] = outcome.payload
            self.backoff.record_success(peer.district, states.get(peer.district))
            return
        result.missing[peer.district] = outcome.reason
        if outcome.mark_down:
            self.backoff.record_failure(peer.district, outcome.reason, outcome.retry_after)
        else:
            self.backoff.record_success(peer.district, states.get(peer.district))

    def _safe_call(self, *args) -> _Outcome:
        try:
            return self._call(*args)
        except Exception:  # a bug here must not break the whole fan-out; the peer is not blamed
            log.exception("federation fan-out: unexpected error calling a peer", extra={"peer": args[1].district})
            return _Outcome(False, reason="internal_error", mark_down=False)

    def _call(self, signer: LocalSigner, peer: Peer, method: str, path: str, body: bytes, deadline: float,
              parse: Callable[[str, Any], Any] | None) -> _Outcome:
        left = deadline - time.monotonic()
        if left <= 0:
            return _Outcome(False, reason="timeout", mark_down=True)
        url = peer.public_url.rstrip("/") + path
        headers = signer.sign(method, url, body, destination=peer.district)
        headers["Accept"] = "application/json"
        if body:
            headers["Content-Type"] = "application/json"
        limit = int(conf.get("max_response_bytes"))
        verify = conf.get("ca_bundle") or True  # never False
        # The caller stops waiting at the deadline; this thread may go on up to ``peer_finish_seconds``, so that a
        # new connection it is opening (one or two round trips more than a kept-alive one: a far peer) is finished
        # and kept for the next call, whose probe then fits the deadline. Its late answer is not used and does not
        # clear the peer's backoff (a slow peer stays skipped).
        finish = max(left, float(conf.get("peer_finish_seconds")))
        give_up = time.monotonic() + finish
        try:
            with self._session().request(method, url, data=body or None, headers=headers, timeout=(finish, finish),
                                         verify=verify, allow_redirects=False, stream=True) as r:
                content = bytearray()
                for chunk in r.iter_content(16384):
                    content += chunk
                    if len(content) > limit:
                        return _Outcome(False, reason="bad_response", mark_down=True)
                    if time.monotonic() > give_up:
                        return _Outcome(False, reason="timeout", mark_down=True)
                if time.monotonic() > deadline + _GRACE:  # finished after the caller gave up: nobody reads it
                    return _Outcome(False, reason="timeout", mark_down=True)
                status = r.status_code
                retry_after = _retry_after(r.headers.get("Retry-After"))
        except requests.Timeout:
            return _Outcome(False, reason="timeout", mark_down=True)
        except requests.RequestException as exc:
            log.debug("federation peer unreachable", extra={"peer": peer.district, "reason": str(exc)[:200]})
            return _Outcome(False, reason="unreachable", mark_down=True)
        if status in (401, 429) or status >= 500:
            return _Outcome(False, reason=f"http_{status}", mark_down=True, retry_after=retry_after)
        if status >= 300:
            return _Outcome(False, reason=f"http_{status}", mark_down=False)
        try:
            data = json.loads(bytes(content))
            return _Outcome(True, payload=parse(peer.district, data) if parse else data)
        except (ValueError, BadResponse) as exc:
            log.warning("federation peer answered outside the schema", extra={"peer": peer.district,
                                                                              "reason": str(exc)[:200]})
            return _Outcome(False, reason="bad_response", mark_down=True)


def _retry_after(value: str | None) -> float | None:
    if value and value.strip().isdigit():
        return float(value.strip())
    return None


_default: FanoutClient | None = None
_default_lock = threading.Lock()


def default_client() -> FanoutClient:
    global _default
    with _default_lock:
        if _default is None:
            _default = FanoutClient()
        return _default


def fanout(method: str, path: str, payload: dict | None = None, **kwargs) -> FanoutResult:
    return default_client().request(method, path, payload, **kwargs)
