"""Runs last (file order): after the whole suite, every MFI on every district node of the test cluster has a
balanced trial balance, as the operator command reports it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from config.district import REPO_ROOT

pytestmark = pytest.mark.cluster


def test_every_mfi_trial_balance_is_balanced_after_the_suite(test_cluster):
    checked = 0
    for code in test_cluster.districts:
        res = subprocess.run([sys.executable, str(REPO_ROOT / "manage.py"), "trial_balance", "--as-of", "2099-12-31"],
                             env=test_cluster.env_for(code), capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, f"{code}: {res.stdout[-3000:]}{res.stderr[-2000:]}"
        checked += 1
    assert checked == len(test_cluster.districts) >= 3


def test_every_loans_kept_outstanding_principal_matches_its_installments(test_cluster):
    """The trigger-kept ``loans_loan.principal_outstanding`` equals the installments' sum on every node, after
    everything the suite did to them (repayments, reversals, bulk posting, close of business, write-offs)."""
    check = ("from django.db import connection; c = connection.cursor(); "
             "c.execute(\"SELECT COUNT(*) FROM loans_loan l LEFT JOIN (SELECT loan_id, SUM(principal - principal_paid) AS s "
             "FROM loans_loaninstallment GROUP BY loan_id) i ON i.loan_id = l.id "
             "WHERE l.principal_outstanding <> COALESCE(i.s, 0)\"); bad = c.fetchone()[0]; "
             "c.execute('SELECT COUNT(*) FROM loans_loaninstallment'); n = c.fetchone()[0]; print(bad, n)")
    seen = 0
    for code in test_cluster.districts:
        res = subprocess.run([sys.executable, str(REPO_ROOT / "manage.py"), "shell", "-c", check],
                             env=test_cluster.env_for(code), capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr[-2000:]
        bad, installments = map(int, res.stdout.split()[-2:])
        assert bad == 0, f"{code}: {bad} loans' kept outstanding principal differs from their installments"
        seen += installments
    assert seen > 0  # the suite did write installments on the nodes: the check had something to check
