"""One Redis client per URL per process, built on first use, with short socket timeouts: callers on a request's path
(federation nonces and backoff, the outbox wake-up) must never stall long on a slow or absent Redis."""

from __future__ import annotations

import threading

import redis

_lock = threading.Lock()
_clients: dict[str, redis.Redis] = {}


def redis_client(url: str) -> redis.Redis:
    with _lock:
        client = _clients.get(url)
        if client is None:
            client = _clients[url] = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5,
                                                          health_check_interval=30)
        return client
