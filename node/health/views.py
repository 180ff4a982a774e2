from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from node.health.checks import run_checks


def _outbox() -> dict:
    """The replication backlog (information for operators; a backlog alone does not make the node down)."""
    from replication.outbox import outbox_lag

    try:
        return outbox_lag().to_json()
    except Exception as exc:  # PostgreSQL down: the postgres check already says so
        return {"error": type(exc).__name__}


@require_GET
def healthz(request):
    """200 when PostgreSQL, the ring and the broker all answer; 503 naming what is down."""
    checks = run_checks()
    down = sorted(name for name, r in checks.items() if r["status"] != "up")
    body = {
        "status": "down" if down else "up",
        "district": settings.DISTRICT.code,
        "checks": checks,
    }
    body["outbox"] = _outbox()
    if down:
        body["down"] = down
        body["message"] = "Unavailable: " + ", ".join(down)
    response = JsonResponse(body, status=503 if down else 200)
    response["Cache-Control"] = "no-store"
    return response
