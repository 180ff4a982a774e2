"""The 3-node Cassandra ring: QUORUM reads and writes survive one node down; losing quorum is reported."""

from __future__ import annotations

import uuid

import pytest
from cassandra import ConsistencyLevel, OperationTimedOut, ReadTimeout, Unavailable, WriteTimeout
from cassandra.cluster import NoHostAvailable
from cassandra.query import SimpleStatement

from cluster import cassandra as ring_launcher
from replication.ring import RingSettings, make_cluster, node_setting
from tests.conftest import healthz, wait_for

pytestmark = pytest.mark.cluster
Q = ConsistencyLevel.QUORUM


@pytest.fixture
def session(test_cluster):
    d = test_cluster.district("maseru")
    s = RingSettings(
        contact_points=d.cassandra_contact_points, port=d.cassandra_port, keyspace=d.cassandra_keyspace,
        replication_factor=3, local_dc=d.cassandra_local_dc, request_timeout=10,
    )
    cluster = make_cluster(s)
    sess = cluster.connect(s.keyspace)
    sess.execute(
        "CREATE TABLE IF NOT EXISTS ring_probe (id uuid PRIMARY KEY, note text)"
    )
    cluster.control_connection.wait_for_schema_agreement(wait_time=30)
    yield sess
    cluster.shutdown()


def _write(sess, note):
    key = uuid.uuid4()
    sess.execute(SimpleStatement("INSERT INTO ring_probe (id, note) VALUES (%s, %s)", consistency_level=Q), (key, note))
    return key


def _read(sess, key):
    row = sess.execute(SimpleStatement("SELECT note FROM ring_probe WHERE id = %s", consistency_level=Q), (key,)).one()
    return row.note if row else None


def test_keyspace_has_rf3(session):
    row = session.execute("SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = 'letsema'").one()
    assert dict(row.replication)["datacenter1"] == "3"
    peers = list(session.execute("SELECT peer FROM system.peers_v2"))
    assert len(peers) == 2


def test_a_new_ring_runs_paxos_v2_on_every_node(test_cluster, session):
    # the stacking guard's compare-and-set: 2 round trips on v2 instead of v1's 4 (docs/runbooks/paxos-v2.md)
    assert ring_launcher.paxos_variant(test_cluster) == "v2"
    # every node must answer (the driver may still be reconnecting to one restarted by an earlier test)
    reported = wait_for(lambda: (r := node_setting(session, "paxos_variant")) and None not in r.values() and r, 60,
                        interval=2, what="every ring node reporting its paxos_variant")
    assert len(reported) == 3
    assert set(reported.values()) == {"v2"}, reported


def test_quorum_survives_one_node_down_and_reports_quorum_loss(test_cluster, session, node_url):
    before = {_write(session, f"before-{i}"): f"before-{i}" for i in range(20)}
    ring_launcher.stop_node(test_cluster, 3, kill=True)
    try:
        # one node of three down: QUORUM (2) still reads and writes
        during = {_write(session, f"during-{i}"): f"during-{i}" for i in range(20)}
        for key, note in {**before, **during}.items():
            assert _read(session, key) == note
        assert healthz(node_url("maseru"))[0] == 200

        # two down: QUORUM is impossible, and the node's health says so
        ring_launcher.stop_node(test_cluster, 2, kill=True)
        with pytest.raises((Unavailable, WriteTimeout, OperationTimedOut, NoHostAvailable)):
            wait_for(lambda: _write(session, "no-quorum") and False, 15, interval=1, what="Unavailable")
        status, body = wait_for(lambda: (s := healthz(node_url("maseru")))[0] == 503 and s, 30, what="503")
        assert body["down"] == ["cassandra"]
        assert body["checks"]["postgres"]["status"] == "up"
    finally:
        ring_launcher.start_node(test_cluster, 2, 3)
        ring_launcher.start_node(test_cluster, 3, 3)

    # back to three: every acknowledged write is there at QUORUM, and health recovers
    def all_readable():
        try:
            return all(_read(session, k) == v for k, v in {**before, **during}.items())
        except (Unavailable, ReadTimeout, OperationTimedOut, NoHostAvailable):
            return False

    wait_for(all_readable, 60, interval=1, what="reads after restart")
    _write(session, "after")
    wait_for(lambda: healthz(node_url("maseru"))[0] == 200, 60, interval=1, what="healthz 200 after restart")
