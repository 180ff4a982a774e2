from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.crypto import salted_hmac


class Role(models.TextChoices):
    BORROWER = "borrower", "Borrower"
    LOAN_OFFICER = "loan_officer", "Loan officer"
    MFI_ADMIN = "mfi_admin", "MFI administrator"
    ANALYST = "analyst", "Analyst"
    LETSEMA_ADMIN = "letsema_admin", "Letsema administrator"
    OPERATOR = "operator", "Operator"


#: Roles that work for one MFI and must have one.
MFI_STAFF_ROLES = frozenset({Role.LOAN_OFFICER, Role.MFI_ADMIN, Role.ANALYST})


class User(AbstractUser):
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.BORROWER, db_index=True)
    mfi = models.ForeignKey("mfis.Mfi", null=True, blank=True, on_delete=models.PROTECT, related_name="staff")
    # bumped by "log out everywhere": every web (Django) session of the account ends on its next request, as
    # every token session does (node.users.tokens.token_sessions_revoke)
    session_epoch = models.PositiveIntegerField(default=0)

    def _get_session_auth_hash(self, secret=None):
        # Django checks each web session's stored hash against this one on every request; mixing the epoch in
        # (from the first bump on: sessions of accounts never signed out everywhere stay valid across upgrades)
        if not self.session_epoch:
            return super()._get_session_auth_hash(secret=secret)
        return salted_hmac("node.users.models.User.session_auth_hash", f"{self.password}:{self.session_epoch}",
                           secret=secret, algorithm="sha256").hexdigest()

    class Meta:
        constraints = [
            models.CheckConstraint(
                name="mfi_staff_have_mfi",
                condition=~models.Q(role__in=["loan_officer", "mfi_admin", "analyst"]) | models.Q(mfi__isnull=False),
            ),
        ]


class TokenSession(models.Model):
    """One sign-in over the API: the chain of refresh tokens it started and every access token minted from them
    (each token carries the session id as ``sid``). Revoking the session (log-out, a refresh token used twice)
    refuses all of them at once, before they expire. Only the newest refresh token of the chain (``generation``)
    may be exchanged; using an older one means it was copied, and revokes the session."""

    id = models.CharField(primary_key=True, max_length=32, editable=False)  # 128 random bits, hex
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="token_sessions")
    created_at = models.DateTimeField(auto_now_add=True)
    refreshed_at = models.DateTimeField(null=True, blank=True)
    generation = models.PositiveIntegerField(default=0)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=20, blank=True)  # logout | logout_all | refresh_reused
    ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "revoked_at"], name="token_session_user_idx")]

    def __str__(self) -> str:
        return f"session {self.id[:8]}… of user {self.user_id}"
