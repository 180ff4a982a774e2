"""API sign-in: password checks with a per-account throttle, token sessions, refresh-token rotation, log-out.

The one place that issues JWTs (:func:`token_pair_issue`) and checks an API or web password
(:func:`password_check`). Every token carries its session id (``sid``); :class:`SessionJWTAuthentication` loads
the session with the user in the one query that simplejwt spent on the user alone, so a revoked session is
refused on the next request, not when its access token expires.

- **Throttle** (reliability notes S4): after ``LOGIN_FAILURE_LIMIT`` failed passwords for one username within
  ``LOGIN_FAILURE_WINDOW``, the password is not checked any more until the oldest of those failures leaves the
  window: 429 ``login_throttled`` with ``Retry-After``. Every failure is an audit row (``auth.login_failed``,
  counted from there, so the audit trail *is* the throttle's memory); the attempt that reaches the limit also
  writes ``auth.login_throttled``; attempts refused while throttled are logged, not audited (an attacker must
  not be able to make the node write one audit row per request). Unknown usernames cost the same password hash
  and get the same answer as a wrong password.
- **Rotation** (S3): a refresh answers a new access token *and* a new refresh token; the old refresh token is
  spent. Presenting a spent one revokes the whole session (``auth.refresh_reused``: someone holds a copy), and
  every token of it is refused from then on. A client that loses the answer to a refresh signs in again.
- **Log-out**: revokes the session of the access token used (or all of the user's sessions).
"""

from __future__ import annotations

import logging
import math
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import RefreshToken

from node.audit.models import AuditEvent
from node.audit.services import audit_record
from node.core.errors import ApplicationError
from node.core.logging import current_client_ip
from node.users.models import TokenSession, User

log = logging.getLogger("letsema.auth")

LOGIN_FAILURE_LIMIT = int(getattr(settings, "LETSEMA_LOGIN_FAILURE_LIMIT", 10))
LOGIN_FAILURE_WINDOW = timedelta(minutes=int(getattr(settings, "LETSEMA_LOGIN_FAILURE_WINDOW_MINUTES", 15)))


class InvalidCredentials(ApplicationError):
    code = "invalid_credentials"
    status = 401


class LoginThrottled(ApplicationError):
    code = "login_throttled"
    status = 429


class TokenRefused(ApplicationError):
    """A refresh token that cannot be exchanged (code ``token_invalid``, ``token_revoked`` or ``token_reused``)."""

    code = "token_invalid"
    status = 401


# --- passwords ---------------------------------------------------------------------------------------------
def _failures_in_window(username: str) -> list:
    since = timezone.now() - LOGIN_FAILURE_WINDOW
    return list(AuditEvent.objects.filter(action="auth.login_failed", target_type="login", target_id=username,
                                          occurred_at__gte=since)
                .order_by("-occurred_at").values_list("occurred_at", flat=True)[:LOGIN_FAILURE_LIMIT])


def password_check(*, username: str, password: str, user: User | None, channel: str) -> User:
    """``user`` (looked up by ``username``, None when unknown) if ``password`` is right and the account active;
    else :class:`InvalidCredentials` (the same for every reason) or :class:`LoginThrottled`. ``channel`` names
    the door (``api``, ``web``, ``visitor``) in the audit row."""
    username = username[:150]
    recent = _failures_in_window(username)
    if len(recent) >= LOGIN_FAILURE_LIMIT:
        retry_after = max(1, math.ceil((recent[-1] + LOGIN_FAILURE_WINDOW - timezone.now()).total_seconds()))
        log.warning("login throttled", extra={"username": username, "channel": channel, "retry_after": retry_after})
        raise LoginThrottled(
            f"Too many failed sign-ins for this account; try again in {math.ceil(retry_after / 60)} minute(s).",
            details={"retry_after_seconds": retry_after}, retry_after=retry_after)
    if user is not None and user.is_active and user.check_password(password):
        return user
    if user is None or not user.is_active:
        make_password(password)  # the same work as a real check: no timing hint of who exists
    reason = "unknown_user" if user is None else ("inactive" if not user.is_active else "wrong_password")
    with transaction.atomic():
        audit_record(actor=None, action="auth.login_failed", target_type="login", target_id=username,
                     mfi=user.mfi if user is not None and user.mfi_id else None,
                     after={"reason": reason, "channel": channel, "failures_in_window": len(recent) + 1})
        if len(recent) + 1 == LOGIN_FAILURE_LIMIT:
            audit_record(actor=None, action="auth.login_throttled", target_type="login", target_id=username,
                         after={"limit": LOGIN_FAILURE_LIMIT,
                                "window_minutes": int(LOGIN_FAILURE_WINDOW.total_seconds() // 60)})
    raise InvalidCredentials("Wrong username or password, or the account is disabled.")


def password_sign_in(*, username: str, password: str, channel: str = "api") -> User:
    user = User.objects.select_related("mfi").filter(username=username).first()
    return password_check(username=username, password=password, user=user, channel=channel)


# --- tokens --------------------------------------------------------------------------------------------------
def _refresh_for(user: User, session: TokenSession) -> RefreshToken:
    refresh = RefreshToken.for_user(user)
    refresh["sid"] = session.id
    refresh["gen"] = session.generation
    refresh["role"] = user.role
    refresh["district"] = settings.DISTRICT.code
    refresh["mfi"] = user.mfi.code if user.mfi_id else None
    return refresh


def _pair(refresh: RefreshToken) -> dict:
    access = refresh.access_token
    del access["gen"]  # the access token needs the session, not the refresh chain's position
    return {"access": str(access), "refresh": str(refresh),
            "access_expires_in": int(settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"].total_seconds())}


@transaction.atomic
def token_pair_issue(*, user: User, channel: str = "api") -> dict:
    """Open a token session for ``user`` (already authenticated) and answer its first access/refresh pair."""
    session = TokenSession.objects.create(id=secrets.token_hex(16), user=user, ip=current_client_ip())
    if settings.SIMPLE_JWT.get("UPDATE_LAST_LOGIN"):
        User.objects.filter(pk=user.pk).update(last_login=timezone.now())
    audit_record(actor=user, action="auth.login", target_type="user", target_id=user.pk, mfi=user.mfi,
                 after={"channel": channel, "session": session.id[:8]})
    return _pair(_refresh_for(user, session))


def access_token_for(user: User) -> str:
    """A fresh session's access token (operator tools, benches, tests)."""
    return token_pair_issue(user=user, channel="tool")["access"]


def token_refresh(*, raw: str) -> dict:
    """Exchange the newest refresh token of a session for a new pair; the old one is spent."""
    try:
        old = RefreshToken(raw)
    except TokenError as exc:
        raise TokenRefused(f"The refresh token is not valid: {exc}.") from None
    sid, gen = old.get("sid"), old.get("gen")
    if not isinstance(sid, str) or not isinstance(gen, int):
        raise TokenRefused("The refresh token belongs to no session; sign in again.")
    refused: TokenRefused | None = None
    with transaction.atomic():
        session = (TokenSession.objects.select_for_update(of=("self",)).select_related("user", "user__mfi")
                   .filter(pk=sid).first())
        if session is None or str(session.user_id) != str(old.get(settings.SIMPLE_JWT.get("USER_ID_CLAIM", "user_id"))):
            raise TokenRefused("The refresh token belongs to no session; sign in again.")
        user = session.user
        if session.revoked_at is not None:
            audit_record(actor=user, action="auth.token_refused", target_type="user", target_id=user.pk,
                         mfi=user.mfi, after={"reason": "revoked", "session": sid[:8], "token": "refresh"})
            refused = TokenRefused("This session was signed out; sign in again.", code="token_revoked")
        elif gen != session.generation:
            session.revoked_at, session.revoked_reason = timezone.now(), "refresh_reused"
            session.save(update_fields=["revoked_at", "revoked_reason"])
            audit_record(actor=user, action="auth.refresh_reused", target_type="user", target_id=user.pk,
                         mfi=user.mfi, after={"session": sid[:8], "presented": gen, "current": session.generation})
            log.warning("refresh token reused: session revoked", extra={"user": user.pk, "session": sid[:8]})
            refused = TokenRefused("This refresh token was already used; the session is signed out for safety. "
                                   "Sign in again.", code="token_reused")
        elif not user.is_active:
            refused = TokenRefused("The account is disabled.", code="user_inactive")
        else:
            session.generation += 1
            session.refreshed_at = timezone.now()
            session.save(update_fields=["generation", "refreshed_at"])
    if refused is not None:  # raised after the commit: the audit row and the revocation stay
        raise refused
    return _pair(_refresh_for(user, session))


@transaction.atomic
def token_sessions_revoke(*, actor: User, sid: str | None, everywhere: bool = False) -> int:
    """Log-out: revoke the session ``sid`` of ``actor`` (or all of their token sessions, and their web sessions
    with them). Answers how many token sessions."""
    qs = TokenSession.objects.filter(user=actor, revoked_at__isnull=True)
    if not everywhere:
        qs = qs.filter(pk=sid or "")
    n = qs.update(revoked_at=timezone.now(), revoked_reason="logout_all" if everywhere else "logout")
    if everywhere:  # the web sessions too (User._get_session_auth_hash)
        User.objects.filter(pk=actor.pk).update(session_epoch=F("session_epoch") + 1)
    audit_record(actor=actor, action="auth.logout", target_type="user", target_id=actor.pk, mfi=actor.mfi,
                 after={"sessions": n, "everywhere": everywhere})
    return n


def token_sessions_prune(*, retention_days: int | None = None, batch: int = 5000) -> int:
    """Delete the token sessions no token can use any more — revoked ones, and ones whose newest refresh token
    has expired — once they have been dead ``retention_days`` (``LETSEMA_TOKEN_SESSION_RETENTION_DAYS``, 30).
    Who signed in and out stays in the audit trail; this only keeps the table (read on every request) small.
    Deletes in batches, each its own transaction, so sign-ins are never held up. Answers how many went."""
    if retention_days is None:
        retention_days = settings.LETSEMA_TOKEN_SESSION_RETENTION_DAYS
    now = timezone.now()
    dead_before = now - timedelta(days=retention_days)
    last_usable = dead_before - settings.SIMPLE_JWT["REFRESH_TOKEN_LIFETIME"]
    dead = (TokenSession.objects.annotate(last_refresh=Coalesce("refreshed_at", "created_at"))
            .filter(Q(revoked_at__lt=dead_before) | Q(revoked_at__isnull=True, last_refresh__lt=last_usable)))
    total = 0
    while True:
        ids = list(dead.values_list("pk", flat=True)[:batch])
        if not ids:
            break
        total += TokenSession.objects.filter(pk__in=ids).delete()[0]
    log.info("token sessions pruned", extra={"deleted": total, "retention_days": retention_days})
    return total
