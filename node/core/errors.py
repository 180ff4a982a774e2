"""One error format for the whole API: ``{"code", "message", "details"}`` with stable codes.

Services raise :class:`ApplicationError` subclasses; DRF's own exceptions are mapped here too, so a
client never sees another shape. Codes are part of the API contract: never rename one.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_default_handler

log = logging.getLogger("letsema.errors")


class ApplicationError(Exception):
    """Base of every expected, user-facing error. Subclasses set ``code`` and ``status``."""

    code = "application_error"
    status = 400

    def __init__(self, message: str, *, details: dict[str, Any] | None = None, code: str | None = None,
                 retry_after: int | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}
        self.retry_after = retry_after  # seconds; answered as the Retry-After header
        if code:
            self.code = code


class ValidationFailed(ApplicationError):
    code = "validation_error"
    status = 400


class NotFound(ApplicationError):
    code = "not_found"
    status = 404


class Forbidden(ApplicationError):
    code = "permission_denied"
    status = 403


class Conflict(ApplicationError):
    code = "conflict"
    status = 409


class ServiceUnavailable(ApplicationError):
    code = "service_unavailable"
    status = 503


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, "details": details or {}}


def _drf_code(exc: drf.APIException) -> str:
    # simplejwt's InvalidToken/AuthenticationFailed carry code "token_not_valid"
    if isinstance(exc, drf.NotAuthenticated):
        return "not_authenticated"
    if isinstance(exc, drf.AuthenticationFailed):
        detail_code = getattr(exc, "default_code", "authentication_failed")
        codes = exc.get_codes()
        if isinstance(codes, dict) and codes.get("code") == "token_not_valid" or detail_code == "token_not_valid":
            return "token_invalid"
        if codes in ("token_revoked", "user_inactive"):
            return codes
        if codes == "no_active_account" or (isinstance(codes, dict) and "no_active_account" in str(codes)):
            return "invalid_credentials"
        return "authentication_failed"
    if isinstance(exc, drf.ValidationError):
        return "validation_error"
    if isinstance(exc, drf.ParseError):
        return "malformed_request"
    if isinstance(exc, drf.UnsupportedMediaType):
        return "unsupported_media_type"
    if isinstance(exc, drf.PermissionDenied):
        return "permission_denied"
    if isinstance(exc, drf.NotFound):
        return "not_found"
    if isinstance(exc, drf.MethodNotAllowed):
        return "method_not_allowed"
    if isinstance(exc, drf.NotAcceptable):
        return "not_acceptable"
    if isinstance(exc, drf.Throttled):
        return "rate_limited"
    return "error"


def _message_and_details(exc: drf.APIException) -> tuple[str, dict[str, Any]]:
    detail = exc.detail
    if isinstance(exc, drf.ValidationError):
        if isinstance(detail, dict):
            fields = {k: [str(m) for m in (v if isinstance(v, list) else [v])] for k, v in detail.items()}
            return "The request has invalid fields.", {"fields": fields}
        messages = [str(m) for m in (detail if isinstance(detail, list) else [detail])]
        return "; ".join(messages) or "Invalid request.", {}
    if isinstance(detail, dict):
        message = str(detail.get("detail") or detail.get("message") or exc.default_detail)
        extra = {k: v for k, v in detail.items() if k not in ("detail", "message", "code")}
        return message, {"reason": extra} if extra else {}
    if isinstance(detail, list):
        return "; ".join(str(d) for d in detail), {}
    return str(detail), {}


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApplicationError):
        response = Response(error_body(exc.code, exc.message, exc.details), status=exc.status)
        if exc.retry_after:
            response["Retry-After"] = str(int(exc.retry_after))
        return response
    if isinstance(exc, Http404):
        exc = drf.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf.PermissionDenied()
    response = drf_default_handler(exc, context)
    if response is None:
        return None  # unexpected: Django's 500 handler (json_server_error) answers
    assert isinstance(exc, drf.APIException)
    message, details = _message_and_details(exc)
    response.data = error_body(_drf_code(exc), message, details)
    return response


# Plain Django handlers (URLs outside DRF views), wired in config.urls.
def json_not_found(request, exception=None):  # noqa: ARG001
    return JsonResponse(error_body("not_found", "No such resource.", {"path": request.path}), status=404)


def json_server_error(request):  # noqa: ARG001
    from node.core.logging import current_request_id

    return JsonResponse(
        error_body("internal_error", "An unexpected error occurred.", {"request_id": current_request_id()}),
        status=500,
    )


def json_bad_request(request, exception=None):  # noqa: ARG001
    return JsonResponse(error_body("bad_request", "Bad request."), status=400)


def json_permission_denied(request, exception=None):  # noqa: ARG001
    return JsonResponse(error_body("permission_denied", "You do not have permission."), status=403)
