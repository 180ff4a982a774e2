"""Coalesced wake-ups after commit: "run this task soon", asked by many transactions, queued once per window.

A transaction that leaves work for a worker (outbox events to ship, notifications to send) asks, after it commits,
for a run of the task that does that work ``window_ms`` later. The first commit of a window sets one Redis key
(``SET NX PX window_ms``) and queues one task due at the window's end; the commits after it in the same window
queue nothing, because that run picks up their work too; a commit after the key expires opens the next window. So a
burst of commits costs at most ``1000 / window_ms`` broker messages a second (and a worker one task each), not one
per commit, across all the node's processes (the key lives in the node's own Redis database).

A wake-up is only a shortcut: each task it queues also runs from the beat, so a Redis or broker failure is logged
and delays the work until then; it is never lost, and the committing request never fails for it.
"""

from __future__ import annotations

import logging
from functools import partial

from django.conf import settings
from django.db import transaction

from node.core.redis_client import redis_client


def wake_after_commit(*, key: str, window_ms: int, task, log: logging.Logger, what: str) -> None:
    """After the current transaction commits, :func:`wake` (``window_ms`` <= 0: queue ``task`` right away, one
    message per commit)."""
    transaction.on_commit(partial(wake, key=key, window_ms=window_ms, task=task, log=log, what=what), robust=True)


def wake(*, key: str, window_ms: int, task, log: logging.Logger, what: str) -> bool:
    """Queue ``task`` due in ``window_ms`` unless this window already has one; answers whether it queued."""
    try:
        if window_ms <= 0:
            task.apply_async(expires=60)
            return True
        if redis_client(settings.CELERY_BROKER_URL).set(key, "1", nx=True, px=window_ms):
            task.apply_async(countdown=window_ms / 1000, expires=60)
            return True
    except Exception as exc:  # noqa: BLE001 - the beat runs the task anyway, a little later
        log.warning(f"could not wake {what}; the periodic run will do it",
                    extra={"error": f"{type(exc).__name__}: {str(exc)[:200]}"})
    return False
