"""Versioned wire payloads between nodes. Explicit fields, strict parsing (unknown fields and wrong types are
refused), never a model dump and never a national ID: borrowers travel only as their pseudonymous key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from federation.errors import FederationPayloadError, FederationUnsupportedSchema
from federation.fanout import BadResponse
from node.borrowers.identity import BORROWER_KEY_RE

SCHEMA = 1


def _check(data: Any, fields: dict[str, type], error: type[Exception]) -> dict:
    if not isinstance(data, dict):
        raise error("The payload must be a JSON object.")
    if data.get("schema") != SCHEMA:
        if error is FederationPayloadError:
            raise FederationUnsupportedSchema(f"Unsupported schema {data.get('schema')!r}; this node speaks {SCHEMA}.",
                                              details={"supported": [SCHEMA]})
        raise error(f"unsupported schema {data.get('schema')!r}")
    expected = {"schema", *fields}
    if set(data) != expected:
        raise error(f"Fields must be exactly: {', '.join(sorted(expected))}.")
    for name, kind in fields.items():
        value = data[name]
        if type(value) is not kind:
            raise error(f"{name} must be a {kind.__name__}.")
    return data


def _key(value: str, error: type[Exception]) -> str:
    if not BORROWER_KEY_RE.match(value):
        raise error("borrower_key must look like v<version>:<64 hex digits>.")
    return value


@dataclass(frozen=True)
class BorrowerStatusRequest:
    """``POST /_federation/v1/borrowers/status``: ``{"schema": 1, "borrower_key": "v1:<hex>"}``."""

    borrower_key: str

    @classmethod
    def from_json(cls, data: Any) -> BorrowerStatusRequest:
        d = _check(data, {"borrower_key": str}, FederationPayloadError)
        return cls(_key(d["borrower_key"], FederationPayloadError))

    def to_json(self) -> dict:
        return {"schema": SCHEMA, "borrower_key": self.borrower_key}


@dataclass(frozen=True)
class BorrowerStatus:
    """The answer: ``{"schema": 1, "district", "borrower_key", "registered", "verified"}``."""

    district: str
    borrower_key: str
    registered: bool
    verified: bool

    @classmethod
    def from_json(cls, data: Any) -> BorrowerStatus:
        d = _check(data, {"district": str, "borrower_key": str, "registered": bool, "verified": bool}, BadResponse)
        return cls(d["district"], _key(d["borrower_key"], BadResponse), d["registered"], d["verified"])

    def to_json(self) -> dict:
        return {"schema": SCHEMA, "district": self.district, "borrower_key": self.borrower_key,
                "registered": self.registered, "verified": self.verified}


@dataclass(frozen=True)
class Pong:
    """``GET /_federation/v1/ping``: ``{"schema": 1, "district", "origin", "time"}`` (time: ISO 8601 UTC)."""

    district: str
    origin: str
    time: str

    def to_json(self) -> dict:
        return {"schema": SCHEMA, "district": self.district, "origin": self.origin, "time": self.time}
