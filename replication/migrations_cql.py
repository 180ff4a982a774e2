"""Versioned CQL migrations for the ring (``replication/cql/NNNN_name.cql``), applied in order.

The keyspace is created with NetworkTopologyStrategy and RF = min(configured RF, live ring nodes).
Applied versions are recorded in ``<keyspace>.schema_migrations`` with a checksum; an applied file
that changed afterwards is refused rather than silently re-run.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from pathlib import Path

from cassandra import ConsistencyLevel, InvalidRequest
from cassandra.cluster import Session
from cassandra.query import SimpleStatement

CQL_DIR = Path(__file__).resolve().parent / "cql"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.cql$")


class RingMigrationError(Exception):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]
    checksum: str


def discover(directory: Path = CQL_DIR) -> list[Migration]:
    found = []
    for path in sorted(directory.glob("*.cql")):
        m = _NAME.match(path.name)
        if not m:
            raise RingMigrationError(f"{path.name}: migration files are named NNNN_name.cql")
        text = path.read_text(encoding="utf-8")
        body = "\n".join(line for line in text.splitlines() if not line.strip().startswith("--"))
        statements = tuple(s.strip() for s in body.split(";") if s.strip())
        found.append(Migration(int(m.group(1)), m.group(2), statements, hashlib.sha256(text.encode()).hexdigest()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RingMigrationError("two migration files share a version number")
    return found


def live_node_count(session: Session) -> int:
    peers = list(session.execute("SELECT peer FROM system.peers_v2"))
    return 1 + len(peers)


def _hosts_up(session: Session) -> int:
    return sum(1 for h in session.cluster.metadata.all_hosts() if h.is_up)


def wait_for_nodes(session: Session, expected: int, timeout: float = 90.0) -> int:
    """Wait until the driver sees ``expected`` ring members up (gossip takes a few seconds after a start).

    Counting rows of ``system.peers_v2`` is not enough: a node that has just started may not list its peers
    yet, and a query routed to it would make the ring look smaller than it is."""
    deadline = time.monotonic() + timeout
    seen = _hosts_up(session)
    while seen < expected and time.monotonic() < deadline:
        time.sleep(1)
        seen = _hosts_up(session)
    if seen < expected:
        raise RingMigrationError(f"only {seen} of {expected} ring nodes visible after {timeout:.0f}s")
    return seen


def ensure_keyspace(session: Session, keyspace: str, desired_rf: int, local_dc: str, *, log=print,
                    ring_nodes: int | None = None) -> int:
    """Create the keyspace with RF = min(desired, ring size). The ring size is the launcher's (``ring_nodes``) when
    it knows it; otherwise the larger of what the driver and the coordinator see."""
    row = session.execute(
        "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = %s", (keyspace,)
    ).one()
    nodes = ring_nodes or max(live_node_count(session), len(session.cluster.metadata.all_hosts()))
    if row is not None:
        rep = dict(row.replication)
        rf = int(rep.get(local_dc, rep.get("replication_factor", "0")))
        if rf < min(desired_rf, nodes):
            log(f"WARNING: keyspace {keyspace} has RF {rf} on a {nodes}-node ring (desired {desired_rf}); raising it "
                "needs ALTER KEYSPACE followed by a full repair — see docs/runbooks (not done automatically)")
        return rf
    rf = min(desired_rf, nodes)
    session.execute(
        f"CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = "
        f"{{'class': 'NetworkTopologyStrategy', '{local_dc}': {rf}}}"
    )
    _agreed(session)
    return rf


SCHEMA_LAG_TIMEOUT = 60.0


def _agreed(session: Session) -> bool:
    """Wait until the live nodes have the schema the last change made; keep waiting (up to the lag timeout) while
    the driver reports disagreement, which on a freshly started ring can outlast one 30 s wait. Past that, go on:
    a statement that meets a node still without the change is retried (``_execute``)."""
    deadline = time.monotonic() + SCHEMA_LAG_TIMEOUT
    while not session.cluster.control_connection.wait_for_schema_agreement(wait_time=30):
        if time.monotonic() > deadline:
            return False
    return True


def _execute(session: Session, statement, params=None):
    """Run one statement; a node that has not yet applied a schema change the driver saw agreed ("Keyspace … doesn't
    exist", "unconfigured table") is retried for a while rather than failing the migration."""
    deadline = time.monotonic() + SCHEMA_LAG_TIMEOUT
    while True:
        try:
            return session.execute(statement, params)
        except InvalidRequest as exc:
            lagging = "doesn't exist" in str(exc) or "unconfigured table" in str(exc)
            if not lagging or time.monotonic() > deadline:
                raise
            time.sleep(1)


def apply(session: Session, keyspace: str, desired_rf: int, local_dc: str, *, log=print,
          expect_nodes: int | None = None) -> list[int]:
    if expect_nodes:
        wait_for_nodes(session, expect_nodes)
    rf = ensure_keyspace(session, keyspace, desired_rf, local_dc, log=log, ring_nodes=expect_nodes)
    cl = ConsistencyLevel.ONE if rf <= 1 else ConsistencyLevel.QUORUM
    _execute(session,
             f"CREATE TABLE IF NOT EXISTS {keyspace}.schema_migrations "
             "(version int PRIMARY KEY, name text, checksum text, applied_at timestamp)")
    _agreed(session)
    applied = {
        r.version: r.checksum
        for r in _execute(
            session, SimpleStatement(f"SELECT version, checksum FROM {keyspace}.schema_migrations", consistency_level=cl)  # nosec B608 -- configured keyspace, values bound
        )
    }
    done = []
    for mig in discover():
        if mig.version in applied:
            if applied[mig.version] != mig.checksum:
                raise RingMigrationError(
                    f"{mig.version:04d}_{mig.name}.cql changed after it was applied; add a new migration instead"
                )
            continue
        log(f"applying ring migration {mig.version:04d}_{mig.name} ({len(mig.statements)} statements)")
        for stmt in mig.statements:
            _execute(session, SimpleStatement(stmt.format(keyspace=keyspace), consistency_level=cl))
            if stmt.lstrip().upper().startswith(("CREATE", "ALTER", "DROP")):
                _agreed(session)
        _execute(
            session,
            SimpleStatement(
                f"INSERT INTO {keyspace}.schema_migrations (version, name, checksum, applied_at) "
                "VALUES (%s, %s, %s, toTimestamp(now()))",  # nosec B608 -- configured keyspace, values bound
                consistency_level=cl,
            ),
            (mig.version, mig.name, mig.checksum),
        )
        done.append(mig.version)
    log(f"ring schema up to date (keyspace {keyspace}, RF {rf}, {len(done)} applied now)")
    return done
