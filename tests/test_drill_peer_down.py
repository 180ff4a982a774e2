"""The peer-down drill in reduced form on the test cluster: leribe's node and worker go down for a few seconds
while maseru posts repayments and asks the network where a borrower is registered. Maseru must keep answering
(partial answers naming leribe, no failure, no lost write); leribe must come back, ship the credit events it
committed just before it went down, and be answering its peers' look-ups again. Runbook:
docs/runbooks/peer-down.md."""

from __future__ import annotations

import io
import json
from pathlib import Path

from cluster.drill_peer_down import peer_down
from cluster.profiles import TEST
from tests.conftest import healthz

DOWN, OBSERVER = "leribe", "maseru"


def test_peer_down_drill_others_keep_serving_and_it_catches_up(test_cluster):
    out = io.StringIO()
    rep = peer_down(TEST, DOWN, observer=OBSERVER, down_s=4.0, queued_writes=3, lookup_every=0.4, web_workers=1,
                    out=out)
    r, w = rep.results, rep.writes

    assert r["lookups_while_down"] >= 3 and r["lookups_failed"] == 0
    assert r["lookups_partial_naming_the_down_district"] == r["lookups_while_down"]
    assert r["missing_reasons_seen"] and r["lookup_ms_max_while_down"] < 5000
    assert w["acknowledged"] >= 1 and r["observer_writes_lost"] == 0 and w["duplicates"] == 0
    # the three repayments committed while its worker was stopped waited in its outbox and reached the ring later
    assert w["queued_at_down_district"] == w["queued_present"] == 3 and r["queued_events_while_down"] >= 3
    assert r["catch_up_s"] is not None and r["catch_up_s"] <= 60
    assert r["peer_seen_again_after_restart_s"] is not None
    assert r["events_checked"] > 0 and r["events_missing"] == 0 and r["ring_rows_unknown_here"] == 0
    assert rep.healthy_after, rep.not_healthy
    assert rep.passed and "PASS" in out.getvalue(), out.getvalue()
    assert healthz(TEST.district(DOWN).public_url)[0] == 200
    saved = json.loads(Path(rep.file).read_text())
    assert saved["scenario"] == "peer-down" and saved["results"] == r
