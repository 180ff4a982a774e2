"""The API answers as its OpenAPI document says, for the cases schemathesis found (tests/test_api_fuzz.py runs the
whole sweep): what the document lists, and strict input — unknown or empty query parameters, JSON values of the
wrong type and over-long log-in names get a 400/401 with a stable code, never a 500 or a silent default."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from node.audit.models import AuditEvent
from node.users.models import Role
from tests.factories import client_for, make_user
from tests.loan_fixtures import err, open_shop

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop(tmp_path, settings):
    settings.SMS_FILE_PATH = tmp_path / "sms.jsonl"
    return open_shop("contract")


def test_the_document_lists_error_answers_auth_and_the_idempotency_header():
    doc = APIClient().get("/api/schema/?format=json").json()
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert set(doc["components"]["schemas"]["Error"]["required"]) == {"code", "message", "details"}
    repay = doc["paths"]["/api/v1/loans/{loan_id}/repayments"]["post"]
    assert {"400", "401", "403", "404", "409", "422", "503"} <= set(repay["responses"])
    assert repay["responses"]["404"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    header = next(p for p in repay["parameters"] if p["name"] == "Idempotency-Key")
    assert header["in"] == "header" and header["required"] is True
    assert "429" in doc["paths"]["/api/v1/auth/token/"]["post"]["responses"]
    assert "429" not in doc["paths"]["/api/v1/loans/"]["get"]["responses"]
    # serializers nested in different views keep their own component (they used to share one name and one schema)
    schemas = doc["components"]["schemas"]
    assert "TokenObtainInputRequest" in schemas and "LogoutInputRequest" in schemas
    assert "password" in schemas["TokenObtainInputRequest"]["properties"]
    assert "password" not in schemas["LogoutInputRequest"]["properties"]
    money = schemas["RepaymentPostRequest"]["properties"]["amount"]
    assert money["type"] == "string" and money["format"] == "decimal"


def test_unknown_or_empty_query_parameters_are_refused(shop):
    c = client_for(shop.admin)
    assert c.get("/api/v1/loans/", {"status": "active"}).status_code == 200
    e = err(c.get("/api/v1/loans/", {"stauts": "active"}), 400, "validation_error")
    assert e["details"]["fields"] == {"stauts": ["Unknown parameter."]} and "status" in e["message"]
    e = err(c.get("/api/v1/loans/", {"limit": ""}), 400, "validation_error")
    assert list(e["details"]["fields"]) == ["limit"]
    err(c.get("/api/v1/ledger/trial-balance", {"as_of": ""}), 400, "validation_error")
    employer = c.post("/api/v1/payroll/employers", {"code": "gov-ls", "name": "Government"}, format="json").json()
    path = f"/api/v1/payroll/employers/{employer['id']}/enrolments"
    assert c.get(path, {"include_ended": "true"}).status_code == 200
    err(c.get(path, {"include_ended": "-816067967"}), 400, "validation_error")
    # the reports refuse with their own code, as before
    analyst = client_for(shop.analyst)
    err(analyst.get("/api/v1/reports/par", {"export": ""}), 400, "invalid_report_parameter")
    err(analyst.get("/api/v1/reports/par", {"order": "1"}), 400, "invalid_report_parameter")


def test_json_values_of_the_wrong_type_are_refused_not_coerced(shop):
    c = client_for(shop.admin)
    e = err(c.post("/api/v1/payroll/employers", {"code": "gov-ls", "name": 0}, format="json"), 400, "validation_error")
    assert "name" in e["details"]["fields"]
    e = err(c.post("/api/v1/auth/logout", {"everywhere": 0}, format="json"), 400, "validation_error")
    assert "everywhere" in e["details"]["fields"]
    assert c.get("/api/v1/me/").status_code == 200  # the refused log-out ended nothing
    product = {"code": "p-2", "name": "P", "annual_interest_rate": "36", "interest_method": "DECLINING_BALANCE",
               "amortization": "EQUAL_INSTALLMENTS", "repayment_frequency": "MONTHS", "min_principal": "500.00",
               "max_principal": "5000.00", "min_repayments": "3", "max_repayments": 12}
    e = err(c.post("/api/v1/products/", product, format="json"), 400, "validation_error")
    assert list(e["details"]["fields"]) == ["min_repayments"]
    assert c.post("/api/v1/products/", {**product, "min_repayments": 3}, format="json").status_code == 201


def test_a_log_in_name_of_any_allowed_length_is_refused_cleanly():
    name = "0" * 150  # the longest username the model allows; its failed log-in is audited under it
    r = APIClient().post("/api/v1/auth/token/", {"username": name, "password": "x"}, format="json")
    err(r, 401, "invalid_credentials")
    assert AuditEvent.objects.filter(action="auth.login_failed", target_id=name).count() == 1
    err(APIClient().post("/api/v1/auth/token/", {"username": name + "0", "password": "x"}, format="json"),
        400, "validation_error")


def test_schedule_credit_and_network_answers_match_their_documented_schemas(shop, network_policy):
    """The answers that used to be documented as a bare object: each real answer checked against its schema."""
    from replication.outbox import ship_batch
    from replication.ring_writer import write_event
    from tests.loan_fixtures import apply, disbursed, post
    from tests.openapi_helpers import assert_documented

    network_policy(max_active_loans=5)
    terms = {"principal": "10000.00", "annual_interest_rate": "24", "number_of_repayments": 6,
             "repayment_frequency": "MONTHS", "interest_method": "DECLINING_BALANCE",
             "amortization": "EQUAL_INSTALLMENTS", "disbursement_date": "2026-01-05", "days_in_year": 365,
             "fees": [{"name": "admin", "amount": "1.5", "calculation": "PERCENT_OF_PRINCIPAL",
                       "charge_time": "DISBURSEMENT"}]}
    preview = assert_documented(APIClient().post("/api/v1/schedules/preview", terms, format="json"),
                                "post", "/api/v1/schedules/preview")
    assert preview["totals"]["principal"] == "10000.00" and preview["installments"][0]["fees"] == "150.00"
    assert_documented(APIClient().post("/api/v1/schedules/preview", {**terms, "days_in_year": 366}, format="json"),
                      "post", "/api/v1/schedules/preview")  # the 400 is documented too

    active = disbursed(shop)
    pending = apply(shop, principal="2000.00", n=6)
    admin = client_for(shop.admin)
    stored = assert_documented(admin.get(f"/api/v1/loans/{active}/schedule"), "get", "/api/v1/loans/{loan_id}/schedule")
    assert stored["stored"] is True
    assert assert_documented(admin.get(f"/api/v1/loans/{pending}/schedule"), "get",
                             "/api/v1/loans/{loan_id}/schedule")["stored"] is False

    assert ship_batch(write_event).failed == 0
    report = assert_documented(post(shop.officer, f"/api/v1/loans/{pending}/credit-report"), "post",
                               "/api/v1/loans/{loan_id}/credit-report")
    assert report["summary"]["active_loans"] == 1 and report["network_policy"]["max_active_loans"] == 5
    assert [x["this_application"] for x in report["loans"]].count(True) == 1
    report = assert_documented(post(shop.officer, f"/api/v1/borrowers/{shop.borrower.pk}/credit-report",
                                    {"purpose": "account_review"}), "post",
                               "/api/v1/borrowers/{borrower_id}/credit-report")
    assert report["enquiries"] and report["score"]["grade"] in "ABCDE"
    own = assert_documented(client_for(shop.borrower_user).get("/api/v1/me/credit-history"), "get",
                            "/api/v1/me/credit-history")
    assert own["summary"]["active_loans"] == 1 and len(own["enquiries"]) == 2
    policy = assert_documented(admin.get("/api/v1/network/policy"), "get", "/api/v1/network/policy")
    assert (policy["max_active_loans"], policy["source"]) == (5, "network")

    where = assert_documented(admin.get(f"/api/v1/network/borrowers/{shop.borrower.borrower_key}/where"), "get",
                              "/api/v1/network/borrowers/{borrower_key}/where")
    assert "maseru" in where["registered_in"] and where["answered"]["maseru"]["registered"] is True
    figures = assert_documented(client_for(make_user(Role.LETSEMA_ADMIN)).get("/api/v1/network/aggregates"), "get",
                                "/api/v1/network/aggregates")
    assert figures["districts"]["maseru"]["loans"]["active"] >= 1
