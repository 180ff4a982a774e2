"""Issue #5: "a worker killed during a notification send does not send it twice" — on the real cluster.

A district's real Celery worker sends a repayment SMS through a loopback HTTP gateway that honours
``Idempotency-Key`` (as the SMS gateways we target do). The gateway holds the request; the test SIGKILLs the worker
while the send is in flight, then lets the gateway deliver it — the worst case: the message went out and the
worker's transaction never committed. The restarted worker must send the notification again under the *same* key
(so the gateway drops the repeat and the borrower's phone gets it once), and record exactly one sent attempt.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from cluster import drills, nodes
from tests.conftest import district_sql, kill_worker, wait_for, wait_worker_ready

pytestmark = pytest.mark.cluster
CODE = "mohales_hoek"


class Gateway:
    """An SMS gateway on loopback: records every request; delivers each ``Idempotency-Key`` once (a repeat is
    acknowledged, not delivered again); holds the first request to ``hold_to`` until ``release`` is set."""

    def __init__(self, hold_to: str):
        self.requests: list[dict] = []
        self.delivered: dict[str, dict] = {}
        self.hold_to, self.held, self.release = hold_to, threading.Event(), threading.Event()
        gw = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                key = self.headers.get("Idempotency-Key", "")
                gw.requests.append({"key": key, **body})
                if body["to"] == gw.hold_to and not gw.held.is_set():
                    gw.held.set()
                    gw.release.wait(60)  # the worker is killed meanwhile
                gw.delivered.setdefault(key, body)  # to the handset once per key
                try:
                    self.send_response(200)
                    self.end_headers()
                    self.wfile.write(b'{"status":"accepted"}')
                except OSError:
                    pass  # the sender is gone

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/sms"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.release.set()
        self.server.shutdown()


def _sql(cluster, sql: str, params=()):
    return district_sql(cluster, CODE, sql, params)


def _restart_worker(cluster, env: dict[str, str]) -> None:
    log = nodes.worker_log(cluster, CODE)
    offset = log.stat().st_size
    kill_worker(cluster, CODE, must_run=False)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the worker's environment is this process's plus the district's (Profile.env_for)
    try:
        nodes.start_worker(cluster, CODE)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    wait_worker_ready(cluster, CODE, offset)


def test_a_worker_killed_mid_send_resends_under_the_same_key_and_records_one_send(test_cluster):
    fx = drills._setup(test_cluster, CODE, loans=1)
    loan = fx["loans"][0]
    ((phone, borrower_id),) = _sql(test_cluster, "SELECT b.phone, b.id FROM borrowers_borrower b JOIN loans_loan l "
                                                 "ON l.borrower_id = b.id WHERE l.id = %s", (loan,))
    # the set-up's own notifications (disbursement) are out of the way before the gateway changes
    wait_for(lambda: _sql(test_cluster, "SELECT count(*) FROM notifications_notification WHERE borrower_id = %s "
                                        "AND status = 'pending'", (borrower_id,))[0][0] == 0,
             90, interval=1, what="the set-up's notifications sent")
    gw = Gateway(hold_to=phone)
    sms_env = {"LETSEMA_SMS_BACKEND": "http", "LETSEMA_SMS_URL": gw.url, "LETSEMA_NOTIFY_SWEEP_EVERY": "3"}
    try:
        _restart_worker(test_cluster, sms_env)
        r = requests.post(f"{fx['url']}/api/v1/loans/{loan}/repayments",
                          json={"amount": "25.00", "payment_date": date.today().isoformat(), "channel": "cash",
                                "reference": "kill-mid-send"},
                          headers={"Authorization": f"Bearer {fx['token']}", "Idempotency-Key": uuid.uuid4().hex},
                          timeout=30)
        assert r.status_code == 201, r.text
        receipt = r.json()["receipt_number"]
        assert gw.held.wait(60), "the worker never called the gateway"
        kill_worker(test_cluster, CODE)  # mid-send: the gateway has the message, the worker has not committed
        gw.release.set()
        ((nid, status, attempts),) = _sql(
            test_cluster, "SELECT id, status, attempts FROM notifications_notification WHERE event_key = %s",
            (f"repayment:{r.json()['id']}:received",))
        assert (status, attempts) == ("pending", 0)  # the killed attempt left nothing behind: it will be retried

        _restart_worker(test_cluster, sms_env)  # its beat sweeps every 3 s here (60 s by default)
        wait_for(lambda: _sql(test_cluster, "SELECT status FROM notifications_notification WHERE id = %s",
                              (nid,))[0][0] == "sent", 90, interval=1, what="the notification sent after restart")
    finally:
        gw.close()
        _restart_worker(test_cluster, {})  # back to the cluster's own settings for the tests that follow

    ours = [q for q in gw.requests if q["to"] == phone and receipt in q["message"]]
    assert len(ours) == 2  # the killed attempt and the retry ...
    assert ours[0]["key"] == ours[1]["key"]  # ... under one Idempotency-Key
    assert len([m for m in gw.delivered.values() if receipt in m["message"]]) == 1  # the borrower's phone: once
    sent = _sql(test_cluster, "SELECT count(*) FROM notifications_notificationattempt WHERE notification_id = %s "
                              "AND sent_at IS NOT NULL", (nid,))[0][0]
    assert sent == 1  # the node's log: sent once
