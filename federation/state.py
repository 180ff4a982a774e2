"""Shared federation state in Redis (the district's broker database unless ``redis_url`` says otherwise):
replay nonces and per-peer backoff. Short socket timeouts: a slow Redis must not stall a request for long."""

from __future__ import annotations

import redis

from federation import conf
from federation.errors import NonceStoreUnavailable
from node.core import redis_client as shared


def redis_client() -> redis.Redis:
    return shared.redis_client(conf.get("redis_url"))


def key(*parts: str) -> str:
    return conf.get("redis_prefix") + ":".join(parts)


# SET NX EX the nonce; only when it is new, also delete KEYS[2..] (the origin's backoff state): one round trip.
_CLAIM = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  for i = 2, #KEYS do redis.call('DEL', KEYS[i]) end
  return 1
end
return 0
"""
_claim_script = None


def claim_nonce(origin: str, nonce: str, ttl: int, *, clear: tuple[str, ...] | list[str] = ()) -> bool:
    """True the first time ``(origin, nonce)`` is seen within ``ttl`` seconds (SET NX EX). When it is, the Redis
    keys in ``clear`` are deleted in the same round trip (a verified request from a peer clears its backoff)."""
    global _claim_script
    try:
        if not clear:
            return bool(redis_client().set(key("nonce", origin, nonce), b"1", nx=True, ex=max(1, int(ttl))))
        if _claim_script is None:
            _claim_script = redis_client().register_script(_CLAIM)
        return bool(_claim_script(keys=[key("nonce", origin, nonce), *clear], args=[max(1, int(ttl))]))
    except redis.RedisError as exc:
        raise NonceStoreUnavailable("Replay protection is unavailable right now; try again shortly.",
                                    details={"reason": type(exc).__name__}) from None
