"""The HTTP SMS gateway adapter against a real HTTP server on loopback."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from node.notifications.sms import SmsSendFailed, send_sms


class _Gateway(BaseHTTPRequestHandler):
    received: list = []
    status = 200

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append({"headers": dict(self.headers), "json": json.loads(body)})
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def gateway(settings, monkeypatch):
    server = HTTPServer(("127.0.0.1", 0), _Gateway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Gateway.received, _Gateway.status = [], 200
    settings.SMS_BACKEND = "http"
    settings.SMS_HTTP_URL = f"http://127.0.0.1:{server.server_port}/send"
    monkeypatch.setenv("LETSEMA_SMS_TOKEN", "gw-token")
    yield _Gateway
    server.shutdown()


def test_http_gateway_posts_json_with_token_and_idempotency_key(gateway):
    message_id = send_sms("+26658001122", "Letsema: your verification code is 123456.")
    (req,) = gateway.received
    assert req["json"] == {"to": "+26658001122", "message": "Letsema: your verification code is 123456."}
    assert req["headers"]["Authorization"] == "Bearer gw-token"
    assert req["headers"]["Idempotency-Key"] == message_id


def test_http_gateway_errors_raise(gateway, settings):
    gateway.status = 502
    with pytest.raises(SmsSendFailed, match="502"):
        send_sms("+26658001122", "x")
    settings.SMS_HTTP_URL = "http://127.0.0.1:9/unreachable"
    with pytest.raises(SmsSendFailed, match="unreachable"):
        send_sms("+26658001122", "x")


@pytest.mark.django_db
def test_otp_send_reports_a_gateway_failure_and_leaves_no_live_code(gateway, tmp_path, settings):
    from rest_framework.test import APIClient
    from node.users.tokens import access_token_for

    from node.borrowers.models import PhoneOtp
    from node.mfis.models import Mfi
    from node.users.models import Role, User
    from tests.borrower_factory import payload

    mfi = Mfi.objects.create(code="gw-mfi", name="GW", home_district="maseru")
    officer = User.objects.create(username="gw.officer", role=Role.LOAN_OFFICER, mfi=mfi)
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token_for(officer)}")
    bid = c.post("/api/v1/borrowers/", payload(), format="json").json()["id"]
    gateway.status = 500
    r = c.post(f"/api/v1/borrowers/{bid}/phone/otp")
    assert r.status_code == 503 and r.json()["code"] == "sms_unavailable"
    assert PhoneOtp.objects.filter(borrower_id=bid, superseded=False).count() == 0
