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
    return _exact({k: v for k, v in data.items() if k != "schema"}, fields, error)


def _exact(data: Any, fields: dict[str, type | tuple[type, ...]], error: type[Exception]) -> dict:
    """Exactly these fields, each of exactly one of the given JSON types (``true`` is not ``1``)."""
    if not isinstance(data, dict):
        raise error("Expected a JSON object.")
    if set(data) != set(fields):
        raise error(f"Fields must be exactly: {', '.join(sorted({'schema', *fields}))}.")
    for name, kinds in fields.items():
        kinds = kinds if isinstance(kinds, tuple) else (kinds,)
        if type(data[name]) not in kinds:
            raise error(f"{name} must be a {' or '.join('null' if k is type(None) else k.__name__ for k in kinds)}.")
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


@dataclass(frozen=True)
class BorrowerAuthRequest:
    """``POST /_federation/v1/borrowers/authenticate``: a borrower registered at the receiving node signs in at the
    calling node. ``{"schema": 1, "borrower_key", "password"}`` (over TLS in production; never logged or stored)."""

    borrower_key: str
    password: str

    @classmethod
    def from_json(cls, data: Any) -> BorrowerAuthRequest:
        d = _check(data, {"borrower_key": str, "password": str}, FederationPayloadError)
        if not 0 < len(d["password"]) <= 256:
            raise FederationPayloadError("password must be 1-256 characters.")
        return cls(_key(d["borrower_key"], FederationPayloadError), d["password"])

    def to_json(self) -> dict:
        return {"schema": SCHEMA, "borrower_key": self.borrower_key, "password": self.password}


#: The profile a home node shares with the district a borrower signed in at: what an MFI there needs for an
#: application (KYC status included), never the national ID. ``consent_version`` 0 = no active consent.
PROFILE_FIELDS: dict[str, type] = {
    "first_name": str, "last_name": str, "date_of_birth": str, "phone": str, "address": str,
    "residence_district": str, "employer": str, "employee_number": str, "monthly_income": str,
    "next_of_kin_name": str, "next_of_kin_phone": str, "next_of_kin_relationship": str,
    "phone_verified": bool, "verified": bool, "verification_method": str,
    "consent_version": int, "consent_language": str,
}


@dataclass(frozen=True)
class BorrowerAuthResult:
    """The answer: ``{"schema": 1, "district", "borrower_key", "authenticated", "profile"}``. ``profile`` is an
    object with exactly ``PROFILE_FIELDS`` when authenticated, else null. A wrong password is an answer (200,
    ``authenticated: false``), not an HTTP error, so the caller never counts it against the peer's health."""

    district: str
    borrower_key: str
    authenticated: bool
    profile: dict | None

    @classmethod
    def from_json(cls, data: Any) -> BorrowerAuthResult:
        d = _check(data, {"district": str, "borrower_key": str, "authenticated": bool,
                          "profile": (dict, type(None))}, BadResponse)
        if d["authenticated"] != (d["profile"] is not None):
            raise BadResponse("profile must be present exactly when authenticated")
        if d["profile"] is not None:
            _exact(d["profile"], PROFILE_FIELDS, BadResponse)
        return cls(d["district"], _key(d["borrower_key"], BadResponse), d["authenticated"], d["profile"])

    def to_json(self) -> dict:
        return {"schema": SCHEMA, "district": self.district, "borrower_key": self.borrower_key,
                "authenticated": self.authenticated, "profile": self.profile}


@dataclass(frozen=True)
class DisputeRequest:
    """``POST /_federation/v1/disputes``: ``{"schema": 1, "borrower_key", "loan_ref", "reason", "details"}`` — a
    borrower who signed in at the calling node disputes a loan of the receiving node."""

    borrower_key: str
    loan_ref: str
    reason: str
    details: str

    @classmethod
    def from_json(cls, data: Any) -> DisputeRequest:
        d = _check(data, {"borrower_key": str, "loan_ref": str, "reason": str, "details": str},
                   FederationPayloadError)
        if not 0 < len(d["loan_ref"]) <= 40 or len(d["reason"]) > 30 or len(d["details"]) > 1000:
            raise FederationPayloadError("loan_ref, reason or details is too long or empty.")
        return cls(_key(d["borrower_key"], FederationPayloadError), d["loan_ref"], d["reason"], d["details"])

    def to_json(self) -> dict:
        return {"schema": SCHEMA, "borrower_key": self.borrower_key, "loan_ref": self.loan_ref,
                "reason": self.reason, "details": self.details}


@dataclass(frozen=True)
class DisputeAnswer:
    """``{"schema": 1, "district", "filed", "dispute_id", "respond_by", "code", "message"}``: filed with its id and
    deadline, or refused with the lender's error code and message (a refusal is an answer, not an HTTP error)."""

    district: str
    filed: bool
    dispute_id: str | None
    respond_by: str | None
    code: str
    message: str

    @classmethod
    def from_json(cls, data: Any) -> DisputeAnswer:
        d = _check(data, {"district": str, "filed": bool, "dispute_id": (str, type(None)),
                          "respond_by": (str, type(None)), "code": str, "message": str}, BadResponse)
        if d["filed"] != (d["dispute_id"] is not None and d["respond_by"] is not None):
            raise BadResponse("dispute_id and respond_by must be present exactly when filed")
        if not d["filed"] and not d["code"]:
            raise BadResponse("a refusal must carry its code")
        return cls(d["district"], d["filed"], d["dispute_id"], d["respond_by"], d["code"], d["message"][:500])

    def to_json(self) -> dict:
        return {"schema": SCHEMA, "district": self.district, "filed": self.filed, "dispute_id": self.dispute_id,
                "respond_by": self.respond_by, "code": self.code, "message": self.message}


PAR_DAYS = ("1", "30", "60", "90")
LOAN_STATUSES = ("submitted", "under_review", "approved", "active", "closed", "written_off", "rejected", "withdrawn",
                 "rescheduled", "draft")


@dataclass(frozen=True)
class NodeFigures:
    """``GET /_federation/v1/aggregates``: one node's own portfolio figures, for the network view of Letsema admins.
    ``{"schema": 1, "district", "business_date", "closed_through", "mfis", "borrowers", "loans": {status: count},
    "currency", "outstanding_principal", "par": {"1"|"30"|"60"|"90": outstanding principal of loans more than N days
    past due}}``; amounts are decimal strings."""

    district: str
    business_date: str
    closed_through: str | None
    mfis: int
    borrowers: int
    loans: dict
    currency: str
    outstanding_principal: str
    par: dict

    @classmethod
    def from_json(cls, data: Any) -> NodeFigures:
        d = _check(data, {"district": str, "business_date": str, "closed_through": (str, type(None)), "mfis": int,
                          "borrowers": int, "loans": dict, "currency": str, "outstanding_principal": str,
                          "par": dict}, BadResponse)
        _exact(d["loans"], dict.fromkeys(LOAN_STATUSES, int), BadResponse)
        _exact(d["par"], dict.fromkeys(PAR_DAYS, str), BadResponse)
        for amount in (d["outstanding_principal"], *d["par"].values()):
            _amount(amount)
        return cls(**{k: v for k, v in d.items() if k != "schema"})

    def to_json(self) -> dict:
        return {"schema": SCHEMA, "district": self.district, "business_date": self.business_date,
                "closed_through": self.closed_through, "mfis": self.mfis, "borrowers": self.borrowers,
                "loans": self.loans, "currency": self.currency, "outstanding_principal": self.outstanding_principal,
                "par": self.par}


def _amount(value: str) -> None:
    from decimal import Decimal, InvalidOperation

    try:
        ok = Decimal(value).is_finite() and Decimal(value) >= 0
    except InvalidOperation:
        ok = False
    if not ok:
        raise BadResponse(f"not a non-negative decimal amount: {value!r}")
