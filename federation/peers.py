"""The peer directory: which district nodes exist, where they answer, and which keys sign for them.

Two sources, merged (docs/federation.md, "Peer directory"):

1. ``district_configs/*.toml`` (the directory ``config.district.config_dir()`` points at): every district's
   ``public_url`` and its pinned key (``node.key_id`` + ``node.public_key_file``), valid without a window.
2. The ring's ``node_directory`` table (replication/cql/0005): each node publishes its own row
   (``manage.py federation_publish``): public URL, status, and keys ``key_id -> {PEM, not_before, not_after}``.

Merge rule — **configuration wins for the districts it names**: their ``public_url`` and the PEM of their pinned
key id come from the file; the ring may only *add* key ids (a rotation announced before every peer's files
change), *narrow* the pinned key's window (a ring row with the same key id and the same PEM sets its
not_before/not_after, which is how a pinned key is retired) and *suspend* the district. A ring row whose PEM
differs from the pinned one under the same key id is ignored and logged. Districts only in the ring are taken
from the ring as they are.

The merged directory is cached per process for ``directory_ttl_seconds``; a stale copy is served while one
background thread re-reads the ring, and a ring outage keeps the last ring rows it read (configuration entries
never depend on the ring). An unknown key id forces one synchronous re-read, at most every
``directory_min_refresh_seconds``.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cached_property
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from federation import conf
from federation.keys import (
    KeyFileError,
    load_private_key,
    load_public_key_pem,
    public_key_pem,
    raw_public_bytes,
)

log = logging.getLogger("letsema.federation")

ACTIVE, SUSPENDED = "active", "suspended"
STATUSES = (ACTIVE, SUSPENDED)
KEY_ID_RE = re.compile(r"^ed25519:[A-Za-z0-9_]{1,32}$")
DISTRICT_RE = re.compile(r"^[a-z][a-z0-9_]{1,31}$")
_DEV_HOST_RE = re.compile(r"^127\.0\.0\.(25[0-5]|2[0-4]\d|1?\d?\d)$")


# --- model ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PeerKey:
    key_id: str
    public_key_pem: str
    not_before: datetime | None = None
    not_after: datetime | None = None
    source: str = "config"  # config | ring | config+ring

    @cached_property
    def public_key(self) -> Ed25519PublicKey:
        return load_public_key_pem(self.public_key_pem)

    def validity_at(self, t: datetime) -> str:
        """``valid``, ``expired`` (t >= not_after) or ``not_yet_valid`` (t < not_before)."""
        if self.not_after is not None and t >= self.not_after:
            return "expired"
        if self.not_before is not None and t < self.not_before:
            return "not_yet_valid"
        return "valid"

    def to_json(self) -> dict:
        return {"public_key_pem": self.public_key_pem, "not_before": _iso(self.not_before),
                "not_after": _iso(self.not_after)}


@dataclass(frozen=True)
class Peer:
    district: str
    public_url: str
    keys: Mapping[str, PeerKey] = field(default_factory=dict)
    status: str = ACTIVE
    source: str = "config"  # config | ring | config+ring

    @property
    def active(self) -> bool:
        return self.status == ACTIVE


@dataclass(frozen=True)
class Directory:
    peers: Mapping[str, Peer]
    ring_ok: bool = True
    ring_error: str | None = None

    def get(self, district: str) -> Peer | None:
        return self.peers.get(district)

    def key(self, district: str, key_id: str) -> tuple[Peer | None, PeerKey | None]:
        peer = self.peers.get(district)
        return peer, (peer.keys.get(key_id) if peer else None)

    def fanout_peers(self, own: str) -> list[Peer]:
        """Every active district but this one, in name order."""
        return [p for d, p in sorted(self.peers.items()) if d != own and p.active]


def url_allowed(url: str) -> bool:
    """https anywhere; plain http only to 127.0.0.x (the local clusters). TLS is always verified."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if parts.scheme == "https" and parts.hostname:
        return True
    return parts.scheme == "http" and bool(parts.hostname) and bool(_DEV_HOST_RE.match(parts.hostname or ""))


def _iso(t: datetime | None) -> str | None:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z") if t is not None else None


def _parse_time(value) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"expected an ISO 8601 time or null, got {type(value).__name__}")
    t = datetime.fromisoformat(value)
    if t.tzinfo is None:
        raise ValueError("times must carry a UTC offset")
    return t.astimezone(UTC)


# --- source 1: district_configs/ -------------------------------------------------------------------
def config_peers() -> dict[str, Peer]:
    from config.district import DistrictConfigError, all_codes, config_dir, load_file

    peers: dict[str, Peer] = {}
    directory = config_dir()
    for code in all_codes(directory):
        try:
            d = load_file(directory / f"{code}.toml")
        except DistrictConfigError as exc:
            log.error("peer directory: skipping a district configuration", extra={"reason": str(exc)})
            continue
        keys: dict[str, PeerKey] = {}
        try:
            pem = d.public_key_file.read_text(encoding="ascii")
            load_public_key_pem(pem)
            keys[d.key_id] = PeerKey(d.key_id, pem, source="config")
        except (OSError, UnicodeError, KeyFileError) as exc:
            log.error("peer directory: a pinned public key cannot be read",
                      extra={"peer": code, "key_file": str(d.public_key_file), "reason": str(exc)})
        peers[code] = Peer(code, d.public_url, keys, ACTIVE, "config")
    return peers


# --- source 2: the ring's node_directory ------------------------------------------------------------
@dataclass(frozen=True)
class RingEntry:
    district: str
    public_url: str
    keys: Mapping[str, PeerKey]
    status: str
    updated_at: datetime | None = None
    updated_by: str | None = None

    def to_json(self) -> dict:
        return {"district": self.district, "public_url": self.public_url, "status": self.status,
                "keys": {k: v.to_json() for k, v in sorted(self.keys.items())},
                "updated_at": _iso(self.updated_at), "updated_by": self.updated_by}


def _entry_from_row(row) -> RingEntry | None:
    try:
        if not DISTRICT_RE.match(row.district or ""):
            raise ValueError("bad district code")
        if row.status not in STATUSES:
            raise ValueError(f"unknown status {row.status!r}")
        keys: dict[str, PeerKey] = {}
        for key_id, raw in (row.keys or {}).items():
            if not KEY_ID_RE.match(key_id):
                raise ValueError(f"bad key id {key_id!r}")
            data = json.loads(raw)
            if not isinstance(data, dict) or set(data) != {"public_key_pem", "not_before", "not_after"}:
                raise ValueError(f"key {key_id}: expected public_key_pem, not_before, not_after")
            load_public_key_pem(data["public_key_pem"])
            keys[key_id] = PeerKey(key_id, data["public_key_pem"], _parse_time(data["not_before"]),
                                   _parse_time(data["not_after"]), source="ring")
        updated = row.updated_at.replace(tzinfo=UTC) if row.updated_at and row.updated_at.tzinfo is None else row.updated_at
        return RingEntry(row.district, (row.public_url or "").rstrip("/"), keys, row.status, updated, row.updated_by)
    except (ValueError, TypeError, KeyFileError) as exc:
        log.error("peer directory: ignoring a malformed node_directory row",
                  extra={"peer": getattr(row, "district", None), "reason": str(exc)[:300]})
        return None


def _ring_execute(query: str, params: tuple = ()):
    from cassandra.query import SimpleStatement

    from replication.ring import RingUnavailable, get_session

    session, cl = get_session()
    try:
        return session.execute(SimpleStatement(query, consistency_level=cl), params)
    except Exception as exc:  # Unavailable, timeouts, NoHostAvailable
        raise RingUnavailable(f"node directory: {type(exc).__name__}: {str(exc)[:200]}") from exc


_COLUMNS = "district, public_url, keys, status, updated_at, updated_by"


def ring_entries() -> dict[str, RingEntry]:
    rows = _ring_execute(f"SELECT {_COLUMNS} FROM node_directory")  # nosec B608 -- constant columns, values bound
    out = {}
    for row in rows:
        entry = _entry_from_row(row)
        if entry is not None:
            out[entry.district] = entry
    return out


def ring_entry_get(district: str) -> RingEntry | None:
    row = _ring_execute(f"SELECT {_COLUMNS} FROM node_directory WHERE district = %s", (district,)).one()  # nosec B608 -- constant columns, values bound
    return _entry_from_row(row) if row is not None else None


def ring_entry_write(entry: RingEntry) -> None:
    """Write one district's row (the whole row: the keys map is replaced)."""
    if not DISTRICT_RE.match(entry.district) or entry.status not in STATUSES:
        raise ValueError("bad district code or status")
    for key_id in entry.keys:
        if not KEY_ID_RE.match(key_id):
            raise ValueError(f"bad key id {key_id!r}")
    _ring_execute(
        "INSERT INTO node_directory (district, public_url, keys, status, updated_at, updated_by) "
        "VALUES (%s, %s, %s, %s, %s, %s)",
        (entry.district, entry.public_url, {k: json.dumps(v.to_json(), sort_keys=True) for k, v in entry.keys.items()},
         entry.status, entry.updated_at or datetime.now(UTC), entry.updated_by),
    )
    invalidate()


def ring_entry_delete(district: str) -> None:
    _ring_execute("DELETE FROM node_directory WHERE district = %s", (district,))
    invalidate()


# --- merge ---------------------------------------------------------------------------------------
def _same_key(a: PeerKey, b: PeerKey) -> bool:
    try:
        return raw_public_bytes(a.public_key) == raw_public_bytes(b.public_key)
    except KeyFileError:
        return False


def merge(configured: Mapping[str, Peer], ring: Mapping[str, RingEntry]) -> dict[str, Peer]:
    merged: dict[str, Peer] = {}
    for district in sorted(set(configured) | set(ring)):
        c, r = configured.get(district), ring.get(district)
        if r is None:
            assert c is not None
            merged[district] = c
            continue
        if c is None:
            merged[district] = Peer(district, r.public_url, dict(r.keys), r.status, "ring")
            continue
        keys = dict(c.keys)
        for key_id, rk in r.keys.items():
            pinned = keys.get(key_id)
            if pinned is None:
                keys[key_id] = rk
            elif _same_key(pinned, rk):
                keys[key_id] = replace(pinned, not_before=rk.not_before, not_after=rk.not_after, source="config+ring")
            else:
                log.warning("peer directory: the ring's key differs from the pinned one; the pinned key wins",
                            extra={"peer": district, "key_id": key_id})
        if r.public_url and r.public_url != c.public_url:
            log.info("peer directory: the ring's public_url differs from the configured one; configuration wins",
                     extra={"peer": district, "ring_url": r.public_url, "config_url": c.public_url})
        merged[district] = Peer(district, c.public_url, keys, SUSPENDED if r.status == SUSPENDED else ACTIVE,
                                "config+ring")
    return merged


# --- the cache -------------------------------------------------------------------------------------
class DirectoryCache:
    """Per-process merged directory: TTL, stale-while-revalidate, last good ring rows kept on ring errors."""

    def __init__(self, ttl: float | None = None, min_refresh: float | None = None):
        self._ttl, self._min_refresh = ttl, min_refresh
        self._lock = threading.Lock()
        self._refreshing = False
        self._directory: Directory | None = None
        self._ring: dict[str, RingEntry] = {}
        self._loaded_at = 0.0  # monotonic time of the last load attempt

    @property
    def ttl(self) -> float:
        return float(self._ttl if self._ttl is not None else conf.get("directory_ttl_seconds"))

    @property
    def min_refresh(self) -> float:
        return float(self._min_refresh if self._min_refresh is not None else conf.get("directory_min_refresh_seconds"))

    def get(self) -> Directory:
        d = self._directory
        if d is None:
            return self.refresh()
        if time.monotonic() - self._loaded_at > self.ttl:
            self._refresh_in_background()
        return d

    def refresh(self) -> Directory:
        """Re-read the files and the ring now, unless that was done less than ``min_refresh`` ago."""
        with self._lock:
            if self._directory is not None and time.monotonic() - self._loaded_at < self.min_refresh:
                return self._directory
            return self._load_locked()

    def invalidate(self) -> None:
        with self._lock:
            self._loaded_at = 0.0

    def _load_locked(self) -> Directory:
        from replication.ring import RingUnavailable

        configured = config_peers()
        ring_ok, ring_error = True, None
        try:
            self._ring = ring_entries()
        except RingUnavailable as exc:
            ring_ok, ring_error = False, str(exc)[:200]
            log.warning("peer directory: the ring cannot be read; using the configuration and the last ring rows",
                        extra={"reason": ring_error})
        self._loaded_at = time.monotonic()
        self._directory = Directory(merge(configured, self._ring), ring_ok, ring_error)
        return self._directory

    def _refresh_in_background(self) -> None:
        with self._lock:
            if self._refreshing:
                return
            self._refreshing = True

        def run():
            try:
                with self._lock:
                    if time.monotonic() - self._loaded_at > self.ttl:
                        self._load_locked()
            except Exception:  # never let a background refresh kill anything; the stale copy stays
                log.exception("peer directory: background refresh failed")
            finally:
                self._refreshing = False

        threading.Thread(target=run, name="federation-directory", daemon=True).start()


_cache = DirectoryCache()


def get_directory() -> Directory:
    return _cache.get()


def refresh_directory() -> Directory:
    return _cache.refresh()


def invalidate() -> None:
    _cache.invalidate()


# --- publishing this node's own row ---------------------------------------------------------------
class PublishError(Exception):
    pass


def own_entry(existing: RingEntry | None, *, district: str, public_url: str, key_id: str, pem: str,
              now: datetime, grace: timedelta, status: str = ACTIVE, skew: timedelta = timedelta(0)) -> RingEntry:
    """This node's row: the current key (open-ended; ``not_before`` kept, or now - skew when new) plus every
    earlier key still in the row. An earlier key without ``not_after`` gets ``now + grace``: a rotated-out key
    stays valid until then, so requests already signed and peers with a stale cache keep working."""
    keys: dict[str, PeerKey] = {}
    for kid, k in (existing.keys if existing else {}).items():
        if kid == key_id:
            continue
        keys[kid] = k if k.not_after is not None else replace(k, not_after=now + grace)
    previous = existing.keys.get(key_id) if existing else None
    if previous is not None and previous.public_key_pem.strip() != pem.strip():
        raise PublishError(f"key id {key_id} is already published with another public key; "
                           "give the new key a new key id (node.key_id)")
    not_before = previous.not_before if previous is not None else now - skew
    keys[key_id] = PeerKey(key_id, pem, not_before, None, "ring")
    return RingEntry(district, public_url, keys, status, now, f"{district}:federation_publish")


def publish_self(*, status: str = ACTIVE, grace: timedelta | None = None, now: datetime | None = None) -> RingEntry:
    """Write this node's row from its configuration and key files (``manage.py federation_publish``)."""
    from django.conf import settings

    d = settings.DISTRICT
    private = load_private_key(conf.get("private_key_file"))
    try:
        pinned = d.public_key_file.read_text(encoding="ascii")
    except OSError as exc:
        raise PublishError(f"node.public_key_file {d.public_key_file}: {exc}") from None
    if raw_public_bytes(load_public_key_pem(pinned)) != raw_public_bytes(private.public_key()):
        raise PublishError(f"node.public_key_file {d.public_key_file} does not match the private key")
    if not url_allowed(d.public_url):
        raise PublishError(f"district.public_url {d.public_url} must be https (plain http only for 127.0.0.x)")
    now = now or datetime.now(UTC)
    grace = grace if grace is not None else timedelta(seconds=conf.get("rotation_grace_seconds"))
    entry = own_entry(ring_entry_get(d.code), district=d.code, public_url=d.public_url, key_id=d.key_id,
                      pem=public_key_pem(private), now=now, grace=grace, status=status,
                      skew=timedelta(seconds=conf.get("clock_skew_seconds")))
    ring_entry_write(entry)
    return entry
