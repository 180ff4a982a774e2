"""GET /metrics: the node's operational figures in the Prometheus text format, for scrapers only (docs/operations
in README: metrics). Checked in-process against the test cluster's real PostgreSQL, ring and Redis, and once over
HTTP on the running maseru node."""

from __future__ import annotations

import re

import pytest
import requests
from django.test import Client

from federation.backoff import default_backoff
from replication.models import OutboxEvent
from tests.loan_fixtures import disbursed, open_shop

pytestmark = pytest.mark.django_db

SAMPLE = re.compile(r'^([a-z_]+)\{([^}]*)\} (-?[0-9.e+]+)$')


def parse(text: str) -> dict[tuple[str, frozenset], float]:
    """{(name, labels): value}; every line is a comment or a well-formed sample."""
    samples = {}
    for line in text.splitlines():
        if line.startswith(("# HELP ", "# TYPE ")):
            continue
        m = SAMPLE.match(line)
        assert m, f"not a Prometheus sample: {line!r}"
        labels = frozenset(tuple(kv.split("=", 1)) for kv in m.group(2).split(","))
        samples[(m.group(1), labels)] = float(m.group(3))
    return samples


def value(samples, name, **labels) -> float:
    want = frozenset({("district", '"maseru"'), *((k, f'"{v}"') for k, v in labels.items())})
    return samples[(name, want)]


def test_metrics_report_dependencies_outbox_loans_and_peer_backoff():
    shop = open_shop("metrics")
    disbursed(shop)
    backoff = default_backoff()
    backoff.record_failure("leribe", "timeout")
    try:
        r = Client().get("/metrics")
        assert r.status_code == 200 and r["Content-Type"].startswith("text/plain; version=0.0.4")
        samples = parse(r.content.decode())
    finally:
        backoff.record_success("leribe", None)
    for dependency in ("postgres", "cassandra", "broker"):
        assert value(samples, "letsema_dependency_up", dependency=dependency) == 1
    assert value(samples, "letsema_outbox_pending") == OutboxEvent.objects.filter(shipped_at__isnull=True).count() > 0
    assert value(samples, "letsema_loans", status="active") == 1
    assert value(samples, "letsema_peer_backing_off", peer="leribe") == 1
    assert value(samples, "letsema_peer_failures", peer="leribe") >= 1
    assert value(samples, "letsema_peer_retry_in_seconds", peer="leribe") > 0
    assert value(samples, "letsema_peer_backing_off", peer="mohales_hoek") == 0
    assert value(samples, "letsema_notifications", status="failed") == 0
    assert shop.borrower.national_id not in r.content.decode()


def test_metrics_are_for_scrapers_only(settings):
    settings.LETSEMA_METRICS_TOKEN = "s3cret-scrape-token"
    outsider = Client(REMOTE_ADDR="10.20.30.40")
    r = outsider.get("/metrics")
    assert r.status_code == 403 and r.json()["code"] == "permission_denied"
    assert outsider.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert outsider.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-scrape-token").status_code == 200
    settings.LETSEMA_METRICS_ALLOW = ["10.20.0.0/16"]
    assert outsider.get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 403  # loopback only by default


def test_the_running_node_serves_its_metrics(node_url):
    r = requests.get(f"{node_url('maseru')}/metrics", timeout=30)
    assert r.status_code == 200, r.text[:300]
    samples = parse(r.text)
    assert value(samples, "letsema_dependency_up", dependency="postgres") == 1
