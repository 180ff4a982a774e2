"""The cassandra-node drill in reduced form on the test cluster: kill -9 ring node 3 while mohales_hoek posts
repayments and approves loans, start it again, drain the outbox, reconcile. A quorum (2 of 3) holds throughout,
so no approval may fail and no event may be missing. Runbook: docs/runbooks/cassandra-node.md."""

from __future__ import annotations

import io
import json
from pathlib import Path

from cluster import cassandra, drills
from cluster.profiles import TEST
from tests.conftest import healthz, wait_for

DISTRICT = "mohales_hoek"


def test_cassandra_node_drill_no_failed_approval_no_missing_event(test_cluster):
    # another test may be restarting ring nodes (quorum-loss tests); the drill refuses a ring that is not whole
    wait_for(lambda: all(cassandra.is_up(TEST, i) for i in (1, 2, 3)), 180, interval=2, what="a whole ring")
    out = io.StringIO()
    rep = drills.cassandra_node(TEST, DISTRICT, node=3, down_s=3.0, approvals=4, warmup_writes=5, out=out)
    r, w = rep.results, rep.writes

    assert w["approvals_attempted"] == 4 and w["approvals_ok"] == 4 and r["failed_approvals"] == 0
    assert r["approvals_while_node_down"] >= 1  # the guard's compare-and-set really ran on a 2-node quorum
    assert w["acknowledged"] >= 5 and r["rpo_acknowledged_writes_lost"] == 0 and w["duplicates"] == 0
    assert r["events_checked"] > 0 and r["events_missing"] == 0 and r["ring_rows_unknown_here"] == 0
    assert rep.healthy_after, rep.not_healthy
    assert rep.passed and "PASS" in out.getvalue()
    assert all(cassandra.is_up(TEST, i) for i in (1, 2, 3))
    assert healthz(TEST.district(DISTRICT).public_url)[0] == 200
    saved = json.loads(Path(rep.file).read_text())
    assert saved["scenario"] == "cassandra-node" and saved["results"] == r
