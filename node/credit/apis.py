"""Credit API: the network credit report and score for staff with a permissible purpose, and the network policy."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from node.borrowers.models import Borrower
from node.borrowers.selectors import access_borrower_by_id
from node.core.errors import NotFound
from node.core.fields import StrictSerializer
from node.core.openapi import error_responses
from node.credit import schemas
from node.credit.disputes import dispute_file, dispute_open_for_peer, dispute_resolve, disputes_for_staff
from node.credit.errors import CreditNetworkUnavailable
from node.credit.models import DisputeReason
from node.credit.report import CreditReport
from node.credit.services import (
    PURPOSES,
    Assessment,
    credit_assess,
    credit_history_own,
    network_policy_set,
)
from node.credit.stacking import monthly_dti, policy_get
from node.peers.apis import _PeerApi
from node.peers.schemas import DisputeRequest
from node.users.models import Role
from node.users.permissions import role_required
from replication.ring import RingUnavailable

LENDERS = (Role.LOAN_OFFICER, Role.MFI_ADMIN)


def _money(d) -> str:
    return str(d.quantize(d.__class__("0.01")))


def loan_lines_json(r: CreditReport) -> list[dict]:
    return [
        {"loan_key": x.loan_key, "mfi": x.mfi, "district": x.district, "loan_ref": x.loan_ref, "status": x.status,
         "currency": x.currency, "principal": _money(x.principal), "outstanding": _money(x.outstanding),
         "monthly_installment": _money(x.monthly_installment), "current_days_past_due": x.current_dpd,
         "worst_days_past_due": x.worst_dpd, "written_off_amount": _money(x.written_off_amount),
         "recovered_amount": _money(x.recovered_amount),
         "disbursed_on": x.disbursed_on, "first_seen": x.first_seen, "last_event_at": x.last_event_at,
         "this_application": x.loan_key == r.excluded_loan_key, "under_dispute": x.under_dispute}
        for x in r.loans
    ]


def disputes_json(r: CreditReport) -> list[dict]:
    return [{"dispute_id": d.dispute_id, "loan_key": d.loan_key, "reason": d.reason, "status": d.status,
             "opened_at": d.opened_at, "respond_by": d.respond_by, "resolved_at": d.resolved_at}
            for d in r.disputes]


def enquiries_json(r: CreditReport) -> list[dict]:
    return [{"at": e.at, "mfi": e.mfi, "district": e.district, "purpose": e.purpose} for e in r.enquiries]


def assessment_json(a: Assessment, *, purpose: str, monthly_income) -> dict:
    r = a.report
    try:
        policy = policy_get().to_json()
    except RingUnavailable:
        policy = None
    total = r.monthly_debt_service + a.new_monthly_installment
    return {
        "borrower_key": r.borrower_key, "as_of": r.as_of, "purpose": purpose, "enquiry_id": str(a.enquiry_id),
        "summary": {
            "active_loans": r.active_loans, "pending_applications": r.pending_applications,
            "total_exposure": _money(r.total_exposure), "monthly_debt_service": _money(r.monthly_debt_service),
            "new_monthly_installment": _money(a.new_monthly_installment),
            "debt_to_income": str(monthly_dti(total, monthly_income)) if monthly_dti(total, monthly_income) is not None else None,
            "write_offs": r.write_offs, "worst_days_past_due": r.worst_dpd, "current_days_past_due": r.current_dpd,
            "closed_loans": r.closed_loans, "enquiries_30_days": r.enquiries_within(30),
            "enquiries_90_days": r.enquiries_within(90), "first_seen": r.first_seen, "events_read": r.events_read,
            "disputed_loans": r.disputed_loans,
        },
        "loans": loan_lines_json(r),
        "enquiries": enquiries_json(r),
        "disputes": disputes_json(r),
        "score": a.score.to_json(),
        "network_policy": policy,
    }


# what a credit look-up answers past the caller's hourly limit (both look-up endpoints)
ENQUIRY_LIMIT_ANSWER = {429: "The caller's credit look-ups this hour reached LETSEMA_CREDIT_REPORTS_PER_HOUR "
                             "(enquiry_limit_reached)."}

class BorrowerCreditReportApi(APIView):
    """Pull the borrower's network-wide credit report and score (loan officers and MFI admins; the borrower must
    have consented). Each pull is logged in the ring as an enquiry by your MFI and audited here."""

    permission_classes = [role_required(*LENDERS)]

    class InputSerializer(StrictSerializer):
        purpose = serializers.ChoiceField(choices=PURPOSES, default="account_review")

    @extend_schema(request=InputSerializer, responses=schemas.CreditAssessment)
    @error_responses(ENQUIRY_LIMIT_ANSWER)
    def post(self, request, borrower_id):
        borrower = access_borrower_by_id(request.user, borrower_id)
        s = self.InputSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        a = credit_assess(actor=request.user, borrower=borrower, purpose=s.validated_data["purpose"])
        return Response(assessment_json(a, purpose=s.validated_data["purpose"], monthly_income=borrower.monthly_income))



class MyCreditHistoryApi(APIView):
    """Your own credit history across the Letsema network (borrowers): every loan and application at every MFI
    in every district, and which MFIs looked at your file. The same wherever you sign in."""

    permission_classes = [role_required(Role.BORROWER)]

    @extend_schema(responses=schemas.OwnCreditHistory)
    def get(self, request):
        borrower = _own_borrower(request.user)
        r = credit_history_own(borrower=borrower)
        return Response({
            "borrower_key": r.borrower_key, "as_of": r.as_of, "home_district": borrower.home_district or None,
            "summary": {"active_loans": r.active_loans, "pending_applications": r.pending_applications,
                        "total_exposure": _money(r.total_exposure), "closed_loans": r.closed_loans,
                        "write_offs": r.write_offs, "worst_days_past_due": r.worst_dpd,
                        "disputed_loans": r.disputed_loans},
            "loans": loan_lines_json(r),
            "enquiries": enquiries_json(r),
            "disputes": disputes_json(r),
        })


def _own_borrower(user) -> Borrower:
    borrower = Borrower.objects.filter(user=user).first()
    if borrower is None:
        raise NotFound("No borrower profile for this account.")
    return borrower


class MyCreditDisputesApi(APIView):
    """Dispute a loan's record in your credit history (borrowers). The lender that wrote it must answer by
    ``respond_by``; until then every credit report shows the loan as under dispute. File it wherever you sign in."""

    permission_classes = [role_required(Role.BORROWER)]

    class InputSerializer(StrictSerializer):
        loan_key = serializers.CharField(max_length=90, help_text="as your credit history lists it")
        reason = serializers.ChoiceField(choices=DisputeReason.choices)
        details = serializers.CharField(max_length=1000, allow_blank=True, default="",
                                        help_text="what is wrong (required when the reason is 'other')")

    @extend_schema(request=InputSerializer, responses={201: schemas.DisputeFiled})
    @error_responses({404: "The loan is not in your credit history (unknown_credit_entry)."})
    def post(self, request):
        s = self.InputSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        v = s.validated_data
        f = dispute_file(borrower=_own_borrower(request.user), loan_key=v["loan_key"], reason=v["reason"],
                         details=v["details"])
        return Response({"dispute_id": f.dispute_id, "loan_key": f.loan_key, "lender_district": f.lender_district,
                         "respond_by": f.respond_by, "status": "open"}, status=201)


def staff_dispute_json(d) -> dict:
    return {"dispute_id": d.id, "loan_id": d.loan_id, "loan_ref": d.loan.reference, "reason": d.reason,
            "details": d.details, "filed_at_district": d.filed_at_district, "status": d.status,
            "opened_at": d.opened_at, "respond_by": d.respond_by,
            "overdue": d.overdue, "resolved_at": d.resolved_at,
            "resolved_by": d.resolved_by.username if d.resolved_by else None, "resolution_note": d.resolution_note}


class FederationDisputesApi(_PeerApi):
    """A borrower signed in at the calling node disputes one of this node's loan records."""

    @extend_schema(exclude=True)
    def post(self, request):
        req = DisputeRequest.from_json(request.data)
        return Response(dispute_open_for_peer(req, origin=request.user.district).to_json())


class CreditDisputesApi(APIView):
    """Borrowers' disputes of your MFI's loan records (loan officers and MFI admins), earliest deadline first."""

    permission_classes = [role_required(*LENDERS)]

    @extend_schema(parameters=[OpenApiParameter("status", str, enum=["open", "corrected", "rejected", "all"])],
                   responses=schemas.StaffDispute(many=True))
    def get(self, request):
        return Response([staff_dispute_json(d) for d in
                         disputes_for_staff(request.user, status=request.query_params.get("status", "open"))])


class CreditDisputeResolveApi(APIView):
    """Answer a dispute: ``corrected`` (you fixed the record, e.g. reversed a wrong repayment) or ``rejected``
    (the record stands), with a note for the borrower. The credit reports stop showing the loan as disputed."""

    permission_classes = [role_required(*LENDERS)]

    class InputSerializer(StrictSerializer):
        outcome = serializers.ChoiceField(choices=["corrected", "rejected"])
        note = serializers.CharField(max_length=1000)

    @extend_schema(request=InputSerializer, responses=schemas.StaffDispute)
    def post(self, request, dispute_id):
        s = self.InputSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        d = dispute_resolve(actor=request.user, dispute_id=dispute_id, outcome=s.validated_data["outcome"],
                            note=s.validated_data["note"])
        return Response(staff_dispute_json(d))


class NetworkPolicyApi(APIView):
    """The network lending policy the stacking guard enforces (read: any staff; change: Letsema admins)."""

    class InputSerializer(StrictSerializer):
        max_active_loans = serializers.IntegerField(min_value=1, allow_null=True)
        max_dti = serializers.DecimalField(max_digits=6, decimal_places=4, allow_null=True, coerce_to_string=True)
        reservation_days = serializers.IntegerField(min_value=1, max_value=365, default=30)

    def get_permissions(self):
        if self.request.method == "PUT":
            return [role_required(Role.LETSEMA_ADMIN)()]
        return [role_required(*LENDERS, Role.ANALYST, Role.LETSEMA_ADMIN, Role.OPERATOR)()]

    @extend_schema(responses=schemas.NetworkPolicy)
    def get(self, request):
        try:
            return Response(policy_get().to_json())
        except RingUnavailable as exc:
            raise CreditNetworkUnavailable("The ring cannot be read at quorum right now.",
                                           details={"reason": str(exc)[:200]}) from None

    @extend_schema(request=InputSerializer, responses=schemas.NetworkPolicy)
    def put(self, request):
        s = self.InputSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        v = s.validated_data
        return Response(network_policy_set(actor=request.user, max_active_loans=v["max_active_loans"],
                                           max_dti=v["max_dti"], reservation_days=v["reservation_days"]).to_json())
