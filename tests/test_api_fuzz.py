"""Schemathesis over the whole API (reliability notes, S5): every operation of the node's own OpenAPI document is
called with generated requests — valid and invalid — and must answer without a server error, with a status code
the document lists and a body that matches the document's schema for that status."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from django.test import override_settings
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import (
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from config.wsgi import application
from node.users.models import Role, User
from node.users.tokens import access_token_for
from tests.factories import client_for, make_user
from tests.loan_fixtures import disbursed, key, open_shop, post
from tests.openapi_helpers import openapi_document

pytestmark = pytest.mark.django_db

# generated requests per operation (on top of schemathesis's explicit coverage cases): 25 in the suite, more for a
# deeper run (the reliability notes' nightly: LETSEMA_FUZZ_EXAMPLES=500)
EXAMPLES = int(os.environ.get("LETSEMA_FUZZ_EXAMPLES", "25"))


def _in_the_test_transaction(environ, start_response):
    """The node's WSGI app, called the way Django's test client calls it: the test's connection (and the transaction
    the test runs in) stays open across requests, instead of being closed at each request's start and end."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        response = application(environ, start_response)
        body = b"".join(response)
        response.close()
        return [body]
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


schema = schemathesis.openapi.from_dict(openapi_document())
schema.app = _in_the_test_transaction


@dataclass
class World:
    """An MFI with staff, a borrower, a disbursed loan with a repayment, a payroll employer and an enrolment: path
    parameters name these real objects in half the generated requests (the other half get random ids, mostly 404)."""

    users: dict[str, User]
    objects: dict[str, int]

    def token_for(self, path: str) -> str:
        if path.startswith(("/api/v1/mfis/", "/api/v1/network/policy", "/api/v1/network/aggregates")):
            role = "letsema_admin"
        elif path.startswith(("/api/v1/me/", "/api/v1/borrowers/me")):
            role = "borrower"
        else:
            role = "mfi_admin"
        return access_token_for(self.users[role])


@pytest.fixture(scope="module")
def world(module_db, tmp_path_factory):
    """Built once for every operation (conftest ``module_db``: rolled back at the end; each case runs in its own
    savepoint, so what one operation changes is gone for the next)."""
    tmp = tmp_path_factory.mktemp("fuzz")
    with override_settings(SMS_FILE_PATH=tmp / "sms.jsonl", KYC_STORAGE_DIR=tmp / "kyc"):
        yield _world()


def _world() -> World:
    shop = open_shop("fuzz")
    loan_id = disbursed(shop)
    repayment = post(shop.officer, f"/api/v1/loans/{loan_id}/repayments",
                     {"amount": "50.00", "payment_date": "2026-02-10", "channel": "cash"}, idem=key())
    assert repayment.status_code == 201, repayment.content
    employer = client_for(shop.admin).post("/api/v1/payroll/employers", {"code": "gov-ls", "name": "Government"},
                                          format="json")
    assert employer.status_code == 201, employer.content
    enrolment = client_for(shop.admin).post(f"/api/v1/payroll/employers/{employer.json()['id']}/enrolments",
                                            {"borrower": shop.borrower.pk, "employee_number": "GOV-0001"},
                                            format="json")
    assert enrolment.status_code == 201, enrolment.content
    return World(
        users={"mfi_admin": shop.admin, "borrower": shop.borrower_user, "letsema_admin": make_user(Role.LETSEMA_ADMIN)},
        objects={"loan_id": loan_id, "borrower_id": shop.borrower.pk, "product_id": shop.product_id,
                 "user_id": shop.officer.pk, "repayment_id": repayment.json()["id"],
                 "employer_id": employer.json()["id"], "enrolment_id": enrolment.json()["id"]},
    )


@schema.parametrize()
@hypothesis_settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_every_operation_answers_generated_requests_as_documented(case, world):
    for name, value in (case.path_parameters or {}).items():
        if name in world.objects and isinstance(value, int) and value % 2 == 0:
            case.path_parameters[name] = world.objects[name]
    case.call_and_validate(headers={"Authorization": f"Bearer {world.token_for(case.operation.path)}"},
                           checks=[not_a_server_error, status_code_conformance, response_schema_conformance,
                                   negative_data_rejection])
