"""The ring-outage drill in reduced form on the test cluster: every ring node stops for a few seconds while maseru
posts repayments and tries to approve loans. Local work must go on (every repayment acknowledged and kept), every
approval must fail closed (503 credit_network_unavailable: the stacking guard never approves blind), the outbox
backlog must drain once the ring is back and reconciliation must find no gap. Runbook: docs/runbooks/ring-outage.md.

The 60 s drain target is the operator drill's (recorded in the runbook); here the drain only has to finish, because
how long three JVMs take to come back on a loaded 2-core CI machine is not what this test is about."""

from __future__ import annotations

import io
import json
from pathlib import Path

from cluster import cassandra
from cluster.drill_ring_outage import FAIL_CLOSED_CODE, ring_outage
from cluster.profiles import TEST
from tests.conftest import healthz, wait_for

DISTRICT = "maseru"


def test_ring_outage_drill_local_work_goes_on_approvals_fail_closed_backlog_drains(test_cluster):
    wait_for(lambda: all(cassandra.is_up(TEST, i) for i in (1, 2, 3)), 180, interval=2, what="a whole ring")
    out = io.StringIO()
    rep = ring_outage(TEST, DISTRICT, down_s=8.0, approvals=3, out=out)
    r, w = rep.results, rep.writes

    assert r["repayments_acknowledged_while_ring_down"] >= 1
    assert w["acknowledged"] == w["present_after"] and r["rpo_acknowledged_writes_lost"] == 0 and w["duplicates"] == 0
    assert r["approvals_while_ring_down"] == 3 and r["approvals_passed_without_ring"] == 0
    assert r["approvals_failed_closed"] == 3 and r["approval_answers_while_down"] == [f"503 {FAIL_CLOSED_CODE}"]
    assert r["approvals_after_recovery_ok"] == "2/2"
    assert r["outbox_backlog_peak"] >= r["repayments_acknowledged_while_ring_down"]
    assert r["backlog_drain_s"] is not None
    assert r["events_checked"] > 0 and r["events_missing"] == 0 and r["ring_rows_unknown_here"] == 0
    assert rep.healthy_after, rep.not_healthy
    assert all(cassandra.is_up(TEST, i) for i in (1, 2, 3))
    assert healthz(TEST.district(DISTRICT).public_url)[0] == 200
    saved = json.loads(Path(rep.file).read_text())
    assert saved["scenario"] == "ring-outage" and saved["results"] == r
