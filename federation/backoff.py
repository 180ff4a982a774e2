"""Per-peer retry state: a peer that failed is skipped until its retry time (Synapse-style backoff).

After the n-th consecutive failure a peer is *down* for ``initial * multiplier^(n-1)`` seconds times a jitter drawn
from ``[low, high]``, capped at ``max`` (defaults 5 s, x2, 0.8-1.4, 300 s). While it is down the fan-out does not
call it at all. When its retry time has passed, exactly one caller probes it (a lease of the call's timeout, held
in-process and in Redis with ``SET NX PX``); everyone else keeps skipping it until the probe ends. A success — an
answer from the peer, or a valid signed request *from* the peer — clears the state. A 429 or 401 counts as a
failure (429 honours ``Retry-After``); other 4xx prove the peer is up and count as a success for backoff.

State lives in this process and, when Redis answers, in Redis (hash ``<prefix>backoff:<district>`` with
``failures``, ``retry_at`` as Unix time, ``last_error``), so every gunicorn worker and the Celery worker of a
node share one view. Redis errors fall back to the in-process copy; they never fail a fan-out.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import redis

from federation import conf, state

log = logging.getLogger("letsema.federation")


@dataclass(frozen=True)
class BackoffPolicy:
    initial: float = 5.0
    multiplier: float = 2.0
    maximum: float = 300.0
    jitter: tuple[float, float] = (0.8, 1.4)

    @classmethod
    def from_settings(cls) -> BackoffPolicy:
        low, high = conf.get("backoff_jitter")
        return cls(float(conf.get("backoff_initial_seconds")), float(conf.get("backoff_multiplier")),
                   float(conf.get("backoff_max_seconds")), (float(low), float(high)))

    def interval(self, failures: int, rng: random.Random | None = None) -> float:
        base = self.initial * self.multiplier ** max(0, failures - 1)
        return min(self.maximum, base * (rng or random).uniform(*self.jitter))


@dataclass(frozen=True)
class RetryState:
    failures: int = 0
    retry_at: float = 0.0  # Unix time
    last_error: str = ""

    def down_at(self, now: float) -> bool:
        return self.failures > 0 and now < self.retry_at


CLEAR = RetryState()


class PeerBackoff:
    def __init__(self, policy: BackoffPolicy | None = None, *, shared: bool = True, namespace: str = "backoff",
                 clock: Callable[[], float] = time.time):
        self._policy = policy
        self.shared = shared
        self.namespace = namespace
        self.clock = clock
        self._lock = threading.Lock()
        self._local: dict[str, RetryState] = {}
        self._probe_until: dict[str, float] = {}
        self._redis_warned_at = 0.0

    @property
    def policy(self) -> BackoffPolicy:
        if self._policy is None:
            self._policy = BackoffPolicy.from_settings()
        return self._policy

    def _k(self, district: str) -> str:
        return state.key(self.namespace, district)

    def _pk(self, district: str) -> str:
        return state.key(self.namespace, "probe", district)

    def _redis_failed(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._redis_warned_at > 60:
            self._redis_warned_at = now
            log.warning("federation backoff: Redis unavailable, using this process's state only",
                        extra={"reason": f"{type(exc).__name__}: {exc}"[:200]})

    # --- reading -----------------------------------------------------------------------------------
    def states(self, districts: Iterable[str]) -> dict[str, RetryState]:
        districts = list(districts)
        with self._lock:
            out = {d: self._local.get(d, CLEAR) for d in districts}
        if not self.shared or not districts:
            return out
        try:
            pipe = state.redis_client().pipeline(transaction=False)
            for d in districts:
                pipe.hgetall(self._k(d))
            rows = pipe.execute()
        except redis.RedisError as exc:
            self._redis_failed(exc)
            return out
        with self._lock:
            for d, row in zip(districts, rows, strict=True):
                st = _from_hash(row)
                out[d] = st
                if st.failures:
                    self._local[d] = st
                else:
                    self._local.pop(d, None)
        return out

    def state(self, district: str) -> RetryState:
        return self.states([district])[district]

    # --- deciding --------------------------------------------------------------------------------
    def admit(self, district: str, st: RetryState, lease: float) -> bool:
        """May we call ``district`` now? Down: no. Retry time passed: only the caller that wins the probe lease."""
        if st.failures == 0:
            return True
        now = self.clock()
        if now < st.retry_at:
            return False
        with self._lock:
            if self._probe_until.get(district, 0.0) > now:
                return False
            self._probe_until[district] = now + lease
        if self.shared:
            try:
                if not state.redis_client().set(self._pk(district), b"1", nx=True, px=max(1, int(lease * 1000))):
                    return False
            except redis.RedisError as exc:
                self._redis_failed(exc)
        return True

    # --- recording -------------------------------------------------------------------------------
    def record_success(self, district: str, known: RetryState | None = None) -> None:
        """Clear the state. ``known``: the state read before the call (skips Redis when it was already clear)."""
        with self._lock:
            self._local.pop(district, None)
            self._probe_until.pop(district, None)
        if self.shared and (known is None or known.failures > 0):
            try:
                state.redis_client().delete(self._k(district), self._pk(district))
            except redis.RedisError as exc:
                self._redis_failed(exc)

    def shared_keys(self, district: str) -> tuple[str, ...]:
        """The Redis keys holding ``district``'s state (for callers that clear them in their own round trip)."""
        return (self._k(district), self._pk(district)) if self.shared else ()

    def clear_local(self, district: str) -> None:
        with self._lock:
            self._local.pop(district, None)
            self._probe_until.pop(district, None)

    def record_failure(self, district: str, reason: str, retry_after: float | None = None) -> RetryState:
        """Count a failed call and back the peer off. Failures of calls that were already in flight when another one
        marked the peer down belong to the same outage: they count once (otherwise a burst of 16 concurrent
        time-outs would jump the interval to the cap at once and keep a peer that only needed a few new connections
        away for minutes). The probe after the retry time counts again, so each failed round doubles the wait."""
        now = self.clock()
        failures = None
        if self.shared:
            try:
                failures = int(state.redis_client().eval(_COUNT_FAILURE, 1, self._k(district), repr(now),
                                                         repr(now + self.policy.initial)))
            except redis.RedisError as exc:
                self._redis_failed(exc)
        if failures is None:
            with self._lock:
                known = self._local.get(district, CLEAR)
                failures = -1 if known.failures and now < known.retry_at else known.failures + 1
        if failures == -1:  # already down: this one belongs to the same outage
            with self._lock:
                st = self._local.get(district)
            return st if st is not None else self.state(district)
        interval = self.policy.interval(failures)
        if retry_after is not None:
            interval = max(interval, min(float(retry_after), self.policy.maximum))
        st = RetryState(failures, now + interval, reason[:200])
        with self._lock:
            self._local[district] = st
            self._probe_until.pop(district, None)
        if self.shared:
            try:
                pipe = state.redis_client().pipeline(transaction=False)
                pipe.hset(self._k(district), mapping={"retry_at": repr(st.retry_at), "last_error": st.last_error})
                pipe.expire(self._k(district), int(interval + self.policy.maximum) + 1)
                pipe.delete(self._pk(district))
                pipe.execute()
            except redis.RedisError as exc:
                self._redis_failed(exc)
        log.info("federation peer marked down", extra={"peer": district, "failures": failures,
                                                        "retry_in_s": round(interval, 2), "reason": st.last_error})
        return st

    def forget(self, districts: Iterable[str]) -> None:
        """Drop every trace of ``districts`` (tests, benchmarks)."""
        for d in districts:
            self.record_success(d)


# Count a failure unless the peer is down already (``retry_at`` in the future: -1). Atomic, so calls failing at the
# same instant in several processes count once too; the provisional ``retry_at`` (ARGV[2]) closes the window until
# the caller writes the jittered one.
_COUNT_FAILURE = """
local retry_at = tonumber(redis.call('HGET', KEYS[1], 'retry_at') or '0') or 0
if retry_at > tonumber(ARGV[1]) and (tonumber(redis.call('HGET', KEYS[1], 'failures') or '0') or 0) > 0 then
  return -1
end
redis.call('HSET', KEYS[1], 'retry_at', ARGV[2])
return redis.call('HINCRBY', KEYS[1], 'failures', 1)
"""


def _from_hash(row: dict) -> RetryState:
    if not row:
        return CLEAR
    try:
        failures = int(row.get(b"failures", b"0"))
        retry_at = float(row.get(b"retry_at", b"0"))
    except ValueError:
        return CLEAR
    return RetryState(failures, retry_at, row.get(b"last_error", b"").decode("utf-8", "replace"))


_default: PeerBackoff | None = None
_default_lock = threading.Lock()


def default_backoff() -> PeerBackoff:
    global _default
    with _default_lock:
        if _default is None:
            _default = PeerBackoff()
        return _default
