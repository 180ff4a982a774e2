"""Pluggable SMS gateway: ``file`` (JSON lines, development and tests), ``console`` (log) or ``http``.

The HTTP adapter posts ``{"to", "message"}`` as JSON to ``$LETSEMA_SMS_URL`` with an optional bearer token
from ``$LETSEMA_SMS_TOKEN``; any non-2xx answer or network error raises SmsSendFailed.

``message_id`` (optional) is sent as the ``Idempotency-Key`` and returned; notifications pass one derived from the
event, so a gateway that honours the key drops a repeat of the same message. Without it a fresh id is made.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from datetime import UTC, datetime

from django.conf import settings

from node.core.outbound import post_json

log = logging.getLogger("letsema.sms")
_file_lock = threading.Lock()


class SmsSendFailed(Exception):
    pass


def send_sms(to: str, message: str, *, message_id: str | None = None) -> str:
    backend = settings.SMS_BACKEND
    message_id = message_id or uuid.uuid4().hex
    if backend == "file":
        path = settings.SMS_FILE_PATH
        path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"id": message_id, "ts": datetime.now(UTC).isoformat(), "to": to, "message": message})
        with _file_lock, open(path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
    elif backend == "console":
        masked = to[:4] + "*" * max(len(to) - 7, 0) + to[-3:] if len(to) > 7 else "*" * len(to)
        log.info("sms", extra={"to": masked, "sms_id": message_id, "length": len(message)})
        print(f"SMS to {to}: {message}", flush=True)  # noqa: T201 - development backend
    elif backend == "http":
        post_json(settings.SMS_HTTP_URL, {"to": to, "message": message}, idempotency_key=message_id,
                  token_env="LETSEMA_SMS_TOKEN", timeout=settings.SMS_HTTP_TIMEOUT, error=SmsSendFailed,
                  what="SMS gateway")
    else:
        raise SmsSendFailed(f"unknown SMS backend {backend!r}")
    return message_id


def read_file_outbox() -> list[dict]:
    """Messages written by the file backend (tests and the demo)."""
    path = settings.SMS_FILE_PATH
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
