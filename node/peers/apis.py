"""Federation endpoints (peers only, signed) and the staff-facing network look-up that fans out to them."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.parsers import JSONParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from federation.auth import IsSignedPeer, SignedPeerAuthentication
from federation.fanout import BadResponse, fanout
from node.borrowers.identity import BORROWER_KEY_RE
from node.core.errors import ValidationFailed
from node.core.fields import MoneyField, StrictSerializer
from node.core.openapi import error_responses
from node.peers import selectors
from node.peers.schemas import (
    LOAN_STATUSES,
    PAR_DAYS,
    SCHEMA,
    BorrowerAuthRequest,
    BorrowerStatus,
    BorrowerStatusRequest,
    Pong,
)
from node.peers.services import (
    borrower_federated_authenticate,
    borrower_visitor_sign_in,
)
from node.users.apis import SignedIn
from node.users.models import Role
from node.users.permissions import role_required
from node.users.tokens import token_pair_issue

log = logging.getLogger("letsema.federation")
BORROWER_STATUS_PATH = "/_federation/v1/borrowers/status"


class _PeerApi(APIView):
    authentication_classes = [SignedPeerAuthentication]
    permission_classes = [IsSignedPeer]
    parser_classes = [JSONParser]


class FederationPingApi(_PeerApi):
    """Signed liveness check between nodes: who answers, who asked, and this node's clock."""

    @extend_schema(exclude=True)
    def get(self, request):
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return Response(Pong(district=settings.DISTRICT.code, origin=request.user.district, time=now).to_json())


class FederationBorrowerStatusApi(_PeerApi):
    """Is this borrower key registered here, and verified? (By key only; the national ID never travels.)"""

    @extend_schema(exclude=True)
    def post(self, request):
        req = BorrowerStatusRequest.from_json(request.data)
        return Response(selectors.borrower_status_get(borrower_key=req.borrower_key).to_json())


class FederationBorrowerAuthenticateApi(_PeerApi):
    """A borrower registered here signs in at the calling node: check the password, share the profile."""

    @extend_schema(exclude=True)
    def post(self, request):
        req = BorrowerAuthRequest.from_json(request.data)
        return Response(borrower_federated_authenticate(request=req, origin=request.user.district).to_json())


class FederationAggregatesApi(_PeerApi):
    """This node's own portfolio figures (counts, outstanding principal, PAR), for the network view."""

    @extend_schema(exclude=True)
    def get(self, request):
        return Response(selectors.node_figures().to_json())


# --- the network answers, described for the OpenAPI document ---------------------------------------------------
def _keyed(name: str, keys, field) -> type[serializers.Serializer]:
    """A serializer for a JSON object with exactly these keys (loan statuses, PAR days), each a ``field()``."""
    return type(name, (serializers.Serializer,), {k: field() for k in keys})


_LoanCounts = _keyed("NetworkLoanCounts", LOAN_STATUSES, serializers.IntegerField)
_ParAmounts = _keyed("ParAmounts", PAR_DAYS, MoneyField)
_ParRatios = _keyed("ParRatios", PAR_DAYS, lambda: MoneyField(places=4, allow_null=True))
_MISSING = "district → why it is missing: backoff, timeout, unreachable, http_<status>, bad_response, insecure_url"


class DistrictFigures(serializers.Serializer):
    business_date = serializers.DateField()
    closed_through = serializers.DateField(allow_null=True, help_text="the last business date closed")
    mfis = serializers.IntegerField()
    borrowers = serializers.IntegerField()
    loans = _LoanCounts(help_text="loans by status")
    currency = serializers.CharField()
    outstanding_principal = MoneyField()
    par = _ParAmounts(help_text="outstanding principal of loans more than N days past due")
    par_ratio = _ParRatios(help_text="par ÷ outstanding principal; null when nothing is outstanding")


class NetworkTotals(serializers.Serializer):
    districts = serializers.IntegerField(help_text="districts that answered")
    mfis = serializers.IntegerField()
    borrowers = serializers.IntegerField()
    loans = _LoanCounts()
    currencies = serializers.ListField(child=serializers.CharField())
    outstanding_principal = MoneyField()
    par = _ParAmounts()
    par_ratio = _ParRatios()


class NetworkFigures(serializers.Serializer):
    schema = serializers.IntegerField()
    partial = serializers.BooleanField()
    missing = serializers.DictField(child=serializers.CharField(), help_text=_MISSING)
    network = NetworkTotals(help_text="summed over the districts that answered")
    districts = serializers.DictField(child=DistrictFigures(), help_text="district → its own figures")


class WhereAnswer(serializers.Serializer):
    registered = serializers.BooleanField()
    verified = serializers.BooleanField()


class BorrowerWhere(serializers.Serializer):
    schema = serializers.IntegerField()
    borrower_key = serializers.CharField()
    partial = serializers.BooleanField()
    registered_in = serializers.ListField(child=serializers.CharField())
    answered = serializers.DictField(child=WhereAnswer(), help_text="district → its answer (this node included)")
    missing = serializers.DictField(child=serializers.CharField(), help_text=_MISSING)


class NetworkAggregatesApi(APIView):
    """Network-wide portfolio for Letsema admins: each district's own figures (asked of every node at once) and the
    totals over those that answered. A district that does not answer is listed under ``missing`` and left out of
    the totals (``partial``). Figures are as of each node's last close of business."""

    permission_classes = [role_required(Role.LETSEMA_ADMIN)]

    @extend_schema(responses=NetworkFigures)
    def get(self, request):
        return Response(selectors.network_figures())


class VisitorSignedIn(SignedIn):
    home_district = serializers.CharField(help_text="the district the borrower registered in")


class VisitorTokenApi(APIView):
    """Sign in at this node with your national ID and password, wherever in Letsema you registered. A borrower
    of another district is authenticated by their home node over the signed federation channel; their profile and
    KYC status come with it, so they can apply to this district's MFIs. Returns the usual access/refresh tokens."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    class InputSerializer(StrictSerializer):
        national_id = serializers.CharField(max_length=32)
        password = serializers.CharField(max_length=256, trim_whitespace=False)

    @extend_schema(request=InputSerializer, responses=VisitorSignedIn)
    @error_responses({429: "Too many failed sign-ins for this national ID or account (sign_in_locked, login_throttled)."})
    def post(self, request):
        s = self.InputSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        user = borrower_visitor_sign_in(**s.validated_data)
        borrower = user.borrower
        return Response({**token_pair_issue(user=user, channel="visitor"), "role": user.role,
                         "district": settings.DISTRICT.code,
                         "home_district": borrower.home_district or settings.DISTRICT.code})


def _parse_status(borrower_key: str):
    def parse(district: str, data) -> dict:
        status = BorrowerStatus.from_json(data)
        if status.district != district or status.borrower_key != borrower_key:
            raise BadResponse("the answer is about another district or borrower key")
        return {"registered": status.registered, "verified": status.verified}

    return parse


class NetworkBorrowerWhereApi(APIView):
    """Where in the network a borrower key is registered (loan officers and MFI admins). Asks every peer at once;
    peers that are down or slow are listed under ``missing`` and the answer is ``partial``."""

    permission_classes = [role_required(Role.LOAN_OFFICER, Role.MFI_ADMIN)]

    @extend_schema(parameters=[OpenApiParameter("borrower_key", str, OpenApiParameter.PATH)], responses=BorrowerWhere)
    def get(self, request, borrower_key: str):
        if not BORROWER_KEY_RE.match(borrower_key):
            raise ValidationFailed("borrower_key must look like v<version>:<64 hex digits>.",
                                   details={"fields": {"borrower_key": ["Not a borrower key."]}})
        local = selectors.borrower_status_get(borrower_key=borrower_key)
        result = fanout("POST", BORROWER_STATUS_PATH, BorrowerStatusRequest(borrower_key).to_json(),
                        parse=_parse_status(borrower_key))
        answered = {local.district: {"registered": local.registered, "verified": local.verified}, **result.answered}
        log.info("network borrower look-up", extra={
            "actor": request.user.pk, "mfi": request.user.mfi_id, "borrower_key": borrower_key,
            "partial": result.partial, "missing": ",".join(sorted(result.missing)), "ms": round(result.elapsed_ms, 1)})
        return Response({
            "schema": SCHEMA,
            "borrower_key": borrower_key,
            "partial": result.partial,
            "registered_in": sorted(d for d, v in answered.items() if v["registered"]),
            "answered": dict(sorted(answered.items())),
            "missing": dict(sorted(result.missing.items())),
        })
