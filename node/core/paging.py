"""One way to page a list endpoint: ``?limit=&offset=`` over a stably ordered queryset.

The body stays a plain JSON list (what clients already read); the page's place in the whole travels in headers:
``X-Total-Count`` (rows matching the filters) and ``Link: <...>; rel="next"`` / ``rel="prev"`` (RFC 8288) while there is
more. A bad ``limit`` or ``offset`` is a 400 ``validation_error`` naming the field, never a silent default.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter
from rest_framework.response import Response

from node.core.errors import ValidationFailed

DEFAULT_LIMIT = 100
MAX_LIMIT = 500


def page_parameters() -> list[OpenApiParameter]:
    """For ``extend_schema(parameters=...)`` of a paged list."""
    return [OpenApiParameter("limit", int, description=f"rows per page: 1 to {MAX_LIMIT}, default {DEFAULT_LIMIT}"),
            OpenApiParameter("offset", int, description="rows to skip (default 0); follow the Link header's "
                                                        "rel=\"next\" for the next page; X-Total-Count gives the total")]


def query_flag(request, name: str) -> bool:
    """A boolean query parameter: ``true`` or ``false`` (absent: false); anything else is a 400 naming it."""
    raw = request.query_params.get(name)
    if raw is None:
        return False
    if raw not in ("true", "false"):
        raise ValidationFailed(f"{name} must be true or false.", details={"fields": {name: ["true or false"]}})
    return raw == "true"


def _int(request, name: str, default: int, low: int, high: int | None) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if value < low or (high is not None and value > high):
        bound = f"{low} to {high}" if high is not None else f"{low} or more"
        raise ValidationFailed(f"{name} must be a whole number, {bound}.", details={"fields": {name: [bound]}})
    return value


def paged_response(request, qs: QuerySet, render) -> Response:
    """A page of ``qs`` (already ordered by a unique key, so pages never overlap or skip) as a list of ``render(row)``,
    with ``X-Total-Count`` and ``Link`` headers."""
    if not qs.ordered:
        raise TypeError("paged_response needs an ordered queryset (order_by a unique key)")
    limit = _int(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = _int(request, "offset", 0, 0, None)
    total = qs.count()
    response = Response([render(x) for x in qs[offset:offset + limit]])
    response["X-Total-Count"] = str(total)
    links = []
    params = {k: v for k, v in request.query_params.items() if k not in ("limit", "offset")}

    def url(at: int) -> str:
        return request.build_absolute_uri(request.path) + "?" + urlencode({**params, "limit": limit, "offset": at})

    if offset + limit < total:
        links.append(f'<{url(offset + limit)}>; rel="next"')
    if offset > 0:
        links.append(f'<{url(max(0, offset - limit))}>; rel="prev"')
    if links:
        response["Link"] = ", ".join(links)
    return response
