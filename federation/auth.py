"""DRF authentication for endpoints that only peer nodes call (``/_federation/v1/...``).

    class PingApi(APIView):
        authentication_classes = [SignedPeerAuthentication]
        permission_classes = [IsSignedPeer]

``request.user`` is then a :class:`SignedPeer` (the origin district and key id); ``request.auth`` the
:class:`~federation.signing.VerifiedRequest`. A refused request answers 401 ``{code, message, details}`` with one of
``federation.errors.AUTH_ERRORS`` (logged by federation.signing). A verified request from a peer also clears that
peer's backoff state: it is evidently up.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.encoding import escape_uri_path
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission

from federation import conf, peers, state
from federation.backoff import default_backoff
from federation.signing import IncomingRequest, VerifiedRequest, verify_request


@dataclass(frozen=True)
class SignedPeer:
    district: str
    key_id: str
    is_authenticated: bool = True
    is_anonymous: bool = False
    role = None  # never a user: role checks on user endpoints fail closed for peers

    def __str__(self) -> str:
        return f"peer:{self.district}"


def verify_django_request(request) -> VerifiedRequest:
    """Verify a Django ``HttpRequest`` signed by a peer (raises FederationAuthError / NonceStoreUnavailable)."""
    incoming = IncomingRequest(
        method=request.method,
        path=escape_uri_path(request.path),
        query=request.META.get("QUERY_STRING", ""),
        headers=request.headers,
        body=request.body,
        remote_addr=request.META.get("REMOTE_ADDR"),
    )
    backoff = default_backoff()

    def claim_nonce(origin: str, nonce: str, ttl: int) -> bool:
        # the nonce and the reset of the origin's backoff state in one Redis round trip
        return state.claim_nonce(origin, nonce, ttl, clear=backoff.shared_keys(origin))

    verified = verify_request(incoming, own_district=conf.own_district(), directory=peers.get_directory,
                              refresh_directory=peers.refresh_directory, claim_nonce=claim_nonce)
    backoff.clear_local(verified.origin)
    return verified


class SignedPeerAuthentication(BaseAuthentication):
    def authenticate(self, request):
        verified = verify_django_request(request._request)
        return SignedPeer(verified.origin, verified.key_id), verified

    def authenticate_header(self, request) -> str:
        return 'Signature realm="letsema-federation"'


class IsSignedPeer(BasePermission):
    message = "Only peer nodes may call this endpoint, with a signed request."

    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, SignedPeer)
