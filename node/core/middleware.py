"""Request id: taken from a well-formed ``X-Request-ID`` header or generated, echoed back, logged; the request's
server time logged and sent as ``Server-Timing``."""

from __future__ import annotations

import logging
import re
import time
import uuid

from node.core.logging import reset_client_ip, reset_request_id, set_client_ip, set_request_id

_VALID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
access_log = logging.getLogger("letsema.access")


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _VALID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        token = set_request_id(request_id)
        ip_token = set_client_ip(request.META.get("REMOTE_ADDR"))
        started = time.monotonic()
        try:
            response = self.get_response(request)
            ms = round((time.monotonic() - started) * 1000, 1)
            response["X-Request-ID"] = request_id
            # the node's own time for the request (everything below this middleware), for browsers' dev tools and
            # bench/web_pages.py: what queues in front of gunicorn is not in it
            response["Server-Timing"] = f"app;dur={ms}"
            access_log.info(
                "request",
                extra={"method": request.method, "path": request.path, "status": response.status_code, "ms": ms},
            )
            return response
        finally:
            reset_client_ip(ip_token)
            reset_request_id(token)
