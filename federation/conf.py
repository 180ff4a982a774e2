"""Federation settings: ``settings.LETSEMA_FEDERATION`` over these defaults (see docs/federation.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

DEFAULTS: dict[str, Any] = {
    # A signed request is accepted while now - created <= max_age and created - now <= clock_skew.
    "max_age_seconds": 300,
    "clock_skew_seconds": 30,
    # Fan-out: every peer gets at most this long; the whole call returns within it (+ a few ms).
    "peer_timeout_seconds": 0.3,
    # ...or, for the peers named here, this long (a far peer: 3 x its round trip + 50 ms with TLS); the call then
    # returns within the longest deadline of the peers it asks (docs/federation.md, far peers).
    "peer_timeouts": {},
    # ...but a request may finish in its pool thread up to this long after it started (its answer unused), so
    # that the connection it opened to a far peer is kept alive for the next call (docs/federation.md, far peers).
    "peer_finish_seconds": 2.0,
    "fanout_max_workers": 16,
    "max_response_bytes": 1024 * 1024,
    # Per-peer backoff after a failure: initial * multiplier^(failures-1), times a jitter in [low, high], capped.
    "backoff_initial_seconds": 5.0,
    "backoff_multiplier": 2.0,
    "backoff_max_seconds": 300.0,
    "backoff_jitter": (0.8, 1.4),
    # Peer directory cache.
    "directory_ttl_seconds": 30.0,
    "directory_min_refresh_seconds": 2.0,
    # A key replaced by `federation_publish` stays valid this long (its not_after).
    "rotation_grace_seconds": 7 * 24 * 3600,
    # Nonces and shared backoff state. None: the district's broker database (CELERY_BROKER_URL).
    "redis_url": None,
    "redis_prefix": "letsema:federation:",
    # None: <secrets dir>/node_ed25519.key (config.secrets.secrets_dir).
    "private_key_file": None,
    # TLS to peers is always verified: against certifi's CAs, or this CA bundle file (a private network CA).
    "ca_bundle": None,
}


def parse_peer_timeouts(text: str) -> dict[str, float]:
    """``"leribe=0.6,mohales_hoek=0.45"`` (``LETSEMA_FEDERATION_PEER_TIMEOUTS``) -> ``{"leribe": 0.6, ...}``;
    ValueError naming the bad entry (a district code, ``=``, seconds above 0 and at most 10)."""
    out: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in (text or "").split(","))):
        district, _, seconds = item.partition("=")
        try:
            value = float(seconds)
        except ValueError:
            value = -1.0
        if not district.strip().isidentifier() or not 0 < value <= 10:
            raise ValueError(f"LETSEMA_FEDERATION_PEER_TIMEOUTS: {item!r} is not <district>=<seconds, 0 to 10>")
        out[district.strip()] = value
    return out


def get(name: str) -> Any:
    from django.conf import settings

    overrides = getattr(settings, "LETSEMA_FEDERATION", {}) or {}
    if name in overrides and overrides[name] is not None:
        return overrides[name]
    if name == "redis_url":
        return settings.CELERY_BROKER_URL
    if name == "private_key_file":
        from config.secrets import secrets_dir

        return Path(secrets_dir(settings.DISTRICT.code)) / "node_ed25519.key"
    return DEFAULTS[name]


def own_district() -> str:
    from django.conf import settings

    return settings.DISTRICT.code
