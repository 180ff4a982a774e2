"""Stable error codes of the federation layer. Codes are a contract: add, never rename (ARCHITECTURE.md)."""

from __future__ import annotations

from node.core.errors import ApplicationError

#: Every reason a signed peer request is refused (HTTP 401), with the message the peer sees.
AUTH_ERRORS: dict[str, str] = {
    "federation_signature_missing": "The request carries no Signature / Signature-Input headers.",
    "federation_signature_malformed": "The signature headers are not in the Letsema federation form.",
    "federation_unknown_key": "The origin district or its key id is not in the peer directory.",
    "federation_peer_suspended": "The origin district is suspended in the peer directory.",
    "federation_key_expired": "The signing key is past its not_after.",
    "federation_key_not_yet_valid": "The signing key is before its not_before.",
    "federation_request_expired": "The signature's created time is older than the allowed window.",
    "federation_request_in_future": "The signature's created time is further in the future than the clock skew allows.",
    "federation_wrong_destination": "The request was signed for another district.",
    "federation_digest_mismatch": "The body does not match its Content-Digest.",
    "federation_bad_signature": "The signature does not verify.",
    "federation_replayed_nonce": "This nonce was already used.",
}


class FederationAuthError(ApplicationError):
    """A signed peer request that is refused: 401 with one of :data:`AUTH_ERRORS`."""

    status = 401

    def __init__(self, code: str, reason: str = "", *, details: dict | None = None):
        assert code in AUTH_ERRORS, code
        super().__init__(AUTH_ERRORS[code], code=code, details={**({"reason": reason} if reason else {}),
                                                                **(details or {})})
        self.reason = reason


class NonceStoreUnavailable(ApplicationError):
    """Replay protection cannot be checked (Redis unreachable): refuse rather than accept a possible replay."""

    code = "federation_nonce_store_unavailable"
    status = 503


class FederationPayloadError(ApplicationError):
    """A peer payload that does not match its versioned schema."""

    code = "federation_bad_payload"
    status = 400


class FederationUnsupportedSchema(ApplicationError):
    code = "federation_unsupported_schema"
    status = 400
