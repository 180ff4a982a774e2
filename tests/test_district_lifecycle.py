"""Adding a fourth district node to the running test cluster, suspending it and removing it (cluster/districts.py),
while the three running nodes keep running: they learn of the new node from the ring, with no restart."""

from __future__ import annotations

import pytest
import requests

from cluster import districts, postgres
from cluster.nodes import web_pidfile
from cluster.procs import StepFailed, read_pid
from federation.peers import ring_entry_get
from tests.conftest import wait_for
from tests.federation_helpers import manage, signed_headers, staff_auth

pytestmark = pytest.mark.cluster
CODE = "qachas_nek"
KEY = "v1:" + "ab" * 32  # a well-formed borrower key nobody holds
PING = "/_federation/v1/ping"


def _where(base: str, auth: dict) -> dict:
    r = requests.get(f"{base}/api/v1/network/borrowers/{KEY}/where", headers=auth, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture(scope="module")
def maseru_staff(test_cluster):
    return staff_auth(test_cluster, "maseru")


@pytest.fixture(scope="module")
def fourth(test_cluster, maseru_staff):
    if CODE in test_cluster.all_configured_districts:  # left over by an interrupted run
        districts.remove_district(test_cluster, CODE, purge=True)
    running = {c: read_pid(web_pidfile(test_cluster, c)) for c in test_cluster.districts}
    districts.add_district(test_cluster, CODE, "Qacha's Nek", [("qacha-credit", "Qacha's Nek Credit")])
    yield test_cluster.district(CODE), running
    # peers must stop counting it before it disappears: suspend, wait until maseru's fan-out skips it, then purge
    maseru = test_cluster.district("maseru").public_url
    try:
        districts.set_status(test_cluster, CODE, "suspended")
        wait_for(lambda: CODE not in _where(maseru, maseru_staff)["missing"]
                 and CODE not in _where(maseru, maseru_staff)["answered"], timeout=60, interval=2,
                 what=f"maseru to skip the suspended {CODE}")
    finally:
        districts.remove_district(test_cluster, CODE, purge=True)


def test_add_a_fourth_district_live(test_cluster, fourth, maseru_staff):
    d, running_before = fourth
    # next free ports after the three shipped districts, the same ring and broker
    assert d.port == max(test_cluster.district(c).port for c in running_before) + 1
    assert d.pg_port == max(test_cluster.district(c).pg_port for c in running_before) + 1
    assert [m.code for m in d.mfis] == ["qacha-credit"]
    assert CODE in test_cluster.districts
    assert requests.get(f"{d.public_url}/healthz", timeout=20).status_code == 200
    entry = ring_entry_get(CODE)
    assert entry is not None and entry.status == "active" and entry.public_url == d.public_url

    # the new node signs to every running peer, which know its key from the ring alone (their configuration
    # files were loaded before it existed) ...
    ping = manage(test_cluster, CODE, "federation_ping", *running_before, "--timeout", "10")
    assert ping.returncode == 0, ping.stdout + ping.stderr
    for peer in running_before:
        assert peer in ping.stdout
    # ... and a running node's fan-out now asks it too
    maseru = test_cluster.district("maseru").public_url

    def asked():
        b = _where(maseru, maseru_staff)
        return b if CODE in b["answered"] else None

    body = wait_for(asked, timeout=60, interval=2, what=f"maseru's fan-out to include {CODE}")
    assert body["answered"][CODE] == {"registered": False, "verified": False}
    # nobody was restarted
    assert {c: read_pid(web_pidfile(test_cluster, c)) for c in running_before} == running_before


def test_a_suspended_district_is_refused_and_skipped(test_cluster, fourth, maseru_staff):
    d, running = fourth
    districts.set_status(test_cluster, CODE, "suspended")
    try:
        leribe = test_cluster.district("leribe").public_url

        def refused():
            r = requests.get(f"{leribe}{PING}", headers=signed_headers("GET", f"{leribe}{PING}", origin=CODE),
                             timeout=10)
            return r.json() if r.status_code == 401 else None  # (a Response is falsy when not ok)

        body = wait_for(refused, timeout=60, interval=2, what=f"leribe to refuse the suspended {CODE}")
        assert body["code"] == "federation_peer_suspended"
        maseru = test_cluster.district("maseru").public_url
        wait_for(lambda: CODE not in _where(maseru, maseru_staff)["answered"], timeout=60, interval=2,
                 what=f"maseru's fan-out to skip {CODE}")
        assert CODE not in _where(maseru, maseru_staff)["missing"]  # skipped, not counted as missing
    finally:
        districts.set_status(test_cluster, CODE, "active")


def test_remove_keeps_data_and_resume_brings_it_back(test_cluster, fourth):
    d, _ = fourth
    districts.remove_district(test_cluster, CODE)
    assert CODE not in test_cluster.districts and CODE in test_cluster.all_configured_districts
    assert not postgres.is_running(test_cluster, CODE)
    assert ring_entry_get(CODE).status == "suspended"
    assert (postgres.data_dir(test_cluster, CODE) / "PG_VERSION").exists()
    districts.resume_district(test_cluster, CODE)
    assert CODE in test_cluster.districts
    assert requests.get(f"{d.public_url}/healthz", timeout=20).status_code == 200
    assert ring_entry_get(CODE).status == "active"


def test_add_district_refuses_bad_or_taken_codes(test_cluster):
    with pytest.raises(StepFailed, match="already exists"):
        districts.add_district(test_cluster, "leribe", "Leribe again")
    with pytest.raises(StepFailed, match="lower-case"):
        districts.add_district(test_cluster, "Berea!", "Berea")
    with pytest.raises(StepFailed, match="MFI code"):
        districts.add_district(test_cluster, "berea", "Berea", [("Bad Code", "x")])
    assert "berea" not in test_cluster.all_configured_districts
    with pytest.raises(StepFailed, match="shipped district"):
        districts.remove_district(test_cluster, "leribe", purge=True)
