"""The running test cluster, over HTTP: health of every node, API docs served locally, status, JSON logs."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import pytest
import requests

from cluster import nodes, pg_standby, postgres, redis
from tests.conftest import healthz, wait_for

pytestmark = pytest.mark.cluster


def test_every_node_is_healthy(test_cluster, node_url):
    for code in test_cluster.districts:
        status, body = healthz(node_url(code))
        assert status == 200, body
        assert body["district"] == code
        assert {k: v["status"] for k, v in body["checks"].items()} == {
            "postgres": "up", "cassandra": "up", "broker": "up",
        }


def test_status_lists_every_process_with_port(test_cluster):
    res = subprocess.run(
        [sys.executable, "-m", "cluster", "--profile", "test", "status"], capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0, res.stdout + res.stderr
    lines = res.stdout.strip().splitlines()
    assert lines[0].split() == ["SERVICE", "PID", "ADDRESS", "STATE", "LOG"]
    services = {line.split()[0]: line.split() for line in lines[1:]}
    expected = {"redis"} | {f"cassandra-{i}" for i in (1, 2, 3)}
    for code in test_cluster.districts:
        expected |= {f"postgres-{code}", f"web-{code}", f"worker-{code}"}
        if pg_standby.has_standby(test_cluster, code):  # left by the pg-failover drill test of an earlier run
            expected |= {f"postgres-{code}-standby", f"replication-{code}"}
    assert set(services) == expected
    for name, cols in services.items():
        if name.startswith("replication-"):  # "-  standby -> primary  up  sync": no PID, the address has spaces
            assert cols[-2] == "up", cols
            continue
        assert cols[3] == "up", cols
        assert cols[1].isdigit(), cols
    assert services["cassandra-2"][2] == f"{test_cluster.ring_ip(2)}:9042"
    assert services["web-maseru"][2] == f"127.0.0.1:{test_cluster.district('maseru').port}"


def test_api_docs_render_without_cdn(node_url):
    base = node_url("leribe")
    r = requests.get(f"{base}/api/docs/", timeout=10)
    assert r.status_code == 200
    assert "swagger-ui" in r.text
    scripts = [s.split('"')[1] for s in r.text.split("src=")[1:]]
    assert scripts, "no script tags"
    for src in scripts:
        assert src.startswith("/static/"), f"external asset {src}"
        assert requests.get(base + src, timeout=10).status_code == 200
    schema = requests.get(f"{base}/api/schema/?format=json", timeout=10)
    assert schema.status_code == 200
    doc = schema.json()
    assert doc["openapi"].startswith("3.")
    assert "/api/v1/auth/token/" in doc["paths"] and "/api/v1/mfis/" in doc["paths"]


def test_an_idle_keep_alive_connection_is_still_served_after_a_pause(node_url):
    """A client that pauses a few seconds between requests (a loan officer reading the screen) reuses its connection:
    gunicorn's default 2 s keep-alive would close it under the client's feet, and the next request on it would be
    reset instead of answered (what the soak bench saw)."""
    import http.client
    from urllib.parse import urlsplit

    u = urlsplit(node_url("maseru"))
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    try:
        conn.request("GET", "/healthz")
        first = conn.getresponse()
        first.read()
        assert first.status == 200 and not first.will_close
        sock = conn.sock
        time.sleep(4)
        conn.request("GET", "/healthz")  # on the same socket: http.client only reconnects when it has none
        second = conn.getresponse()
        second.read()
        assert second.status == 200
        assert conn.sock is sock
    finally:
        conn.close()


def test_pages_link_versioned_static_files_that_browsers_keep_for_good(node_url):
    """The stylesheet and script a page links carry a hash of their content in their name and are served as
    immutable, gzip-compressed: a phone on 3G does not re-ask for them on every page once a short cache lifetime
    has passed (bench/page_load_3g.py measured that revisit at twice the warm page's paint time: two revalidations
    of 562 ms each). An unversioned name (a page cached before a deployment) still answers, briefly cached."""
    import re

    base = node_url("maseru")
    page = requests.get(f"{base}/login/", timeout=10)
    assert page.status_code == 200 and "no-store" in page.headers["Cache-Control"]
    linked = re.findall(r'(?:href|src)="(/static/[^"]+)"', page.text)
    assert sorted(re.sub(r"\.[0-9a-f]{12}\.", ".", h) for h in linked) == [
        "/static/web/app.css", "/static/web/vendor/htmx-2.0.10.min.js"], linked
    for href in linked:
        assert re.search(r"\.[0-9a-f]{12}\.(css|js)$", href), href
        r = requests.get(base + href, headers={"Accept-Encoding": "gzip"}, timeout=10)
        assert r.status_code == 200 and r.headers.get("Content-Encoding") == "gzip"
        assert "immutable" in r.headers["Cache-Control"] and "max-age=315360000" in r.headers["Cache-Control"]
        plain = requests.get(base + re.sub(r"\.[0-9a-f]{12}\.", ".", href), timeout=10)
        assert plain.status_code == 200 and plain.content == r.content
        assert "immutable" not in plain.headers["Cache-Control"]


def test_json_logs_carry_district_and_request_id(test_cluster, node_url):
    rid = "test-" + uuid.uuid4().hex[:12]
    r = requests.get(f"{node_url('mohales_hoek')}/api/v1/node/", headers={"X-Request-ID": rid}, timeout=10)
    assert r.status_code == 200 and r.headers["X-Request-ID"] == rid

    def logged():
        for line in nodes.web_log(test_cluster, "mohales_hoek").read_text().splitlines():
            if rid in line and line.startswith("{"):
                return json.loads(line)
        return None

    entry = wait_for(logged, 10, what="access log line")
    assert entry["district"] == "mohales_hoek"
    assert entry["request_id"] == rid
    assert entry["path"] == "/api/v1/node/" and entry["status"] == 200


def test_healthz_names_the_broker_when_redis_is_down(test_cluster, node_url):
    base = node_url("maseru")
    redis.stop(test_cluster)
    try:
        status, body = wait_for(lambda: (s := healthz(base))[0] == 503 and s, 20, what="503")
        assert body["down"] == ["broker"]
        assert body["status"] == "down" and "broker" in body["message"]
        assert body["checks"]["postgres"]["status"] == "up"
        assert body["checks"]["broker"]["error"]
    finally:
        redis.start(test_cluster)
    wait_for(lambda: healthz(base)[0] == 200, 30, what="healthz back to 200")


def test_healthz_names_postgres_when_the_district_database_is_down(test_cluster, node_url):
    d = test_cluster.district("leribe")
    postgres.stop(test_cluster, "leribe", mode="immediate")
    try:
        status, body = wait_for(lambda: (s := healthz(d.public_url))[0] == 503 and s, 20, what="503")
        assert body["down"] == ["postgres"]
        assert body["checks"]["cassandra"]["status"] == "up"
        # the other districts are unaffected
        assert healthz(node_url("maseru"))[0] == 200
    finally:
        postgres.start(test_cluster, "leribe", d.pg_port)
    wait_for(lambda: healthz(d.public_url)[0] == 200, 30, what="healthz back to 200")
