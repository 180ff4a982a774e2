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
