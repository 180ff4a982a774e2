"""Signed requests between district nodes: one canonical form (RFC 9421 style), Ed25519, and its verification.

A request carries five headers (docs/federation.md has the exact strings)::

    Content-Digest: sha-256=:<base64 of SHA-256(body)>:
    Letsema-Origin: maseru
    Letsema-Destination: leribe
    Signature-Input: sig1=("@method" "@path" "@query" "content-digest" "letsema-origin" "letsema-destination");created=1767225600;keyid="ed25519:1";nonce="<22+ base64url chars>";alg="ed25519";tag="letsema-federation-v1"
    Signature: sig1=:<base64 of the 64-byte Ed25519 signature>:

The signature base is RFC 9421's: one line per covered component, ``"<name>": <value>``, then
``"@signature-params": <the inner list exactly as in Signature-Input>``, joined by ``\\n`` with no trailing
newline. ``@query`` is ``?`` plus the raw query string (``?`` alone when there is none). Only this exact set and
order of components, one signature labelled ``sig1``, ``alg="ed25519"`` and the tag are accepted; every value is
ASCII without line breaks.

Verification (:func:`verify_request`) answers with a stable code (``federation.errors.AUTH_ERRORS``) and logs one
line per refusal. Checks, in order: headers present and well-formed; created within the window; destination is
this node; origin and key id known, district not suspended, key valid now; body matches Content-Digest; signature
verifies; nonce not seen before (Redis ``SET NX EX``, remembered for max_age + clock_skew seconds).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from federation import conf
from federation.errors import FederationAuthError
from federation.peers import DISTRICT_RE, KEY_ID_RE, Directory

log = logging.getLogger("letsema.federation")

LABEL = "sig1"
ALG = "ed25519"
TAG = "letsema-federation-v1"
COMPONENTS = ("@method", "@path", "@query", "content-digest", "letsema-origin", "letsema-destination")
ORIGIN_HEADER = "Letsema-Origin"
DESTINATION_HEADER = "Letsema-Destination"
DIGEST_HEADER = "Content-Digest"
INPUT_HEADER = "Signature-Input"
SIGNATURE_HEADER = "Signature"

_NONCE_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_METHOD_RE = re.compile(r"^[A-Z]{3,7}$")
_PATH_RE = re.compile(r"^/[\x21-\x7e]*$")  # visible ASCII, no spaces or line breaks
_QUERY_RE = re.compile(r"^[\x21-\x7e]*$")
_DIGEST_RE = re.compile(r"^sha-256=:([A-Za-z0-9+/]{43}=):$")
_SIG_RE = re.compile(r"^sig1=:([A-Za-z0-9+/]{86}==):$")
_INPUT_RE = re.compile(r'^sig1=\(((?:"[a-z@-]+"(?: "[a-z@-]+")*)?)\)((?:;[a-z]+=(?:"[\x20-\x21\x23-\x5b\x5d-\x7e]*"|\d{1,12}))*)$')
_PARAM_RE = re.compile(r';([a-z]+)=("[^"]*"|\d+)')


# --- the canonical form ----------------------------------------------------------------------------
def content_digest(body: bytes) -> str:
    return "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode("ascii") + ":"


@dataclass(frozen=True)
class SignatureParams:
    created: int
    keyid: str
    nonce: str
    alg: str = ALG
    tag: str = TAG

    def serialize(self) -> str:
        components = " ".join(f'"{c}"' for c in COMPONENTS)
        return (f'({components});created={self.created};keyid="{self.keyid}";nonce="{self.nonce}"'
                f';alg="{self.alg}";tag="{self.tag}"')


def signature_base(*, method: str, path: str, query: str, digest: str, origin: str, destination: str,
                   params: SignatureParams) -> bytes:
    values = {"@method": method, "@path": path, "@query": "?" + query, "content-digest": digest,
              "letsema-origin": origin, "letsema-destination": destination}
    lines = [f'"{name}": {values[name]}' for name in COMPONENTS]
    lines.append(f'"@signature-params": {params.serialize()}')
    return "\n".join(lines).encode("ascii")


def new_nonce() -> str:
    return secrets.token_urlsafe(16)


def _split_url(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.path or "/", parts.query


def sign_request(method: str, url: str, body: bytes, *, destination: str, origin: str, key_id: str,
                 private_key: Ed25519PrivateKey, created: int | None = None, nonce: str | None = None) -> dict[str, str]:
    """The headers that sign ``method url`` with ``body`` for ``destination``. ``created``/``nonce`` are for tests."""
    method = method.upper()
    path, query = _split_url(url)
    if not (_METHOD_RE.match(method) and _PATH_RE.match(path) and _QUERY_RE.match(query)):
        raise ValueError("method, path and query must be plain ASCII")
    if not (DISTRICT_RE.match(origin) and DISTRICT_RE.match(destination) and KEY_ID_RE.match(key_id)):
        raise ValueError("origin, destination and key id must be district codes / ed25519:<version>")
    params = SignatureParams(created=int(time.time()) if created is None else int(created), keyid=key_id,
                             nonce=nonce or new_nonce())
    digest = content_digest(body)
    base = signature_base(method=method, path=path, query=query, digest=digest, origin=origin,
                          destination=destination, params=params)
    signature = private_key.sign(base)
    return {
        DIGEST_HEADER: digest,
        ORIGIN_HEADER: origin,
        DESTINATION_HEADER: destination,
        INPUT_HEADER: f"{LABEL}={params.serialize()}",
        SIGNATURE_HEADER: f"{LABEL}=:{base64.b64encode(signature).decode('ascii')}:",
    }


@dataclass(frozen=True)
class LocalSigner:
    """This node: its district, its current key id and private key (``node.key_id``, secrets/node_ed25519.key)."""

    district: str
    key_id: str
    private_key: Ed25519PrivateKey

    def sign(self, method: str, url: str, body: bytes, *, destination: str) -> dict[str, str]:
        return sign_request(method, url, body, destination=destination, origin=self.district, key_id=self.key_id,
                            private_key=self.private_key)


@lru_cache(maxsize=1)
def local_signer() -> LocalSigner:
    from django.conf import settings

    from federation.keys import load_private_key

    return LocalSigner(settings.DISTRICT.code, settings.DISTRICT.key_id, load_private_key(conf.get("private_key_file")))


# --- parsing ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ParsedSignature:
    params: SignatureParams
    signature: bytes
    origin: str
    destination: str
    digest: str


def parse_headers(headers: Mapping[str, str]) -> ParsedSignature:
    """The signature headers, strictly in the Letsema form. Raises FederationAuthError (missing / malformed)."""
    raw_input, raw_sig = headers.get(INPUT_HEADER), headers.get(SIGNATURE_HEADER)
    if not raw_input or not raw_sig:
        raise FederationAuthError("federation_signature_missing")

    def malformed(reason: str) -> FederationAuthError:
        return FederationAuthError("federation_signature_malformed", reason)

    m = _INPUT_RE.match(raw_input.strip())
    if not m:
        raise malformed("Signature-Input must be one inner list labelled sig1")
    components = tuple(c.strip('"') for c in m.group(1).split(" ")) if m.group(1) else ()
    if components != COMPONENTS:
        raise malformed("covered components must be " + " ".join(COMPONENTS))
    params: dict[str, str | int] = {}
    for name, value in _PARAM_RE.findall(m.group(2)):
        if name in params:
            raise malformed(f"parameter {name} given twice")
        params[name] = value[1:-1] if value.startswith('"') else int(value)
    if set(params) != {"created", "keyid", "nonce", "alg", "tag"}:
        raise malformed("parameters must be exactly created, keyid, nonce, alg, tag")
    created, keyid, nonce, alg, tag = (params[k] for k in ("created", "keyid", "nonce", "alg", "tag"))
    if not isinstance(created, int) or not all(isinstance(v, str) for v in (keyid, nonce, alg, tag)):
        raise malformed("created is an integer; keyid, nonce, alg and tag are strings")
    if alg != ALG or tag != TAG:
        raise malformed(f'alg must be "{ALG}" and tag "{TAG}"')
    if not KEY_ID_RE.match(keyid) or not _NONCE_RE.match(nonce):
        raise malformed("keyid must be ed25519:<version>; nonce 16-64 base64url characters")
    s = _SIG_RE.match(raw_sig.strip())
    if not s:
        raise malformed("Signature must be sig1=:<base64 of 64 bytes>:")
    try:
        signature = base64.b64decode(s.group(1), validate=True)
    except binascii.Error:
        raise malformed("Signature is not base64") from None
    origin, destination = headers.get(ORIGIN_HEADER, ""), headers.get(DESTINATION_HEADER, "")
    if not DISTRICT_RE.match(origin) or not DISTRICT_RE.match(destination):
        raise malformed(f"{ORIGIN_HEADER} and {DESTINATION_HEADER} must be district codes")
    digest = headers.get(DIGEST_HEADER, "")
    if not _DIGEST_RE.match(digest):
        raise malformed(f"{DIGEST_HEADER} must be sha-256=:<base64>:")
    return ParsedSignature(SignatureParams(created, keyid, nonce), signature, origin, destination, digest)


# --- verification ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class IncomingRequest:
    method: str
    path: str  # as received, percent-encoded, without the query
    query: str  # the raw query string without '?'
    headers: Mapping[str, str]  # case-insensitive (Django's request.headers)
    body: bytes
    remote_addr: str | None = None


@dataclass(frozen=True)
class VerifiedRequest:
    origin: str
    key_id: str
    created: int
    nonce: str


def verify_request(req: IncomingRequest, *, own_district: str, directory: Callable[[], Directory],
                   refresh_directory: Callable[[], Directory], claim_nonce: Callable[[str, str, int], bool],
                   now: float | None = None, max_age: int | None = None, clock_skew: int | None = None) -> VerifiedRequest:
    """Verify ``req`` or raise FederationAuthError (401, stable code); NonceStoreUnavailable (503) from
    ``claim_nonce`` passes through. ``claim_nonce(origin, nonce, ttl)`` is True the first time only."""
    now = time.time() if now is None else now
    max_age = int(conf.get("max_age_seconds") if max_age is None else max_age)
    clock_skew = int(conf.get("clock_skew_seconds") if clock_skew is None else clock_skew)
    origin = key_id = None
    try:
        p = parse_headers(req.headers)
        origin, key_id = p.origin, p.params.keyid
        age = now - p.params.created
        if age > max_age:
            raise FederationAuthError("federation_request_expired", f"created {int(age)} s ago (max {max_age} s)")
        if -age > clock_skew:
            raise FederationAuthError("federation_request_in_future",
                                      f"created {int(-age)} s in the future (clock skew allowance {clock_skew} s)")
        if p.destination != own_district:
            raise FederationAuthError("federation_wrong_destination", f"signed for {p.destination}")
        peer, key = directory().key(p.origin, key_id)
        if key is None:
            peer, key = refresh_directory().key(p.origin, key_id)
        if peer is None or key is None:
            raise FederationAuthError("federation_unknown_key", f"{p.origin} {key_id}")
        if not peer.active:
            raise FederationAuthError("federation_peer_suspended", p.origin)
        validity = key.validity_at(datetime.fromtimestamp(now, UTC))
        if validity == "expired":
            raise FederationAuthError("federation_key_expired", f"{key_id} not_after {key.not_after:%Y-%m-%dT%H:%M:%SZ}")
        if validity == "not_yet_valid":
            raise FederationAuthError("federation_key_not_yet_valid",
                                      f"{key_id} not_before {key.not_before:%Y-%m-%dT%H:%M:%SZ}")
        if not hmac.compare_digest(content_digest(req.body), p.digest):
            raise FederationAuthError("federation_digest_mismatch")
        if not _PATH_RE.match(req.path) or not _QUERY_RE.match(req.query) or not _METHOD_RE.match(req.method):
            raise FederationAuthError("federation_bad_signature", "request target is not plain ASCII")
        base = signature_base(method=req.method, path=req.path, query=req.query, digest=p.digest, origin=p.origin,
                              destination=p.destination, params=p.params)
        try:
            key.public_key.verify(p.signature, base)
        except InvalidSignature:
            raise FederationAuthError("federation_bad_signature") from None
        if not claim_nonce(p.origin, p.params.nonce, max_age + clock_skew):
            raise FederationAuthError("federation_replayed_nonce", p.params.nonce)
    except FederationAuthError as exc:
        level = logging.ERROR if exc.code == "federation_request_in_future" else logging.WARNING
        log.log(level, "federation request refused", extra={
            "code": exc.code, "reason": exc.reason, "origin": origin, "key_id": key_id, "method": req.method,
            "path": req.path, "remote_addr": req.remote_addr})
        raise
    return VerifiedRequest(p.origin, key_id, p.params.created, p.params.nonce)
