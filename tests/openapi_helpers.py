"""The node's OpenAPI document, and a check that one answer matches what the document says for it (schemathesis's
own response validation: status code documented, body valid against the status's schema)."""

from __future__ import annotations

import functools
import json

import requests
import schemathesis
from schemathesis.core.transport import Response


def openapi_document() -> dict:
    """The document the node serves at /api/schema/, generated the same way (no request, no database)."""
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.renderers import OpenApiJsonRenderer

    return json.loads(OpenApiJsonRenderer().render(SchemaGenerator().get_schema(request=None, public=True)))


@functools.cache
def _schema():
    return schemathesis.openapi.from_dict(openapi_document())


def assert_documented(response, method: str, template: str) -> dict:
    """``response`` (Django's test client) is what the document lists for ``method template`` — its status code and
    a body valid against that status's schema. Raises schemathesis's failure otherwise; returns the JSON body."""
    operation = _schema()[template][method.upper()]
    headers: dict[str, list[str]] = {}
    for name, value in response.items():
        headers.setdefault(name.lower(), []).append(value)
    request = requests.Request(method.upper(), f"http://testserver{template}").prepare()
    operation.validate_response(Response(status_code=response.status_code, headers=headers, content=response.content,
                                         request=request, elapsed=0.0, verify=True))
    return response.json()
