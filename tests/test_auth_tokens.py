"""Token abuse and password guessing (reliability notes S3 and S4), on the real test PostgreSQL.

S3: every forged, expired, foreign, tampered, signed-out or replayed token is refused with 401 and an audit row;
access tokens live at most 15 minutes. S4: after 10 failed passwords for an account in 15 minutes the account is
throttled (429 with Retry-After), whatever door the password comes through; unknown users and wrong passwords get
the same answer for the same work.
"""

from __future__ import annotations

import base64
import json
import time
from datetime import timedelta

import jwt
import pytest
from django.conf import settings
from django.contrib.auth.hashers import get_hasher
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from node.audit.models import AuditEvent
from node.users import authentication, tokens
from node.users.models import Role, TokenSession, User
from tests.borrower_factory import payload

PASSWORD = "Correct-Horse-42"
pytestmark = pytest.mark.django_db
KEY = settings.SIMPLE_JWT["SIGNING_KEY"]


@pytest.fixture(autouse=True)
def _fresh_refusal_cap():
    authentication._last_refusal_audit.clear()
    yield
    authentication._last_refusal_audit.clear()


@pytest.fixture
def user():
    u = User(username=f"officer-{User.objects.count()}", role=Role.BORROWER)
    u.set_password(PASSWORD)
    u.save()
    return u


def login(username: str, password: str = PASSWORD, client: APIClient | None = None):
    return (client or APIClient()).post("/api/v1/auth/token/", {"username": username, "password": password},
                                        format="json")


def me(token: str):
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return c.get("/api/v1/me/")


def refresh(raw: str):
    return APIClient().post("/api/v1/auth/token/refresh/", {"refresh": raw}, format="json")


def assert_error(r, status: int, code: str) -> dict:
    assert r.status_code == status, (r.status_code, r.content)
    body = r.json()
    assert set(body) == {"code", "message", "details"} and body["code"] == code, body
    return body


def refusals(reason: str | None = None):
    qs = AuditEvent.objects.filter(action="auth.token_refused")
    return [e for e in qs if reason is None or e.after["reason"] == reason]


def _b64(obj) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def _claims(token: str) -> dict:
    return jwt.decode(token, KEY, algorithms=["HS256"], audience=settings.SIMPLE_JWT["AUDIENCE"],
                      issuer=settings.SIMPLE_JWT["ISSUER"])


# --- S3: tokens ----------------------------------------------------------------------------------------------
def test_a_login_gives_a_session_bound_pair_and_the_access_token_lives_at_most_15_minutes(user):
    r = login(user.username)
    assert r.status_code == 200, r.content
    body = r.json()
    access, refresh_claims = _claims(body["access"]), _claims(body["refresh"])
    assert access["token_type"] == "access" and refresh_claims["token_type"] == "refresh"
    assert access["exp"] - access["iat"] <= 15 * 60
    assert body["access_expires_in"] <= 15 * 60
    session = TokenSession.objects.get(pk=access["sid"])
    assert session.user == user and refresh_claims["sid"] == session.id and refresh_claims["gen"] == 0
    assert "gen" not in access
    assert me(body["access"]).status_code == 200
    assert AuditEvent.objects.filter(action="auth.login", target_id=str(user.pk)).count() == 1


def _forged(user: User, session_id: str) -> dict[str, str]:
    """Tokens that must all be refused, each named by how it was made."""
    now = int(time.time())
    good = {"token_type": "access", "exp": now + 600, "iat": now, "jti": "x" * 32, "user_id": str(user.pk),
            "sid": session_id, "iss": settings.SIMPLE_JWT["ISSUER"], "aud": settings.SIMPLE_JWT["AUDIENCE"]}
    attacker = "attacker-secret-" + "k" * 40
    return {
        "alg_none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(good)}.",
        "other_key": jwt.encode(good, attacker, algorithm="HS256"),
        "expired": jwt.encode({**good, "exp": now - 5, "iat": now - 905}, KEY, algorithm="HS256"),
        "nbf_future": jwt.encode({**good, "nbf": now + 600}, KEY, algorithm="HS256"),
        "wrong_iss": jwt.encode({**good, "iss": "letsema:elsewhere"}, KEY, algorithm="HS256"),
        "wrong_aud": jwt.encode({**good, "aud": "someone-else"}, KEY, algorithm="HS256"),
        "no_aud": jwt.encode({k: v for k, v in good.items() if k != "aud"}, KEY, algorithm="HS256"),
        "jku": jwt.encode(good, attacker, algorithm="HS256", headers={"jku": "https://evil.example/jwks.json"}),
        "x5u": jwt.encode(good, attacker, algorithm="HS256", headers={"x5u": "https://evil.example/cert.pem"}),
        "jwk": jwt.encode(good, attacker, algorithm="HS256", headers={
            "jwk": {"kty": "oct", "k": base64.urlsafe_b64encode(attacker.encode()).rstrip(b"=").decode()}}),
        "no_session": jwt.encode({k: v for k, v in good.items() if k != "sid"}, KEY, algorithm="HS256"),
        "other_users_session": jwt.encode({**good, "user_id": str(user.pk + 10_000)}, KEY, algorithm="HS256"),
        "refresh_as_access": jwt.encode({**good, "token_type": "refresh"}, KEY, algorithm="HS256"),
    }


def test_forged_foreign_and_stale_tokens_are_refused_with_401_and_audited(user):
    body = login(user.username).json()
    sid = _claims(body["access"])["sid"]
    honest = jwt.encode({**_claims(body["access"])}, KEY, algorithm="HS256")
    assert me(honest).status_code == 200  # the forging recipe itself makes valid tokens with the real key
    for name, token in _forged(user, sid).items():
        authentication._last_refusal_audit.clear()
        before = AuditEvent.objects.filter(action="auth.token_refused").count()
        r = me(token)
        assert r.status_code == 401, (name, r.content)
        assert r.json()["code"] == "token_invalid", (name, r.json())
        assert AuditEvent.objects.filter(action="auth.token_refused").count() == before + 1, name
    assert {e.after["reason"] for e in refusals()} == {"expired", "invalid"}
    assert refusals("expired")[0].after["claimed_user_id"] == str(user.pk)


def test_a_tampered_payload_is_refused(user):
    access = login(user.username).json()["access"]
    head, claims, sig = access.split(".")
    data = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    data["role"] = Role.LETSEMA_ADMIN
    assert_error(me(f"{head}.{_b64(data)}.{sig}"), 401, "token_invalid")
    assert len(refusals("invalid")) == 1


def test_refusals_are_audited_at_most_once_a_minute_per_address_and_reason(user):
    for _ in range(5):
        assert_error(me("not.a.jwt"), 401, "token_invalid")
    assert len(refusals("invalid")) == 1
    expired = _forged(user, "0" * 32)["expired"]
    assert_error(me(expired), 401, "token_invalid")
    assert len(refusals("expired")) == 1  # another reason is audited on its own


def test_a_malformed_authorization_header_is_refused_and_audited():
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION="Bearer two parts")
    assert_error(c.get("/api/v1/me/"), 401, "authentication_failed")
    assert [e.after["reason"] for e in refusals()] == ["malformed"]


def test_a_token_used_after_logout_is_refused(user):
    first = login(user.username).json()
    second = login(user.username).json()  # the same account signed in on another device
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION=f"Bearer {first['access']}")
    r = c.post("/api/v1/auth/logout", {}, format="json")
    assert r.status_code == 200 and r.json() == {"revoked_sessions": 1}
    assert_error(me(first["access"]), 401, "token_revoked")
    assert_error(refresh(first["refresh"]), 401, "token_revoked")
    assert me(second["access"]).status_code == 200  # only that session ended
    assert [(e.target_type, e.after["token"], e.after["reason"]) for e in refusals()] == [
        ("token", "access", "revoked"), ("user", "refresh", "revoked")]
    assert AuditEvent.objects.filter(action="auth.logout", target_id=str(user.pk)).count() == 1


def test_logout_everywhere_ends_every_session(user):
    pairs = [login(user.username).json() for _ in range(3)]
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION=f"Bearer {pairs[0]['access']}")
    assert c.post("/api/v1/auth/logout", {"everywhere": True}, format="json").json() == {"revoked_sessions": 3}
    for p in pairs:
        assert_error(me(p["access"]), 401, "token_revoked")
    assert_error(APIClient().post("/api/v1/auth/logout", {}, format="json"), 401, "not_authenticated")


def test_logout_everywhere_ends_the_web_sessions_too(user):
    browsers = [Client(), Client()]
    for web in browsers:
        web.post("/login/", {"username": user.username, "password": PASSWORD})
        assert web.get("/").wsgi_request.user.is_authenticated
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {login(user.username).json()['access']}")
    assert api.post("/api/v1/auth/logout", {}, format="json").status_code == 200  # one token session only
    assert all(web.get("/").wsgi_request.user.is_authenticated for web in browsers)
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {login(user.username).json()['access']}")
    assert api.post("/api/v1/auth/logout", {"everywhere": True}, format="json").status_code == 200
    assert not any(web.get("/").wsgi_request.user.is_authenticated for web in browsers)
    browsers[0].post("/login/", {"username": user.username, "password": PASSWORD})  # signing in again works
    assert browsers[0].get("/").wsgi_request.user.is_authenticated


def test_refresh_rotates_and_a_reused_refresh_token_signs_the_session_out(user):
    first = login(user.username).json()
    second = refresh(first["refresh"])
    assert second.status_code == 200, second.content
    second = second.json()
    assert second["refresh"] != first["refresh"] and _claims(second["refresh"])["gen"] == 1
    assert me(second["access"]).status_code == 200
    third = refresh(second["refresh"]).json()  # the newest one keeps working
    # a copy of the spent first refresh token comes back: someone else holds it
    assert_error(refresh(first["refresh"]), 401, "token_reused")
    session = TokenSession.objects.get(pk=_claims(first["access"])["sid"])
    assert session.revoked_reason == "refresh_reused" and session.revoked_at is not None
    for access in (first["access"], second["access"], third["access"]):
        assert_error(me(access), 401, "token_revoked")
    assert_error(refresh(third["refresh"]), 401, "token_revoked")
    reuse = AuditEvent.objects.get(action="auth.refresh_reused")
    assert reuse.actor_id == user.pk and reuse.after == {"session": session.id[:8], "presented": 0, "current": 2}


def test_a_disabled_account_is_refused_on_its_next_request(user):
    body = login(user.username).json()
    User.objects.filter(pk=user.pk).update(is_active=False)
    assert_error(me(body["access"]), 401, "user_inactive")
    assert_error(refresh(body["refresh"]), 401, "user_inactive")
    assert [e.after["reason"] for e in refusals()] == ["inactive"]


def test_refresh_input_errors():
    assert_error(APIClient().post("/api/v1/auth/token/refresh/", {}, format="json"), 400, "validation_error")
    assert_error(refresh("garbage"), 401, "token_invalid")
    assert_error(APIClient().post("/api/v1/auth/token/refresh/", {"refresh": "x", "extra": 1}, format="json"),
                 400, "validation_error")


# --- S4: passwords -------------------------------------------------------------------------------------------
def test_ten_failures_throttle_the_account_even_for_the_right_password(user, monkeypatch):
    for i in range(tokens.LOGIN_FAILURE_LIMIT):
        assert_error(login(user.username, "wrong-password"), 401, "invalid_credentials")
    r = login(user.username)  # the right password, but the account is throttled
    body = assert_error(r, 429, "login_throttled")
    assert 0 < int(r["Retry-After"]) <= 15 * 60 and body["details"]["retry_after_seconds"] == int(r["Retry-After"])
    failed = AuditEvent.objects.filter(action="auth.login_failed", target_id=user.username)
    assert failed.count() == tokens.LOGIN_FAILURE_LIMIT
    assert {e.after["reason"] for e in failed} == {"wrong_password"}
    assert AuditEvent.objects.filter(action="auth.login_throttled", target_id=user.username).count() == 1
    for _ in range(3):  # refused while throttled: answered, not audited
        assert_error(login(user.username), 429, "login_throttled")
    assert AuditEvent.objects.filter(action__startswith="auth.login", target_id=user.username).count() == 11
    assert login("someone-else-entirely", "x").status_code == 401  # other accounts are not affected
    # the window passes (shortened here): the right password works again
    monkeypatch.setattr(tokens, "LOGIN_FAILURE_WINDOW", timedelta(seconds=1))
    time.sleep(1.1)
    assert login(user.username).status_code == 200


def test_unknown_user_and_wrong_password_get_the_same_answer_for_the_same_work(user, monkeypatch):
    hasher = get_hasher("default")  # Argon2: checking a password (verify) costs what hashing one (encode) does
    calls = []
    for method in ("encode", "verify"):
        original = getattr(type(hasher), method)

        def counting(self, *args, _original=original, **kwargs):
            calls.append(1)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(type(hasher), method, counting)
    wrong = login(user.username, "wrong-password")
    hashes_for_wrong = len(calls)
    unknown = login("nobody-by-that-name", "wrong-password")
    hashes_for_unknown = len(calls) - hashes_for_wrong
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert hashes_for_wrong == hashes_for_unknown == 1
    reasons = {e.target_id: e.after["reason"] for e in AuditEvent.objects.filter(action="auth.login_failed")}
    assert reasons == {user.username: "wrong_password", "nobody-by-that-name": "unknown_user"}


def test_the_web_login_shares_the_throttle(user):
    web = Client()
    for _ in range(tokens.LOGIN_FAILURE_LIMIT):
        r = web.post("/login/", {"username": user.username, "password": "wrong"})
        assert r.status_code == 200 and "_auth_user_id" not in web.session
    r = web.post("/login/", {"username": user.username, "password": PASSWORD})
    assert r.status_code == 200 and "_auth_user_id" not in web.session
    assert "Too many failed sign-ins" in r.content.decode()
    sesotho = Client(headers={"accept-language": "st"})  # the same refusal, in the borrower's language
    r = sesotho.post("/login/", {"username": user.username, "password": PASSWORD})
    assert r.status_code == 200 and "Leka hape ka mor" in r.content.decode()
    assert {e.after["channel"] for e in AuditEvent.objects.filter(action="auth.login_failed")} == {"web"}
    assert_error(login(user.username), 429, "login_throttled")  # and the API sees the same account state


def test_the_national_id_sign_in_shares_the_throttle():
    data = payload(password=PASSWORD)
    r = APIClient().post("/api/v1/borrowers/register", data, format="json")
    assert r.status_code == 201, r.content

    def visitor(password):
        return APIClient().post("/api/v1/auth/visitor/token", {"national_id": data["national_id"],
                                                                "password": password}, format="json")

    ok = visitor(PASSWORD)
    assert ok.status_code == 200, ok.content
    assert me(ok.json()["access"]).status_code == 200
    for _ in range(tokens.LOGIN_FAILURE_LIMIT):
        assert_error(visitor("wrong-password"), 401, "invalid_credentials")
    assert_error(visitor(PASSWORD), 429, "login_throttled")
    assert {e.after["channel"] for e in AuditEvent.objects.filter(action="auth.login_failed")} == {"visitor"}


def test_login_input_errors():
    body = assert_error(APIClient().post("/api/v1/auth/token/", {}, format="json"), 400, "validation_error")
    assert set(body["details"]["fields"]) == {"username", "password"}


def test_dead_token_sessions_are_pruned_after_the_retention_and_live_ones_kept(user):
    now = timezone.now()
    lifetime = settings.SIMPLE_JWT["REFRESH_TOKEN_LIFETIME"]
    live = login(user.username).json()
    live_sid = _claims(live["access"])["sid"]

    def session(name, **fields):
        s = TokenSession.objects.create(id=name.ljust(32, "0"), user=user)
        TokenSession.objects.filter(pk=s.pk).update(**fields)
        return s.pk

    keep = [
        session("a1", created_at=now - timedelta(days=20)),  # refresh expired 19 days ago: inside retention
        session("a2", created_at=now - timedelta(days=90), refreshed_at=now - timedelta(hours=2)),  # still usable
        session("a3", created_at=now - timedelta(days=5), revoked_at=now - timedelta(days=29)),  # revoked 29 days ago
    ]
    gone = [
        session("b1", created_at=now - lifetime - timedelta(days=31)),
        session("b2", created_at=now - timedelta(days=90), refreshed_at=now - lifetime - timedelta(days=31)),
        session("b3", created_at=now - timedelta(days=40), revoked_at=now - timedelta(days=31)),
    ]
    assert tokens.token_sessions_prune(batch=2) == 3
    left = set(TokenSession.objects.values_list("pk", flat=True))
    assert left == {live_sid, *keep} and not left & set(gone)
    assert me(live["access"]).status_code == 200
    from node.users.tasks import prune_token_sessions

    assert prune_token_sessions.apply().get() == 0  # the beat task runs the same, nothing more to do
