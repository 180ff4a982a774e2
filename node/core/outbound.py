"""One way to call an outside gateway over HTTP (the SMS gateway, the mobile-money provider): JSON body, the
caller's idempotency key as ``Idempotency-Key`` (a gateway that honours it drops a repeat), an optional bearer
token from an environment variable, a timeout; any network error or non-2xx answer raises the caller's error."""

from __future__ import annotations

import os


def post_json(url: str, body: dict, *, idempotency_key: str, token_env: str, timeout: float, error: type[Exception],
              what: str) -> None:
    import requests

    headers = {"Content-Type": "application/json", "Idempotency-Key": idempotency_key}
    token = os.environ.get(token_env)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        r = requests.post(url, json=body, headers=headers, timeout=timeout)
    except requests.RequestException as exc:
        raise error(f"{what} unreachable ({type(exc).__name__})") from exc
    if not 200 <= r.status_code < 300:
        raise error(f"{what} answered {r.status_code}")
