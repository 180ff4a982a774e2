"""Network-wide figures for Letsema admins (node/peers): each node's own portfolio (hand-computed fixture, PAR by days
past due), the strict wire schema, and the fan-out over the real test-cluster nodes."""

from __future__ import annotations

import copy
from decimal import Decimal as D

import pytest
import requests

from federation.fanout import BadResponse
from node.loans.models import Loan, LoanInstallment
from node.peers.schemas import NodeFigures
from node.peers.selectors import figures_json, network_totals, node_figures
from tests.conftest import wait_for
from tests.factories import PASSWORD, client_for
from tests.federation_helpers import manage
from tests.loan_fixtures import apply, disbursed, open_shop


def _outstanding(lid: int) -> D:
    return sum((i.principal - i.principal_paid for i in LoanInstallment.objects.filter(loan_id=lid)), D("0.00"))


@pytest.mark.django_db
def test_node_figures_from_a_hand_made_portfolio():
    before = node_figures()
    shop, other = open_shop(), open_shop("beta")  # the network policy allows 3 loans per borrower
    current, late_10, late_31 = (disbursed(shop) for _ in range(3))
    late_95 = disbursed(other)
    pending = apply(other)  # an application: counted by status, never in the portfolio
    for lid, dpd in ((late_10, 10), (late_31, 31), (late_95, 95)):
        Loan.objects.filter(pk=lid).update(days_past_due=dpd)  # what close of business would have set
    # a repayment of principal lowers the outstanding figure
    LoanInstallment.objects.filter(loan_id=late_31, number=1).update(principal_paid=D("100.00"))
    f = node_figures()
    each = {lid: _outstanding(lid) for lid in (current, late_10, late_31, late_95)}
    assert each[current] == D("1000.00") and each[late_31] == D("900.00")

    def grew(field, n=None):
        a, b = getattr(f, field), getattr(before, field)
        return D(a[n]) - D(b[n]) if n else D(a) - D(b)

    assert grew("outstanding_principal") == D("3900.00")
    assert grew("par", "1") == each[late_10] + each[late_31] + each[late_95] == D("2900.00")
    assert grew("par", "30") == D("1900.00")  # 31 and 95 days: "more than 30"
    assert grew("par", "60") == grew("par", "90") == D("1000.00")
    assert f.loans["active"] - before.loans["active"] == 4
    assert f.loans["draft"] + f.loans["submitted"] - before.loans["draft"] - before.loans["submitted"] == 1
    assert Loan.objects.get(pk=pending).status in ("draft", "submitted")
    assert f.borrowers - before.borrowers == 2 and f.mfis - before.mfis == 2
    assert f.district == "maseru" and f.currency == "LSL"
    # the wire form parses back exactly
    assert NodeFigures.from_json(f.to_json()) == f


def test_totals_and_ratios_over_districts():
    def fig(district, total, par30):
        return NodeFigures(district, "2026-11-20", "2026-11-19", 2, 10, dict.fromkeys(
            ("submitted", "under_review", "approved", "active", "closed", "written_off", "rejected", "withdrawn",
             "rescheduled", "draft"), 1), "LSL", total, {"1": par30, "30": par30, "60": "0.00", "90": "0.00"})

    a, b = fig("maseru", "3000.00", "300.00"), fig("leribe", "1000.00", "0.00")
    t = network_totals([a, b])
    assert t["outstanding_principal"] == "4000.00" and t["par"]["30"] == "300.00"
    assert t["par_ratio"]["30"] == "0.0750" and t["loans"]["active"] == 2 and t["borrowers"] == 20
    assert figures_json(a)["par_ratio"]["30"] == "0.1000"
    assert network_totals([])["par_ratio"]["30"] is None  # nothing outstanding: no ratio, not a division by zero


@pytest.mark.parametrize("break_it", [
    lambda d: d["loans"].pop("active"),
    lambda d: d["par"].update({"30": "-1.00"}),
    lambda d: d["par"].update({"30": 5}),
    lambda d: d.update({"mfis": True}),
    lambda d: d.update({"extra": 1}),
    lambda d: d.update({"schema": 2}),
])
def test_figures_outside_the_schema_are_a_bad_response(break_it):
    good = NodeFigures("leribe", "2026-11-20", None, 1, 1, dict.fromkeys(
        ("submitted", "under_review", "approved", "active", "closed", "written_off", "rejected", "withdrawn",
         "rescheduled", "draft"), 0), "LSL", "0.00", {"1": "0.00", "30": "0.00", "60": "0.00", "90": "0.00"}).to_json()
    NodeFigures.from_json(copy.deepcopy(good))
    bad = copy.deepcopy(good)
    break_it(bad)
    with pytest.raises(BadResponse):
        NodeFigures.from_json(bad)


@pytest.mark.django_db
def test_only_letsema_admins_see_the_network(client):
    shop = open_shop()
    assert client_for(shop.admin).get("/api/v1/network/aggregates").status_code == 403
    assert client_for(shop.analyst).get("/api/v1/network/aggregates").status_code == 403


@pytest.mark.cluster
def test_network_figures_over_the_real_nodes(test_cluster, node_url):
    base = node_url("maseru")
    name = "aggregates.admin"
    res = manage(test_cluster, "maseru", "shell", "-c", (
        "from node.users.models import User; "
        f"u, _ = User.objects.get_or_create(username='{name}', defaults={{'role': 'letsema_admin'}}); "
        f"u.set_password('{PASSWORD}'); u.save()"))
    assert res.returncode == 0, res.stderr[-2000:]
    tok = requests.post(f"{base}/api/v1/auth/token/", json={"username": name, "password": PASSWORD}, timeout=20)
    assert tok.status_code == 200, tok.text
    auth = {"Authorization": f"Bearer {tok.json()['access']}"}

    def complete():
        r = requests.get(f"{base}/api/v1/network/aggregates", headers=auth, timeout=30)
        assert r.status_code == 200, r.text
        return r.json() if not r.json()["partial"] else None

    body = wait_for(complete, timeout=60, interval=2, what="figures from every district")
    assert set(body["districts"]) == set(test_cluster.districts)
    assert body["network"]["districts"] == len(test_cluster.districts)
    total = sum(D(d["outstanding_principal"]) for d in body["districts"].values())
    assert D(body["network"]["outstanding_principal"]) == total
    assert body["network"]["borrowers"] == sum(d["borrowers"] for d in body["districts"].values())
