"""``Idempotency-Key`` for API writes that move money: a replay returns the first answer and does nothing.

The key is claimed first, in its own transaction (a unique row per user and key), so two concurrent requests
with one key cannot both run: the second gets ``409 request_in_progress`` until the first finishes, then the
stored answer. The same key with a different request body is refused (``422 idempotency_key_reused``).
Expected errors (4xx) are stored and replayed too; an unexpected failure releases the key so the client may
retry. The work and the stored answer commit in one transaction, so a crash leaves either both or neither; an unfinished
claim older than ``STALE_CLAIM`` was left by such a crash, and the next request with the key runs it again. The
services behind these endpoints are also idempotent by themselves (state checks under row locks, journal source
keys).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone
from rest_framework.response import Response

from node.core.errors import ApplicationError, api_exception_handler
from node.core.models import IdempotencyRecord

KEY_RE = re.compile(r"^[A-Za-z0-9_.:-]{8,100}$")
#: longer than any request may run (gunicorn's timeout is 60 s): an unfinished claim this old was left by a crash
STALE_CLAIM = timedelta(minutes=2)


class IdempotencyKeyMissing(ApplicationError):
    code = "idempotency_key_required"
    status = 400


class IdempotencyKeyReused(ApplicationError):
    code = "idempotency_key_reused"
    status = 422


class RequestInProgress(ApplicationError):
    code = "request_in_progress"
    status = 409


def _request_hash(request, kwargs) -> str:
    body = request.data if isinstance(request.data, dict) else {}
    blob = json.dumps({"path": request.path, "method": request.method, "body": body, "kwargs": kwargs},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def idempotent(view_method):
    """Decorate an APIView method (post) that must carry an ``Idempotency-Key`` header."""

    @functools.wraps(view_method)
    def wrapper(self, request, *args, **kwargs):
        key = request.headers.get("Idempotency-Key", "")
        if not KEY_RE.match(key):
            raise IdempotencyKeyMissing(
                "Send an Idempotency-Key header (8-100 characters: letters, digits, '_', '.', ':', '-').")
        digest = _request_hash(request, kwargs)
        endpoint = f"{request.method} {request.path}"
        record = claim_key(request.user, key, endpoint, digest)
        if record is None:
            existing = IdempotencyRecord.objects.filter(user=request.user, key=key).first()
            if existing is None:  # the first request failed and released the key just now: claim it again
                record = claim_key(request.user, key, endpoint, digest)
                if record is None:
                    raise RequestInProgress("The first request with this Idempotency-Key is still running.")
                return _run(self, request, args, kwargs, record, view_method)
            if existing.request_hash != digest:
                raise IdempotencyKeyReused("This Idempotency-Key was used for a different request.",
                                           details={"first_used_for": existing.endpoint}) from None
            if existing.completed_at is None:
                # an unfinished claim older than any request can run was left by a crash: its work did not commit
                # (work and answer commit together), so the key may run again
                taken = IdempotencyRecord.objects.filter(
                    pk=existing.pk, completed_at__isnull=True,
                    created_at__lt=timezone.now() - STALE_CLAIM).update(created_at=timezone.now())
                if not taken:
                    raise RequestInProgress("The first request with this Idempotency-Key is still running.") from None
                return _run(self, request, args, kwargs, existing, view_method)
            response = Response(existing.response_body, status=existing.status_code)
            response["Idempotent-Replayed"] = "true"
            return response
        return _run(self, request, args, kwargs, record, view_method)

    wrapper.idempotency_key_required = True  # the API document lists the header (node.core.openapi)
    return wrapper


def claim_key(user, key: str, endpoint: str, digest: str) -> IdempotencyRecord | None:
    """Claim ``key`` for ``user`` (the API's keys here, the web forms' in ``node.web.once``): insert the claim row,
    committed at once (its own statement; the caller is not in a transaction), or None if
    the user already has a row with this key. One statement (``ON CONFLICT DO NOTHING``), not a transaction that
    catches a unique violation: a write request's bookkeeping should not cost more round trips than its work."""
    now = timezone.now()
    with connection.cursor() as cur:
        cur.execute(f"""
            INSERT INTO {IdempotencyRecord._meta.db_table} (user_id, key, endpoint, request_hash, created_at)
            VALUES (%s, %s, %s, %s, %s)
            ON CONFLICT ON CONSTRAINT one_record_per_user_key DO NOTHING
            RETURNING id""", [user.pk, key, endpoint, digest, now])  # nosec B608 -- model table name, values bound
        row = cur.fetchone()
    if row is None:
        return None
    return IdempotencyRecord(pk=row[0], user=user, key=key, endpoint=endpoint, request_hash=digest, created_at=now)


def _run(self, request, args, kwargs, record: IdempotencyRecord, view_method):
    try:
        # the work and the stored answer commit together: a crash (or a database failover) between them would
        # otherwise leave a posted write whose key answers 409 request_in_progress forever
        with transaction.atomic():
            try:
                response = view_method(self, request, *args, **kwargs)
            except ApplicationError as exc:  # services roll their own work back before raising
                response = api_exception_handler(exc, {"request": request, "view": self})
            record.status_code, record.response_body = response.status_code, response.data
            record.completed_at = timezone.now()
            record.save(update_fields=["status_code", "response_body", "completed_at"])
    except Exception:
        IdempotencyRecord.objects.filter(pk=record.pk).delete()
        raise
    return response
