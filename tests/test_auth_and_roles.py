"""JWT log-in and refresh, role-based access, and the one error format — on the real test PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from node.mfis.models import Mfi
from node.users.models import Role, User
from node.users.tokens import access_token_for

PASSWORD = "Correct-Horse-42"
pytestmark = pytest.mark.django_db


@pytest.fixture
def mfis():
    return (
        Mfi.objects.create(code="alpha-credit", name="Alpha Credit", home_district="maseru"),
        Mfi.objects.create(code="beta-loans", name="Beta Loans", home_district="maseru"),
    )


@pytest.fixture
def make_user(mfis):
    def make(role: Role, mfi: Mfi | None = None, username: str | None = None) -> User:
        u = User(username=username or f"{role}-{User.objects.count()}", role=role, mfi=mfi)
        u.set_password(PASSWORD)
        u.save()
        return u

    return make


def login(client: APIClient, username: str, password: str = PASSWORD):
    return client.post("/api/v1/auth/token/", {"username": username, "password": password}, format="json")


def assert_error(response, status: int, code: str):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"code", "message", "details"}, body
    assert body["code"] == code, body
    assert body["message"]
    return body


def test_login_refresh_and_use(make_user, mfis):
    officer = make_user(Role.LOAN_OFFICER, mfis[0], "officer1")
    client = APIClient()
    r = login(client, "officer1")
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["role"] == "loan_officer"
    assert body["district"] == "maseru"
    assert body["access_expires_in"] == 15 * 60
    access = AccessToken(body["access"])
    assert access["role"] == "loan_officer" and access["mfi"] == "alpha-credit"
    assert int(access["user_id"]) == officer.pk

    client.credentials(HTTP_AUTHORIZATION=f"Bearer {body['access']}")
    me = client.get("/api/v1/me/")
    assert me.status_code == 200
    assert me.json() == {
        "username": "officer1", "first_name": "", "last_name": "", "role": "loan_officer",
        "mfi": "alpha-credit", "district": "maseru",
    }

    refreshed = APIClient().post("/api/v1/auth/token/refresh/", {"refresh": body["refresh"]}, format="json")
    assert refreshed.status_code == 200
    new_access = refreshed.json()["access"]
    assert new_access != body["access"]
    c2 = APIClient()
    c2.credentials(HTTP_AUTHORIZATION=f"Bearer {new_access}")
    assert c2.get("/api/v1/me/").status_code == 200


def test_wrong_password_and_unknown_user(make_user):
    make_user(Role.BORROWER, username="borrower1")
    assert_error(login(APIClient(), "borrower1", "wrong-password"), 401, "invalid_credentials")
    assert_error(login(APIClient(), "nobody"), 401, "invalid_credentials")


def test_disabled_account_cannot_log_in(make_user):
    u = make_user(Role.BORROWER, username="gone")
    u.is_active = False
    u.save(update_fields=["is_active"])
    assert_error(login(APIClient(), "gone"), 401, "invalid_credentials")


def test_missing_login_fields():
    body = assert_error(APIClient().post("/api/v1/auth/token/", {}, format="json"), 400, "validation_error")
    assert set(body["details"]["fields"]) == {"username", "password"}


def test_expired_and_forged_tokens_are_refused(make_user):
    u = make_user(Role.BORROWER)
    expired = AccessToken.for_user(u)
    expired.set_exp(lifetime=-timedelta(seconds=1))
    for token in (str(expired), "not.a.jwt", str(AccessToken.for_user(u))[:-4] + "AAAA"):
        c = APIClient()
        c.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        assert_error(c.get("/api/v1/me/"), 401, "token_invalid")


def test_refresh_token_cannot_be_used_as_access_and_vice_versa(make_user):
    u = make_user(Role.BORROWER)
    refresh = RefreshToken.for_user(u)
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION=f"Bearer {refresh}")
    assert_error(c.get("/api/v1/me/"), 401, "token_invalid")
    r = APIClient().post("/api/v1/auth/token/refresh/", {"refresh": str(refresh.access_token)}, format="json")
    assert_error(r, 401, "token_invalid")


def test_no_token(make_user):
    assert_error(APIClient().get("/api/v1/me/"), 401, "not_authenticated")


def _client_for(user: User) -> APIClient:
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token_for(user)}")
    return c


@pytest.mark.parametrize(
    "role,expected",
    [
        (Role.BORROWER, None),
        (Role.LOAN_OFFICER, ["alpha-credit"]),
        (Role.MFI_ADMIN, ["alpha-credit"]),
        (Role.ANALYST, ["alpha-credit"]),
        (Role.LETSEMA_ADMIN, ["alpha-credit", "beta-loans"]),
        (Role.OPERATOR, ["alpha-credit", "beta-loans"]),
    ],
)
def test_mfi_list_by_role(make_user, mfis, role, expected):
    mfi = mfis[0] if role in (Role.LOAN_OFFICER, Role.MFI_ADMIN, Role.ANALYST) else None
    r = _client_for(make_user(role, mfi)).get("/api/v1/mfis/")
    if expected is None:
        assert_error(r, 403, "permission_denied")
    else:
        assert r.status_code == 200
        assert [m["code"] for m in r.json()] == expected


@pytest.mark.parametrize("role", [Role.BORROWER, Role.LOAN_OFFICER, Role.MFI_ADMIN, Role.ANALYST, Role.OPERATOR])
def test_only_letsema_admin_adds_mfis(make_user, mfis, role):
    mfi = mfis[0] if role in (Role.LOAN_OFFICER, Role.MFI_ADMIN, Role.ANALYST) else None
    r = _client_for(make_user(role, mfi)).post("/api/v1/mfis/", {"code": "gamma", "name": "Gamma"}, format="json")
    assert_error(r, 403, "permission_denied")
    assert not Mfi.objects.filter(code="gamma").exists()


def test_letsema_admin_adds_mfi_with_clear_errors(make_user, mfis):
    c = _client_for(make_user(Role.LETSEMA_ADMIN))
    new = {"code": "gamma-fin", "name": "Gamma Finance", "registration_number": "R-9", "interest_rate_cap": "60",
           "admin_username": "gamma.admin", "admin_first_name": "G", "admin_last_name": "A"}
    r = c.post("/api/v1/mfis/", new, format="json")
    assert r.status_code == 201, r.content
    assert {k: r.json()[k] for k in ("code", "name", "home_district", "is_active")} == {
        "code": "gamma-fin", "name": "Gamma Finance", "home_district": "maseru", "is_active": True}
    body = assert_error(c.post("/api/v1/mfis/", {**new, "admin_username": "other"}, format="json"), 409, "mfi_exists")
    assert body["details"] == {"code": "gamma-fin"}
    body = assert_error(c.post("/api/v1/mfis/", {**new, "code": "Bad Code!", "name": ""}, format="json"), 400, "validation_error")
    assert set(body["details"]["fields"]) == {"code", "name"}
    assert Mfi.objects.count() == 3


def test_mfi_staff_must_have_an_mfi():
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(username="orphan", role=Role.LOAN_OFFICER)


def test_error_format_for_framework_errors(make_user):
    c = _client_for(make_user(Role.LETSEMA_ADMIN))
    assert_error(c.get("/api/v1/no-such-thing/"), 404, "not_found")
    assert_error(c.delete("/api/v1/mfis/"), 405, "method_not_allowed")
    r = c.generic("POST", "/api/v1/mfis/", "{not json", content_type="application/json")
    assert_error(r, 400, "malformed_request")
    r = c.generic("POST", "/api/v1/mfis/", "code=x", content_type="application/x-www-form-urlencoded")
    assert_error(r, 415, "unsupported_media_type")


def test_request_id_is_echoed_or_generated(make_user):
    c = APIClient()
    r = c.get("/api/v1/node/", HTTP_X_REQUEST_ID="abc12345-test")
    assert r.status_code == 200
    assert r["X-Request-ID"] == "abc12345-test"
    r = c.get("/api/v1/node/", HTTP_X_REQUEST_ID="bad id with spaces")
    assert r["X-Request-ID"] != "bad id with spaces" and len(r["X-Request-ID"]) == 32
    assert r.json()["district"] == "maseru"


def test_server_time_is_sent_as_server_timing():
    import re

    r = APIClient().get("/api/v1/node/")
    m = re.fullmatch(r"app;dur=(\d+(?:\.\d)?)", r["Server-Timing"])
    assert m and 0 <= float(m.group(1)) < 60_000, r["Server-Timing"]


def test_openapi_schema_generates():
    r = APIClient().get("/api/schema/?format=json")
    assert r.status_code == 200, r.content[:500]
    paths = r.json()["paths"]
    for p in ("/api/v1/loans/", "/api/v1/products/", "/api/v1/borrowers/register", "/api/v1/ledger/trial-balance",
              "/api/v1/schedules/preview"):
        assert p in paths, p
