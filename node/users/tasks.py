"""Celery tasks for accounts (thin: the work is in node.users.tokens)."""

from celery import shared_task

from node.users import tokens


@shared_task(acks_late=True, ignore_result=True)
def prune_token_sessions() -> int:
    """Daily (beat): drop token sessions dead for longer than the retention."""
    return tokens.token_sessions_prune()
