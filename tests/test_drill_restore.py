"""The restore drill on the test cluster: WAL archive (pg_receivewal), base backup under load, a restore point,
more writes, then point-in-time recovery into a scratch PostgreSQL instance. The money tables' checksums in the
restored copy must equal those taken at the restore point, every write acknowledged before it must be there and
none after it. Runbook: docs/runbooks/backup-restore.md."""

from __future__ import annotations

import io
import json
from pathlib import Path

from cluster import pg_standby
from cluster.drill_restore import MONEY_TABLES, SLOT, restore
from cluster.drills import _primary
from cluster.profiles import TEST
from tests.conftest import healthz

DISTRICT = "leribe"


def test_restore_drill_point_in_time_copy_matches_the_target_and_nothing_after(test_cluster):
    out = io.StringIO()
    rep = restore(TEST, DISTRICT, writes_before=10, writes_after=5, out=out)
    r, w = rep.results, rep.writes

    assert r["checksums_equal"] is True and r["tables_differing"] == []
    at_target = rep.trial_balance["at_target"]
    assert set(at_target) == set(MONEY_TABLES) and at_target == rep.trial_balance["restored"]
    assert at_target["repayments_repayment"]["rows"] >= 10 and at_target["ledger_journalline"]["rows"] > 0
    assert r["writes_before_target_restored"] == f"{w['acknowledged_before_target']}/{w['acknowledged_before_target']}"
    assert w["acknowledged_after_target"] >= 5 and r["later_writes_restored"] == 0
    assert r["wal_segments_archived"] >= 1 and r["loans"] > 0 and r["loans_in_restored_instance"] >= r["loans"]
    assert 0 < r["restore_s"] <= 300
    assert rep.healthy_after, rep.not_healthy
    assert rep.passed and "PASS" in out.getvalue(), out.getvalue()
    # nothing left behind: the scratch instance is gone, the archiver's slot dropped, the node serves
    assert not list((TEST.var_dir / "restore").glob(f"{DISTRICT}-*"))
    assert not pg_standby.query(_primary(TEST, DISTRICT), "SELECT 1 FROM pg_replication_slots WHERE slot_name = %s",
                                (SLOT,))
    assert healthz(TEST.district(DISTRICT).public_url)[0] == 200
    saved = json.loads(Path(rep.file).read_text())
    assert saved["scenario"] == "restore" and saved["results"]["checksums_equal"] is True
