"""Double-submit guard for web forms that move money (the web's counterpart of the API's ``Idempotency-Key``).

Each such form carries a random ``form_key`` rendered with it. The first POST with a key claims it (the same
``IdempotencyRecord`` table as the API, unique per user and key); a second POST of the same form — a double click,
a browser retry — gets the first answer's redirect instead of posting again. A submission refused with an expected
error releases its key, so the corrected form can be sent again.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid

from django.utils import timezone

from node.core.idempotency import claim_key
from node.core.models import IdempotencyRecord

KEY_RE = re.compile(r"^[a-f0-9]{32}$")


def new_form_key() -> str:
    return uuid.uuid4().hex


class AlreadySubmitted(Exception):
    def __init__(self, location: str | None):
        super().__init__(location)
        self.location = location  # None: the first submission is still running


def _digest(request) -> str:
    fields = {k: v for k, v in request.POST.items() if k not in ("csrfmiddlewaretoken", "form_key")}
    return hashlib.sha256(json.dumps([request.path, fields], sort_keys=True).encode()).hexdigest()


def claim(request) -> IdempotencyRecord | None:
    """Claim the form's key; None when the form has no valid key (the caller refuses it). Raises
    AlreadySubmitted for a repeat of a submission that was accepted (or is running)."""
    key = request.POST.get("form_key", "")
    if not KEY_RE.match(key):
        return None
    record = claim_key(request.user, f"web:{key}", f"WEB {request.method} {request.path}", _digest(request))
    if record is not None:
        return record
    existing = IdempotencyRecord.objects.filter(user=request.user, key=f"web:{key}").first()
    if existing is None:  # the first submission failed and released the key just now: this one may run
        record = claim_key(request.user, f"web:{key}", f"WEB {request.method} {request.path}", _digest(request))
        if record is not None:
            return record
        raise AlreadySubmitted(None)
    body = existing.response_body or {}
    raise AlreadySubmitted(body.get("location") if existing.completed_at else None)


def complete(record: IdempotencyRecord, location: str) -> None:
    IdempotencyRecord.objects.filter(pk=record.pk).update(status_code=303, response_body={"location": location},
                                                          completed_at=timezone.now())


def release(record: IdempotencyRecord) -> None:
    IdempotencyRecord.objects.filter(pk=record.pk).delete()
