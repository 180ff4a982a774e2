"""Users and authenticated API clients for tests."""

from __future__ import annotations

import uuid

from rest_framework.test import APIClient

from node.users.models import User
from node.users.tokens import access_token_for

PASSWORD = "Strong-Pass-2026!"


def make_user(role, mfi=None, username=None) -> User:
    u = User(username=username or f"{role}-{uuid.uuid4().hex[:8]}", role=role, mfi=mfi)
    u.set_password(PASSWORD)
    u.save()
    return u


def client_for(u: User) -> APIClient:
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token_for(u)}")
    return c
