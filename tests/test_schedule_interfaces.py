"""The calculator API, the preview_schedule command and stored loan schedules give the same JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rest_framework.test import APIClient

REPO = Path(__file__).resolve().parent.parent

CASES = [
    {"principal": "10000.00", "annual_interest_rate": "36", "number_of_repayments": 12, "repayment_frequency": "MONTHS",
     "interest_method": "DECLINING_BALANCE", "amortization": "EQUAL_INSTALLMENTS", "disbursement_date": "2026-01-31"},
    {"principal": "5000", "annual_interest_rate": "24.5", "number_of_repayments": 10, "repayment_frequency": "WEEKS",
     "repayment_every": 2, "interest_method": "FLAT", "amortization": "EQUAL_PRINCIPAL",
     "interest_calculation_period": "DAILY", "days_in_year": "365", "disbursement_date": "2026-03-15",
     "grace_on_principal_periods": 2, "fees": [{"name": "Insurance", "amount": "25.00", "calculation": "FLAT", "charge_time": "INSTALLMENT"}]},
    {"principal": "30000", "annual_interest_rate": "18", "number_of_repayments": 6, "repayment_frequency": "MONTHS",
     "interest_method": "DECLINING_BALANCE", "amortization": "EQUAL_INSTALLMENTS", "schedule_type": "PROGRESSIVE",
     "days_in_year": "360", "days_in_month": "30", "currency_decimals": 0, "currency_in_multiples_of": 10,
     "disbursement_date": "2026-02-28"},
]


def _command(data, env_extra=None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.update({"DJANGO_SETTINGS_MODULE": "config.test_settings", **(env_extra or {})})
    return subprocess.run([sys.executable, str(REPO / "manage.py"), "preview_schedule"], input=json.dumps(data),
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=120)


@pytest.mark.parametrize("case", CASES)
def test_calculator_and_command_agree(case):
    api = APIClient().post("/api/v1/schedules/preview", case, format="json")
    assert api.status_code == 200, api.content
    res = _command(case)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == api.json()
    body = api.json()
    assert body["installments"][-1]["principal_balance"] in ("0", "0.00")


def test_command_needs_no_database():
    # point the node at a PostgreSQL port where nothing listens: the command must not care
    res = _command(CASES[0], {"LETSEMA_CONFIG__postgres__port": "1"})
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["totals"]["principal"] == "10000.00"


def test_invalid_input_is_refused_with_field_errors_everywhere():
    bad = {**CASES[0], "principal": 10000.5, "repayment_frequency": "FORTNIGHTS"}
    api = APIClient().post("/api/v1/schedules/preview", bad, format="json")
    assert api.status_code == 400
    body = api.json()
    assert body["code"] == "validation_error"
    assert {"principal", "repayment_frequency"} <= set(body["details"]["fields"])
    res = _command(bad)
    assert res.returncode == 2 and res.stdout == ""
    err = json.loads(res.stderr)
    assert err["code"] == "validation_error" and set(err["details"]["fields"]) == set(body["details"]["fields"])
    res = subprocess.run([sys.executable, str(REPO / "manage.py"), "preview_schedule"], input="{not json",
                         capture_output=True, text=True, env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.test_settings"},
                         cwd=REPO, timeout=120)
    assert res.returncode == 2 and json.loads(res.stderr)["code"] == "malformed_request"


def test_calculator_needs_no_login():
    r = APIClient().post("/api/v1/schedules/preview", CASES[0], format="json")
    assert r.status_code == 200
