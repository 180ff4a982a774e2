"""The node's OpenAPI document says what the API really answers, errors included (checked by schemathesis,
``tests/test_api_fuzz.py``).

- every operation lists the error statuses it can answer, each with the one error body ``{code, message, details}``:
  401 everywhere (a bad token is refused even where none is needed), 400 where there is input, 403 where a role is
  needed, 404 where the path names an object, 409 and 415 on writes; the ``Idempotency-Key`` header, 409 and 422
  on money writes; 503 everywhere (a dependency down: the node fails closed); anything else a view declares with
  ``@error_responses({429: "…"})`` on its method;
- a query parameter the document does not list, or an empty one, is a 400 (``QueryParameterCheckMiddleware``);
- the bearer token scheme (``SessionJWTAuthentication``) and money fields (decimal strings) are described;
- serializers nested in a view (``TokenObtainApi.InputSerializer``) get a component name of their own
  (``TokenObtainInput``), where drf-spectacular would give every one of them the same name and one schema.
"""

from __future__ import annotations

import functools
import re

from django.http import JsonResponse
from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiSerializerFieldExtension,
)
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.utils import OpenApiParameter
from rest_framework.permissions import AllowAny

from node.core.errors import error_body
from node.core.idempotency import KEY_RE

ERROR_SCHEMA = {
    "type": "object",
    "description": "Every error: a stable code, a message for people, details (per-field messages for validation).",
    "properties": {
        "code": {"type": "string", "description": "stable error code, e.g. validation_error, not_found"},
        "message": {"type": "string"},
        "details": {"type": "object", "additionalProperties": True},
    },
    "required": ["code", "message", "details"],
}

ERROR_DESCRIPTIONS = {
    400: "The request is not valid (validation_error with per-field details, or a named rule).",
    401: "No valid token: missing where needed, expired, revoked, or wrong credentials.",
    403: "The caller's role or MFI may not do this (permission_denied).",
    404: "No such object, or not one the caller may see (answered alike).",
    409: "The object's state does not allow this now (e.g. a loan not in the status the action needs).",
    415: "The body is not JSON (or multipart where a file is uploaded).",
    422: "This Idempotency-Key was used for a different request.",
    429: "Too many attempts; retry after the Retry-After header's seconds.",
    503: "A service this needs (the credit network's ring, a peer node) is not available now.",
}

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def error_responses(statuses: dict[int, str]):
    """Declare, on a view method, error statuses the defaults above do not cover: ``{404: "why"}``."""

    def mark(view_method):
        view_method.error_statuses = {**getattr(view_method, "error_statuses", {}), **statuses}
        return view_method

    return mark


class SessionJWTScheme(OpenApiAuthenticationExtension):
    target_class = "node.users.authentication.SessionJWTAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                "description": "An access token from POST /api/v1/auth/token/ (15 minutes; renew with the refresh "
                               "token at /api/v1/auth/token/refresh/)."}


class MoneyFieldSchema(OpenApiSerializerFieldExtension):
    target_class = "node.core.fields.MoneyField"

    def map_serializer_field(self, auto_schema, direction):
        field = self.target
        sign = "-?" if field.allow_negative else ""
        return {"type": "string", "format": "decimal",
                "pattern": rf"^{sign}[0-9]{{1,15}}(\.[0-9]{{1,{field.places}}})?$",
                "description": f"an amount as a decimal string, at most {field.places} decimal places"}


class AutoSchema(SpectacularAutoSchema):
    def get_serializer_name(self, serializer, direction):
        cls = serializer.__class__
        outer, _, inner = cls.__qualname__.rpartition(".")
        if not outer or "<locals>" in outer:
            return super().get_serializer_name(serializer, direction)
        outer = outer.split(".")[-1].removesuffix("Api").removesuffix("View")
        return outer + inner

    def get_operation_id(self) -> str:
        # a plain APIView's list and detail would both be "…_retrieve": a GET whose path does not end in an
        # object's id is the list
        operation_id = super().get_operation_id()
        if self.method == "GET" and operation_id.endswith("_retrieve") and not self.path.rstrip("/").endswith("}"):
            return operation_id.removesuffix("_retrieve") + "_list"
        return operation_id

    def _view_method(self):
        return getattr(self.view, self.method.lower(), None)

    def declared_errors(self) -> dict[int, str]:
        return getattr(self._view_method(), "error_statuses", {})

    def requires_idempotency_key(self) -> bool:
        return bool(getattr(self._view_method(), "idempotency_key_required", False))

    def get_override_parameters(self):
        params = list(super().get_override_parameters())
        if self.requires_idempotency_key():
            params.append(OpenApiParameter(
                "Idempotency-Key", str, OpenApiParameter.HEADER, required=True,
                pattern=KEY_RE.pattern,
                description="A key the client makes once per intended write; a replay returns the first answer "
                            "and posts nothing (8-100 characters: letters, digits, '_', '.', ':', '-')."))
        return params

    def error_statuses(self, operation: dict) -> set[int]:
        statuses = {401, 503}  # 503: the ring, a peer or the database is not reachable now (fail closed)
        params = operation.get("parameters", [])
        if operation.get("requestBody") or any(p.get("in") != "path" for p in params):
            statuses.add(400)
        path_params = [p for p in params if p.get("in") == "path"]
        if path_params:
            statuses.add(404)
        if any(p.get("schema", {}).get("type") == "string" for p in path_params):
            statuses.add(400)  # a malformed key or name
        if not all(isinstance(p, AllowAny) for p in self.view.get_permissions()):
            statuses.add(403)
        if self.method in WRITE_METHODS:
            statuses.add(409)
            if operation.get("requestBody") or self.method != "DELETE":
                statuses.add(415)
        if self.requires_idempotency_key():
            statuses |= {400, 409, 422}
        return statuses | set(self.declared_errors())

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        component = ResolvedComponent(name="Error", type=ResolvedComponent.SCHEMA, object="Error", schema=ERROR_SCHEMA)
        registry.register_on_missing(component)
        declared = self.declared_errors()
        for status in sorted(self.error_statuses(operation)):
            operation["responses"].setdefault(str(status), {
                "description": declared.get(status) or ERROR_DESCRIPTIONS[status],
                "content": {"application/json": {"schema": component.ref}},
            })
        return operation


# --- the document as the node's own contract for query parameters ----------------------------------------------
_ROUTE_PARAM = re.compile(r"<(?:[^:>]+:)?([^>]+)>")


@functools.cache
def documented_query_parameters() -> dict[tuple[str, str], frozenset[str]]:
    """``(path, METHOD)`` → the query parameters the API document lists for it (built once per process, ~0.3 s)."""
    from drf_spectacular.generators import SchemaGenerator

    document = SchemaGenerator().get_schema(request=None, public=True)
    return {(path, method.upper()): frozenset(p["name"] for p in op.get("parameters", []) if p.get("in") == "query")
            for path, operations in document["paths"].items()
            for method, op in operations.items() if isinstance(op, dict)}


class QueryParameterCheckMiddleware:
    """A query parameter the operation does not list, or one sent empty, is a 400 — as an unknown body field is
    (``StrictSerializer``): ``?stauts=active`` must not answer every loan as if no filter had been asked for, and
    ``?limit=`` is not a limit. Only API operations in the document are checked (the federation's signed endpoints
    and the web pages are not in it). A view that refuses unknown parameters itself, more narrowly than its document
    can say (the reports: each takes its own), names its error code in ``own_query_parameter_code``: only empty
    parameters are checked here for it, answered with that code."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):  # noqa: ARG002
        if not request.path.startswith("/api/v1/") or not request.GET or request.resolver_match is None:
            return None
        own_code = getattr(getattr(view_func, "cls", None), "own_query_parameter_code", None)
        path = "/" + _ROUTE_PARAM.sub(r"{\1}", request.resolver_match.route)
        allowed = documented_query_parameters().get((path, request.method))
        if allowed is None:
            return None
        unknown = [] if own_code else sorted(name for name in request.GET if name not in allowed)
        empty = sorted(name for name in request.GET if name in allowed and "" in request.GET.getlist(name))
        if not unknown and not empty:
            return None
        fields = {**{n: ["Unknown parameter."] for n in unknown},
                  **{n: ["Must not be empty: leave the parameter out for its default."] for n in empty}}
        message = (f"Unknown query parameter(s): {', '.join(unknown)}; this operation takes: "
                   f"{', '.join(sorted(allowed)) or 'none'}." if unknown else
                   f"Empty query parameter(s): {', '.join(empty)}.")
        return JsonResponse(error_body(own_code or "validation_error", message, {"fields": fields}), status=400)
