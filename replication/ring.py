"""The one place that talks to the Cassandra ring: a per-process session and its consistency level.

Writes and reads use QUORUM (ONE only when the keyspace's replication factor is 1). The session is
created lazily (after gunicorn/celery fork) and survives ring outages: the driver reconnects on its
own with a short, capped back-off, and callers get ``RingUnavailable`` meanwhile.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from cassandra import ConsistencyLevel
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, NoHostAvailable, Session
from cassandra.query import PreparedStatement
from cassandra.policies import (
    DCAwareRoundRobinPolicy,
    ExponentialReconnectionPolicy,
    TokenAwarePolicy,
)


class RingUnavailable(Exception):
    """The ring cannot serve the request at the required consistency level."""


@dataclass(frozen=True)
class RingSettings:
    contact_points: tuple[str, ...]
    port: int
    keyspace: str
    replication_factor: int
    local_dc: str
    request_timeout: float = 5.0
    connect_timeout: float = 3.0

    @classmethod
    def from_django(cls) -> RingSettings:
        from django.conf import settings

        r = settings.LETSEMA_RING
        return cls(
            contact_points=tuple(r["contact_points"]),
            port=r["port"],
            keyspace=r["keyspace"],
            replication_factor=r["replication_factor"],
            local_dc=r["local_dc"],
        )


def make_cluster(s: RingSettings, *, consistency: int = ConsistencyLevel.QUORUM) -> Cluster:
    profile = ExecutionProfile(
        load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc=s.local_dc)),
        consistency_level=consistency,
        request_timeout=s.request_timeout,
    )
    return Cluster(
        list(s.contact_points),
        port=s.port,
        protocol_version=5,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        connect_timeout=s.connect_timeout,
        control_connection_timeout=s.connect_timeout,
        reconnection_policy=ExponentialReconnectionPolicy(0.5, 8.0),
        idle_heartbeat_interval=5,
    )


def consistency_for_rf(rf: int) -> int:
    return ConsistencyLevel.ONE if rf <= 1 else ConsistencyLevel.QUORUM


def keyspace_rf(session: Session, keyspace: str, local_dc: str) -> int | None:
    row = session.execute(
        "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = %s", (keyspace,)
    ).one()
    if row is None:
        return None
    replication = dict(row.replication)
    if "replication_factor" in replication:
        return int(replication["replication_factor"])
    return int(replication.get(local_dc, "0"))


class _Ring:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cluster: Cluster | None = None
        self._session: Session | None = None
        self._consistency: int | None = None
        self._prepared: dict[str, PreparedStatement] = {}

    def session(self) -> tuple[Session, int]:
        """The shared session and the consistency level for this keyspace (QUORUM, or ONE at RF 1)."""
        with self._lock:
            if self._session is None:
                s = RingSettings.from_django()
                cluster = make_cluster(s)
                try:
                    session = cluster.connect()
                    rf = keyspace_rf(session, s.keyspace, s.local_dc)
                except NoHostAvailable as exc:
                    cluster.shutdown()
                    raise RingUnavailable(f"no ring node reachable: {_brief(exc)}") from exc
                except Exception:
                    cluster.shutdown()
                    raise
                if rf is None:
                    cluster.shutdown()
                    raise RingUnavailable(f"keyspace {s.keyspace!r} does not exist; run 'manage.py ring_migrate'")
                session.set_keyspace(s.keyspace)
                self._cluster, self._session = cluster, session
                self._consistency = consistency_for_rf(rf)
            assert self._consistency is not None
            return self._session, self._consistency

    def prepared(self, cql: str, *, idempotent: bool = True) -> tuple[Session, PreparedStatement]:
        """A statement prepared once per session, at the working consistency level.

        Prepared statements carry the partition key's routing information, so the token-aware policy sends the
        request straight to a replica (one network hop fewer than a round-robin coordinator).
        """
        session, cl = self.session()
        stmt = self._prepared.get(cql)
        if stmt is None:
            stmt = session.prepare(cql)
            stmt.consistency_level = cl
            stmt.is_idempotent = idempotent
            with self._lock:
                if self._session is session:
                    self._prepared[cql] = stmt
        return session, stmt

    def reset(self) -> None:
        with self._lock:
            if self._cluster is not None:
                self._cluster.shutdown()
            self._cluster = self._session = self._consistency = None
            self._prepared = {}


_ring = _Ring()
get_session = _ring.session
get_prepared = _ring.prepared
reset_session = _ring.reset


def _brief(exc: Exception) -> str:
    if isinstance(exc, NoHostAvailable):
        return "; ".join(f"{host}: {type(err).__name__}" for host, err in exc.errors.items()) or str(exc)
    return f"{type(exc).__name__}: {exc}"


def ring_ping() -> None:
    """Read the heartbeat row at the working consistency level. Raises RingUnavailable if it cannot."""
    from cassandra.query import SimpleStatement

    session, cl = get_session()
    stmt = SimpleStatement("SELECT node FROM ring_heartbeat WHERE node = 'ring'", consistency_level=cl)
    try:
        session.execute(stmt, timeout=RingSettings.from_django().request_timeout)
    except Exception as exc:  # Unavailable, ReadTimeout, OperationTimedOut, NoHostAvailable
        raise RingUnavailable(_brief(exc)) from exc


def node_setting(session: Session, name: str) -> dict[str, str | None]:
    """One setting (``system_views.settings``) as every ring node reports it: ``{address: value}``.

    Each node is asked directly (the virtual table is node-local); a node that does not answer maps to ``None``.
    """
    from cassandra.query import SimpleStatement

    stmt = SimpleStatement("SELECT value FROM system_views.settings WHERE name = %s",
                           consistency_level=ConsistencyLevel.ONE)
    out: dict[str, str | None] = {}
    for host in sorted(session.cluster.metadata.all_hosts(), key=lambda h: str(h.address)):
        try:
            row = session.execute(stmt, (name,), host=host, timeout=5).one()
            out[str(host.address)] = row.value if row else None
        except Exception:  # noqa: BLE001 - an unreachable node is reported as None, not raised
            out[str(host.address)] = None
    return out
