"""``GET /metrics``: this node's operational figures in the Prometheus text format (version 0.0.4), for a scraper.

What an operator alerts on: each dependency up or down (the /healthz checks), the replication outbox backlog, each
peer's backoff state (the fan-out's per-peer retry state), notifications waiting or failed, how far close of
business is behind, and loans by status. Every sample carries a ``district`` label. No borrower data, no amounts.

Access: scrapers from the addresses in ``LETSEMA_METRICS_ALLOW`` (loopback by default), or any client sending
``Authorization: Bearer <LETSEMA_METRICS_TOKEN>`` when that setting is set. Anyone else gets 403
``permission_denied``.
"""

from __future__ import annotations

import hmac
import ipaddress
import time

from django.conf import settings
from django.db.models import Count
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from node.core.logging import current_client_ip
from node.health.checks import run_checks

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Exposition:
    def __init__(self, district: str):
        self.district = district
        self.lines: list[str] = []

    def family(self, name: str, help_text: str, samples: list[tuple[dict, float]], kind: str = "gauge") -> None:
        self.lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        for labels, value in samples:
            pairs = {"district": self.district, **labels}
            text = ",".join(f'{k}="{_escape(str(v))}"' for k, v in pairs.items())
            self.lines.append(f"{name}{{{text}}} {_number(value)}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _allowed(request) -> bool:
    token = getattr(settings, "LETSEMA_METRICS_TOKEN", "")
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer ") and hmac.compare_digest(header[7:].encode(), token.encode()):
        return True
    address = current_client_ip() or request.META.get("REMOTE_ADDR", "")
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(net, strict=False)
               for net in getattr(settings, "LETSEMA_METRICS_ALLOW", ["127.0.0.0/8", "::1/128"]))


def collect() -> str:
    """The exposition text (each source read once; a source that fails is left out, its dependency shows down)."""
    from federation.backoff import default_backoff
    from federation.peers import get_directory
    from node.cob.models import CobRun
    from node.cob.services import closed_through
    from node.loans.models import Loan
    from node.notifications.models import Notification
    from replication.outbox import outbox_lag

    own = settings.DISTRICT.code
    out = _Exposition(own)
    checks = run_checks()
    out.family("letsema_dependency_up", "1 when the dependency answers the health check, else 0.",
               [({"dependency": name}, 1 if r["status"] == "up" else 0) for name, r in sorted(checks.items())])
    if checks.get("postgres", {}).get("status") == "up":
        lag = outbox_lag()
        out.family("letsema_outbox_pending", "Credit events written but not yet shipped to the ring.",
                   [({}, lag.pending)])
        out.family("letsema_outbox_failing", "Pending credit events that failed at least once.", [({}, lag.failing)])
        out.family("letsema_outbox_oldest_pending_seconds", "Age of the oldest unshipped credit event.",
                   [({}, round(lag.oldest_pending_seconds, 3))])
        if lag.last_shipped_at is not None:
            out.family("letsema_outbox_last_shipped_timestamp_seconds", "When the last credit event was shipped.",
                       [({}, round(lag.last_shipped_at.timestamp(), 3))])
        counts = dict(Notification.objects.filter(status__in=("pending", "failed")).values_list("status")
                      .annotate(n=Count("id")))
        out.family("letsema_notifications", "Notifications waiting for a (next) attempt or given up.",
                   [({"status": s}, counts.get(s, 0)) for s in ("pending", "failed")])
        through = closed_through()
        behind = (timezone.localdate() - through).days if through else -1
        out.family("letsema_cob_days_behind", "Days between today and the last business day closed (-1: never).",
                   [({}, behind)])
        last = CobRun.objects.order_by("-business_date").values("status", "loans_done", "loans_total").first()
        out.family("letsema_cob_running", "1 while a close of business is running (or was interrupted).",
                   [({}, 1 if last and last["status"] == "running" else 0)])
        loans = dict(Loan.objects.values_list("status").annotate(n=Count("id")))
        out.family("letsema_loans", "Loans on this node by status.", [({"status": s}, n) for s, n in sorted(loans.items())])
    directory = get_directory()
    peers = [p.district for p in directory.fanout_peers(own)]
    states = default_backoff().states(peers)
    now = time.time()
    out.family("letsema_peer_backing_off", "1 while a peer is backed off after failures (look-ups skip it).",
               [({"peer": d}, 1 if states[d].down_at(now) else 0) for d in peers])
    out.family("letsema_peer_failures", "Consecutive failures of the peer since its last success.",
               [({"peer": d}, states[d].failures) for d in peers])
    out.family("letsema_peer_retry_in_seconds", "Seconds until a backed-off peer is tried again (0: not backed off).",
               [({"peer": d}, round(max(0.0, states[d].retry_at - now), 1) if states[d].down_at(now) else 0)
                for d in peers])
    out.family("letsema_peer_directory_from_ring", "1 when the peer directory was read from the ring, 0 when only "
               "from configuration.", [({}, 1 if directory.ring_ok else 0)])
    return out.text()


@require_GET
def metrics(request):
    if not _allowed(request):
        return JsonResponse({"code": "permission_denied", "message": "Metrics are for the node's scrapers only.",
                             "details": {}}, status=403)
    response = HttpResponse(collect(), content_type=CONTENT_TYPE)
    response["Cache-Control"] = "no-store"
    return response
