"""How a request proves who it is: API access tokens bound to a live token session, and passwords through the
throttled check (node.users.tokens) for the web log-in and Django's admin.

Every refused access token is audited (``auth.token_refused`` with the reason: expired, invalid, revoked,
inactive, malformed), at most once a minute per client address and reason in each web process, so that a
stream of garbage tokens cannot make the node write one audit row per request.
"""

from __future__ import annotations

import logging
import threading
import time

import jwt
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied
from django.db import transaction
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.settings import api_settings

from node.audit.services import audit_record
from node.core.logging import current_client_ip
from node.users.models import TokenSession

log = logging.getLogger("letsema.auth")

REFUSAL_AUDIT_EVERY = 60.0  # seconds, per (client address, reason) and process
_last_refusal_audit: dict[tuple[str, str], float] = {}
_refusal_lock = threading.Lock()


def _reason(exc: Exception) -> str:
    detail = getattr(exc, "detail", None)
    if isinstance(detail, dict):  # simplejwt's exceptions carry {"detail", "code", ...}
        codes = str(detail.get("code", ""))
    else:
        codes = exc.get_codes() if hasattr(exc, "get_codes") else None
    if isinstance(codes, str) and codes in ("token_revoked", "user_inactive", "bad_authorization_header"):
        return {"token_revoked": "revoked", "user_inactive": "inactive", "bad_authorization_header": "malformed"}[codes]
    return "expired" if "expired" in str(getattr(exc, "detail", exc)).lower() else "invalid"


def _claimed(raw: bytes | None) -> dict:
    """What an unverifiable token *claims* (user id, session), for the audit row only; never trusted."""
    try:
        claims = jwt.decode(raw or b"", options={"verify_signature": False})
    except jwt.PyJWTError:
        return {}
    out = {}
    for key in (api_settings.USER_ID_CLAIM, "sid"):
        if isinstance(claims.get(key), str | int):
            out[f"claimed_{key}"] = str(claims[key])[:40]
    return out


def _audit_refusal(reason: str, raw: bytes | None) -> None:
    ip = current_client_ip() or "-"
    now = time.monotonic()
    with _refusal_lock:
        if now - _last_refusal_audit.get((ip, reason), -1e9) < REFUSAL_AUDIT_EVERY:
            return
        if len(_last_refusal_audit) > 10_000:
            _last_refusal_audit.clear()
        _last_refusal_audit[(ip, reason)] = now
    try:
        with transaction.atomic():
            audit_record(actor=None, action="auth.token_refused", target_type="token", target_id="",
                         after={"reason": reason, "token": "access", **_claimed(raw)})
    except Exception:  # the request is refused either way; a failing audit write must not turn 401 into 500
        log.exception("could not audit a refused token", extra={"reason": reason})


class SessionJWTAuthentication(JWTAuthentication):
    """simplejwt's bearer-token check, with the user loaded through the token's session: one query (the
    session joined with its user), and a revoked session or a disabled account refused at once."""

    def authenticate(self, request):
        header = self.get_header(request)
        if header is None:
            return None
        raw = None
        try:
            raw = self.get_raw_token(header)  # raises on a malformed header ("Bearer a b")
            if raw is None:
                return None
            validated = self.get_validated_token(raw)
            return self.get_user(validated), validated
        except (InvalidToken, AuthenticationFailed) as exc:
            _audit_refusal(_reason(exc), raw)
            raise

    def get_user(self, validated_token):
        sid = validated_token.get("sid")
        uid = validated_token.get(api_settings.USER_ID_CLAIM)
        if not isinstance(sid, str) or uid is None:
            raise InvalidToken({"detail": "The token belongs to no session; sign in again.", "code": "token_not_valid"})
        session = TokenSession.objects.select_related("user").filter(pk=sid).first()
        if session is None or str(session.user_id) != str(uid):
            raise InvalidToken({"detail": "The token belongs to no session; sign in again.", "code": "token_not_valid"})
        if session.revoked_at is not None:
            raise AuthenticationFailed("This session was signed out; sign in again.", code="token_revoked")
        if not session.user.is_active:
            raise AuthenticationFailed("The account is disabled.", code="user_inactive")
        return session.user


class ThrottledModelBackend(ModelBackend):
    """Django's username/password backend (web log-in, admin) through the throttled, audited check. A throttled
    account is refused like a wrong password (PermissionDenied stops ``authenticate()``); the refusal is left on
    the request as ``login_throttled`` so that the web log-in form can say so."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None or password is None:
            return None
        from node.users.tokens import InvalidCredentials, LoginThrottled, password_sign_in  # (import cycle)

        try:
            return password_sign_in(username=username, password=password, channel="web")
        except InvalidCredentials:
            return None
        except LoginThrottled as exc:
            if request is not None:
                request.login_throttled = exc
            raise PermissionDenied(exc.message) from None
