"""The pg-failover drill, end to end on the test cluster (one district, reduced load): kill -9 the district's
PostgreSQL primary while repayments are being posted over HTTP, promote the standby, rejoin the old primary with
pg_rewind, and account for every acknowledged write. Runbook: docs/runbooks/pg-failover.md.

Only mohales_hoek's servers are touched (other test files mostly use maseru and leribe); afterwards the district
serves again with a synchronous standby (the primary may now be the server on the standby port)."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from cluster import drills, pg_standby
from cluster.commands import cluster_lock
from cluster.profiles import TEST, Profile
from config.district import DistrictConfigError, load_file
from tests.conftest import healthz, wait_for

DISTRICT = "mohales_hoek"


@pytest.fixture
def pair(test_cluster):
    """mohales_hoek with its standby (made with pg_basebackup the first time; a no-op when it already streams)."""
    with cluster_lock(TEST):
        pg_standby.start_pair(TEST, DISTRICT, create=True)
    assert pg_standby.describe(TEST, DISTRICT)["healthy"]
    return TEST


def test_pg_failover_drill_loses_no_acknowledged_write(pair):
    before = pg_standby.describe(pair, DISTRICT)
    out = io.StringIO()
    rep = drills.pg_failover(pair, DISTRICT, clients=2, loans=4, warmup_writes=10, after_rejoin_s=2.0, out=out)
    text = out.getvalue()
    r, w = rep.results, rep.writes

    assert w["acknowledged"] >= 10 and w["attempted"] >= w["acknowledged"]
    assert r["rpo_acknowledged_writes_lost"] == 0 and w["lost_ids"] == []
    assert w["present_after"] == w["acknowledged"] == w["present_on_new_standby"]
    assert w["duplicates"] == 0 and w["unexplained_applied"] == [] and w["rejected"] == 0
    assert r["rto_s"] is not None and 0 < r["rto_s"] <= 60
    assert r["trial_balance_consistent"] is True and r["standby_identical"] is True
    # the drill's repayments moved money: the MFI's journal grew by exactly what they posted, and still balances
    tb = rep.trial_balance
    assert tb["after_totals"][0] == tb["after_totals"][1]
    assert tb["after_totals"] != tb["before_totals"]
    assert rep.healthy_after, rep.not_healthy
    assert rep.passed
    # the roles moved: the old standby is the primary now, and the old primary streams from it synchronously
    after = pg_standby.describe(pair, DISTRICT)
    assert after["primary"]["name"] == before["standby"]["name"]
    assert after["healthy"] and after["replication"][0]["application_name"] == before["primary"]["name"]

    saved = json.loads(Path(rep.file).read_text())
    assert Path(rep.file).parent == pair.var_dir / "drills" and Path(rep.file).name.startswith("pg-failover-")
    assert saved["results"] == r and saved["writes"]["acknowledged"] == w["acknowledged"]
    assert "RPO: acknowledged writes lost" in text and "PASS" in text

    # the node serves writes and reads through the new primary without any configuration edit
    assert wait_for(lambda: healthz(pair.district(DISTRICT).public_url)[0] == 200, 30, what="healthz 200")


def test_drill_refuses_a_cluster_that_is_not_local(tmp_path):
    src = TEST.config_dir
    remote = Profile(name="remote", var_dir=tmp_path, port_offset=TEST.port_offset, ring_ip_base=TEST.ring_ip_base,
                     jmx_base=TEST.jmx_base)
    remote.config_dir.mkdir(parents=True)
    for f in src.glob("*.toml"):
        shutil.copy(f, remote.config_dir / f.name)
    cfg = remote.config_dir / f"{DISTRICT}.toml"
    cfg.write_text(cfg.read_text().replace('host = "127.0.0.1"', 'host = "10.20.0.5"', 1))
    with pytest.raises(drills.DrillRefused, match="not on this machine.*i-know-this-is-not-local"):
        drills.pg_failover(remote, DISTRICT)
    assert not (tmp_path / "drills").exists()  # refused before anything was disturbed or written


def test_standby_port_in_district_config(tmp_path, monkeypatch):
    base = (TEST.config_dir / f"{DISTRICT}.toml").read_text()
    cfg = tmp_path / f"{DISTRICT}.toml"
    cfg.write_text(base)
    d = load_file(cfg)
    assert d.pg_hosts == [(d.pg_host, d.pg_port), (d.pg_host, d.pg_port + 1000)]
    monkeypatch.setenv("LETSEMA_CONFIG__postgres__standby_host", "pg-standby")
    monkeypatch.setenv("LETSEMA_CONFIG__postgres__standby_port", "5432")
    assert load_file(cfg).pg_hosts[1] == ("pg-standby", 5432)
    monkeypatch.delenv("LETSEMA_CONFIG__postgres__standby_host")
    monkeypatch.setenv("LETSEMA_CONFIG__postgres__standby_port", str(d.pg_port))
    with pytest.raises(DistrictConfigError, match="postgres.standby_port: must differ"):
        load_file(cfg)
    monkeypatch.setenv("LETSEMA_CONFIG__postgres__standby_port", '"6603"')
    with pytest.raises(DistrictConfigError, match="postgres.standby_port: expected integer"):
        load_file(cfg)
