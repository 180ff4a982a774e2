"""The project's 400/403/404/500 handlers (config/urls.py). A browser (a request that accepts HTML, outside the
API, federation and probe paths) gets the web interface's error page in its language; everything else gets the
API's JSON error body (node.core.errors), as before. The 500 page renders a standalone template with no request
context: whatever broke the view may break the context processors too."""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import render
from django.template import loader
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from node.core import errors as api_errors

#: Paths whose clients are programs: they keep the JSON error body whatever they accept.
MACHINE_PREFIXES = ("/api/", "/_federation/", "/healthz", "/metrics", "/admin/")


def wants_html(request) -> bool:
    if request.path.startswith(MACHINE_PREFIXES):
        return False
    accept = request.headers.get("Accept", "")
    return "text/html" in accept or "application/xhtml+xml" in accept


def _page(request, status: int, code: str, message: str):
    return render(request, "web/error.html", {"message": message, "code": code}, status=status)


def bad_request(request, exception=None):
    if not wants_html(request):
        return api_errors.json_bad_request(request, exception)
    return _page(request, 400, "bad_request", _("The request could not be understood."))


def permission_denied(request, exception=None):
    if not wants_html(request):
        return api_errors.json_permission_denied(request, exception)
    return _page(request, 403, "permission_denied", _("Your role may not do this."))


def not_found(request, exception=None):
    if not wants_html(request):
        return api_errors.json_not_found(request, exception)
    return _page(request, 404, "not_found", _("This page does not exist, or you may not see it."))


def server_error(request):
    if not wants_html(request):
        return api_errors.json_server_error(request)
    from node.core.logging import current_request_id

    body = loader.get_template("web/500.html").render({"request_id": current_request_id(),
                                                          "LANGUAGE_CODE": get_language() or "en"})
    return HttpResponse(body, status=500)
