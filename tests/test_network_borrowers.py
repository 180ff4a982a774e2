"""Borrowers across the running test cluster, over HTTP: a national ID is registered once in the whole network
(even when two districts try at the same instant), and no raw national ID leaves its node."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest
import requests

from cluster import nodes
from tests.borrower_factory import new_national_id, payload

pytestmark = pytest.mark.cluster
PASSWORD = "Strong-Pass-2026!"
RAW_IDS: list[str] = []  # every raw national ID registered through the cluster in this module


def register(base: str, nid: str) -> requests.Response:
    RAW_IDS.append(nid)
    return requests.post(f"{base}/api/v1/borrowers/register", json=payload(national_id=nid, password=PASSWORD), timeout=30)


def test_same_national_id_at_two_districts_second_refused(node_url):
    nid = new_national_id()
    first = register(node_url("leribe"), nid)
    assert first.status_code == 201, first.text
    assert first.json()["home_district"] == "leribe"
    second = register(node_url("maseru"), nid)
    assert second.status_code == 409, second.text
    assert second.json() == {
        "code": "borrower_registered_elsewhere",
        "message": "A borrower with this national ID is already registered in the Letsema network, at another district.",
        "details": {"home_district": "leribe"},
    }
    third = register(node_url("mohales_hoek"), f"{nid[:4]} {nid[4:]}")  # same person, other formatting
    assert third.status_code == 409 and third.json()["details"] == {"home_district": "leribe"}


@pytest.mark.parametrize("attempt", range(3))
def test_concurrent_registration_at_three_districts_exactly_one_wins(test_cluster, node_url, attempt):
    nid = new_national_id()
    codes = test_cluster.districts
    results: dict[str, requests.Response] = {}
    barrier = threading.Barrier(len(codes))

    def go(code):
        barrier.wait()
        results[code] = register(node_url(code), nid)

    threads = [threading.Thread(target=go, args=(c,)) for c in codes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    statuses = sorted(r.status_code for r in results.values())
    assert statuses == [201, 409, 409], {c: (r.status_code, r.text[:200]) for c, r in results.items()}
    winner = next(c for c, r in results.items() if r.status_code == 201)
    for code, r in results.items():
        if r.status_code == 409:
            assert r.json()["details"]["home_district"] == winner


def _cassandra_dump(test_cluster) -> str:
    from cassandra.cluster import Cluster

    ips = [test_cluster.ring_ip(i) for i in (1, 2, 3)]
    cluster = Cluster(ips, protocol_version=5)
    try:
        session = cluster.connect()
        tables = [r.table_name for r in session.execute(
            "SELECT table_name FROM system_schema.tables WHERE keyspace_name = 'letsema'")]
        assert "borrower_directory" in tables
        out = []
        for table in tables:
            for row in session.execute(f"SELECT * FROM letsema.{table}"):
                out.append(repr(tuple(row)))
        return "\n".join(out)
    finally:
        cluster.shutdown()


def _redis_dump(test_cluster) -> str:
    import redis

    out = []
    for db in range(0, 16):
        client = redis.Redis(host="127.0.0.1", port=test_cluster.redis_port, db=db)
        for key in client.scan_iter(count=1000):
            kind = client.type(key).decode()
            out.append(repr(key))
            if kind == "string":
                out.append(repr(client.get(key)))
            elif kind == "list":
                out.append(repr(client.lrange(key, 0, -1)))
            elif kind == "hash":
                out.append(repr(client.hgetall(key)))
            elif kind == "set":
                out.append(repr(client.smembers(key)))
            elif kind == "zset":
                out.append(repr(client.zrange(key, 0, -1)))
        client.close()
    return "\n".join(out)


def test_no_raw_national_id_leaves_the_node(test_cluster, node_url):
    # register a few more through every node, including failed duplicates, so there is something to find
    for code in test_cluster.districts:
        nid = new_national_id()
        assert register(node_url(code), nid).status_code == 201
        assert register(node_url(code), nid).status_code == 409
    assert len(RAW_IDS) >= 6
    ring = _cassandra_dump(test_cluster)
    assert "v1:" in ring, "the directory should hold borrower keys"
    broker = _redis_dump(test_cluster)
    logs = "\n".join(p.read_text(errors="replace") for p in Path(test_cluster.log_dir).rglob("*.log"))
    sms = "\n".join(p.read_text(errors="replace") for p in (Path(test_cluster.var_dir) / "sms").glob("*"))
    assert nodes.web_log(test_cluster, "maseru").exists() and len(logs) > 1000
    for nid in RAW_IDS:
        for where, text in (("Cassandra", ring), ("Redis", broker), ("logs", logs), ("SMS", sms)):
            assert nid not in text, f"raw national ID found in {where}"
    # and the Cassandra data files on disk (commit logs and SSTables), byte for byte: one pass for all the IDs
    patterns = [arg for nid in RAW_IDS for arg in ("-e", nid)]
    res = subprocess.run(["grep", "-rlF", *patterns, "--", str(Path(test_cluster.var_dir) / "cassandra")],
                         capture_output=True, text=True)
    assert res.returncode == 1 and res.stdout == "", f"raw national ID in Cassandra files: {res.stdout}{res.stderr}"
