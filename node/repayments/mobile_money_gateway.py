"""The mobile-money provider, both ways (docs/mobile-money.md).

Out: :func:`request_payment` asks the provider to prompt a phone for a payment — ``file`` (JSON lines: development,
the demo and the tests; ``manage.py mobile_money_simulate`` then plays the provider), ``console`` (log) or ``http``
(``POST $LETSEMA_MOBILE_MONEY_URL`` with the JSON below, ``Idempotency-Key: <request_id>``, an optional bearer token
from ``$LETSEMA_MOBILE_MONEY_TOKEN``; a non-2xx answer or a network error raises :class:`PromptFailed`).

In: the provider's confirmation is signed with the shared secret: ``X-Letsema-Timestamp: <unix seconds>`` and
``X-Letsema-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>." + the raw body>`` (:func:`signature`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
from datetime import UTC, datetime

from django.conf import settings

from node.core.outbound import post_json

log = logging.getLogger("letsema.mobile_money")
_file_lock = threading.Lock()


class PromptFailed(Exception):
    pass


def request_payment(*, request_id: str, phone: str, amount: str, currency: str, description: str,
                    callback_url: str) -> None:
    body = {"request_id": request_id, "phone": phone, "amount": amount, "currency": currency,
            "description": description, "callback_url": callback_url}
    backend = settings.MOBILE_MONEY_BACKEND
    if backend == "file":
        path = settings.MOBILE_MONEY_FILE_PATH
        path.parent.mkdir(parents=True, exist_ok=True)
        with _file_lock, open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"ts": datetime.now(UTC).isoformat(), **body}) + "\n")
    elif backend == "console":
        log.info("mobile money prompt", extra={"request_id": request_id, "amount": amount})
    elif backend == "http":
        post_json(settings.MOBILE_MONEY_URL, body, idempotency_key=request_id, token_env="LETSEMA_MOBILE_MONEY_TOKEN",
                  timeout=settings.MOBILE_MONEY_TIMEOUT, error=PromptFailed, what="the mobile-money provider")
    else:
        raise PromptFailed(f"unknown mobile-money backend {backend!r}")


def read_prompts() -> list[dict]:
    """Prompts written by the file backend (the demo, the simulator and the tests)."""
    path = settings.MOBILE_MONEY_FILE_PATH
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def signature_valid(secret: str, timestamp: str, body: bytes, given: str, *, now: float, window: int) -> bool:
    """A confirmation is genuine when its signature matches (compared in constant time) and its timestamp is
    within ``window`` seconds of ``now`` — an old confirmation replayed is refused even with a good signature."""
    if not secret or not timestamp.isdigit() or abs(now - int(timestamp)) > window:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), given or "")
