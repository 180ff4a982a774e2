"""Repayments API: post a repayment (receipt), reverse one, payment history, balance and payoff, and the product's
allocation strategy. Views stay thin: access checks (selectors), input parsing, one service call, JSON out."""

from __future__ import annotations

from decimal import Decimal

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from node.core.errors import NotFound, ValidationFailed
from node.core.fields import MoneyField, StrictSerializer
from node.core.idempotency import idempotent
from node.core.openapi import error_responses
from node.loans.models import LoanStatus
from node.loans.selectors import access_loan_by_id
from node.repayments import allocation as A
from node.repayments import mobile_money, schemas, selectors, services
from node.repayments.models import (
    RECEIVED_CHANNELS,
    AllocationStrategy,
    Repayment,
)
from node.users.models import Role
from node.users.permissions import role_required

OFFICERS = frozenset({Role.LOAN_OFFICER, Role.MFI_ADMIN})
ADMINS = frozenset({Role.MFI_ADMIN})
COMPONENTS = A.COMPONENTS


def _m(value: Decimal) -> str:
    return f"{value:.2f}"


def _parts(source) -> dict[str, str]:
    """Amounts by component (from a dict or an object with those attributes) and their total."""
    values = {c: source[c] if isinstance(source, dict) else getattr(source, c) for c in COMPONENTS}
    return {**{c: _m(v) for c, v in values.items()}, "total": _m(sum(values.values(), Decimal(0)))}


def repayment_json(rep: Repayment, allocations=None) -> dict:
    """The receipt: amount, allocation by component and by installment, overpayment, outstanding after, reversal.
    ``allocations``: the ``PostedAllocation`` list a posting returns (``rep.posted_allocations``), so a fresh
    receipt needs no read-back; otherwise the stored allocations (prefetched by the selectors)."""
    if allocations is None:
        allocations = [services.PostedAllocation(number=a.installment.number, due_date=a.installment.due_date,
                                                 **{c: getattr(a, c) for c in COMPONENTS})
                       for a in sorted(rep.allocations.all(), key=lambda a: a.installment.number)]
    return {
        "id": rep.pk,
        "receipt_number": rep.receipt_number,
        "loan": rep.loan_id,
        "loan_reference": rep.loan.reference,
        "mfi": rep.mfi.code,
        "amount": _m(rep.amount),
        "payment_date": rep.payment_date.isoformat(),
        "channel": rep.channel,
        "reference": rep.reference,
        "allocation_strategy": rep.allocation_strategy,
        "allocation": _parts(rep),
        "installments": [{"number": a.number, "due_date": a.due_date.isoformat(), **_parts(a)} for a in allocations],
        "overpayment": _m(rep.overpayment),
        "outstanding_after": _parts({c: getattr(rep, f"outstanding_{c}_after") for c in COMPONENTS}),
        "closed_loan": rep.closed_loan,
        "journal_entry": rep.journal_entry_id,
        "posted_by": rep.posted_by.username,
        "posted_at": rep.posted_at.isoformat(),
        **reversal_json(rep),
        "replay_of": rep.replay_of_id,
    }


def reversal_json(row) -> dict:
    """The reversal fields of a repayment, a recovery or a refund (``schemas.Reversal``)."""
    return {"reversed": row.reversed_at is not None,
            "reversed_at": row.reversed_at.isoformat() if row.reversed_at else None,
            "reversed_by": row.reversed_by.username if row.reversed_by_id else None,
            "reversal_reason": row.reversal_reason or None, "reversal_journal_entry": row.reversal_entry_id}


def balance_json(b: selectors.LoanBalance, floor: selectors.PayoffFloor) -> dict:
    """``floor``: the loan's :class:`~node.repayments.selectors.PayoffFloor` — whether the payoff quoted as of
    ``b.as_of`` can be recorded (``payoff.available``) and from which day (``payoff.earliest_date``)."""
    cp = b.payoff.current_period
    earliest = max(filter(None, (floor.earliest, b.loan.disbursement_date)))
    return {
        "loan": b.loan.pk,
        "reference": b.loan.reference,
        "status": b.status,
        "currency": b.loan.product.currency,
        "as_of": b.as_of.isoformat(),
        "disbursement_date": b.loan.disbursement_date.isoformat(),
        "closed_at": b.closed_at.isoformat() if b.closed_at else None,
        "installments": [
            {"number": r.number, "due_date": r.due_date.isoformat(), "status": r.status,
             "due": _parts(r.due), "paid": _parts(r.paid), "outstanding": _parts(r.outstanding)}
            for r in b.installments
        ],
        "outstanding": _parts(b.outstanding),
        "overdue": _parts(b.overdue),
        "overpayment_held": _m(b.overpayment_held),
        "payoff_amount": _m(b.payoff.amount),
        "payoff": {
            "principal": _m(b.payoff.principal),
            "interest_due": _m(b.payoff.interest_due),
            "current_period_interest": _m(b.payoff.current_period_interest),
            "fees": _m(b.payoff.fees),
            "penalties": _m(b.payoff.penalties),
            "available": b.loan.status == LoanStatus.ACTIVE and b.as_of >= earliest,
            "earliest_date": earliest.isoformat(),
            "current_period": None if cp is None else {
                "installment": cp.installment, "period_start": cp.period_start.isoformat(),
                "due_date": cp.due_date.isoformat(), "days_in_period": cp.days_in_period,
                "days_elapsed": cp.days_elapsed, "scheduled_interest": _m(cp.scheduled_interest),
                "accrued_interest": _m(cp.accrued_interest), "interest_paid": _m(cp.interest_paid),
                "interest_owed": _m(cp.interest_owed),
            },
        },
    }


class RepaymentPostSerializer(StrictSerializer):
    amount = MoneyField()
    payment_date = serializers.DateField(required=False, help_text="default: today (the node's business date)")
    channel = serializers.ChoiceField(choices=list(RECEIVED_CHANNELS))
    reference = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")


class LoanRepaymentsApi(APIView):
    """``GET``: the loan's payment history (allocations, reversal state). ``POST`` (loan officers and MFI admins;
    ``Idempotency-Key`` required): receive a repayment; answers the receipt (201)."""

    @extend_schema(responses=schemas.Receipt(many=True))
    def get(self, request, loan_id):
        loan = access_loan_by_id(request.user, loan_id)
        return Response([repayment_json(r) for r in selectors.repayment_list(loan=loan)])

    @extend_schema(request=RepaymentPostSerializer, responses={201: schemas.Receipt})
    @idempotent
    def post(self, request, loan_id):
        loan = access_loan_by_id(request.user, loan_id, roles=OFFICERS, related=False)  # locked and reloaded
        s = RepaymentPostSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        v = s.validated_data
        rep = services.repayment_post(actor=request.user, loan=loan, amount=v["amount"],
                                      payment_date=v.get("payment_date") or timezone.localdate(),
                                      channel=v["channel"], reference=v["reference"])
        return Response(repayment_json(rep, rep.posted_allocations), status=status.HTTP_201_CREATED)


class LoanPayoffSerializer(StrictSerializer):
    amount = MoneyField(help_text="the payoff amount as of payoff_date (GET …/balance?as_of=…: payoff_amount)")
    payoff_date = serializers.DateField(required=False, help_text="default: today")
    channel = serializers.ChoiceField(choices=list(RECEIVED_CHANNELS))
    reference = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")


class LoanPayoffApi(APIView):
    """Pay the loan off on a date (loan officers and MFI admins; ``Idempotency-Key`` required): the payoff amount
    as of that date is received, unearned interest and fees not yet due are waived, the loan closes. Answers the
    receipt with the waivers (201); ``payoff_amount_mismatch`` (409) when ``amount`` is not the payoff amount."""

    @extend_schema(request=LoanPayoffSerializer, responses={201: schemas.PayoffReceipt})
    @idempotent
    def post(self, request, loan_id):
        loan = access_loan_by_id(request.user, loan_id, roles=OFFICERS)
        s = LoanPayoffSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        v = s.validated_data
        rep, waivers = services.loan_payoff(actor=request.user, loan=loan, amount=v["amount"],
                                            payoff_date=v.get("payoff_date") or timezone.localdate(),
                                            channel=v["channel"], reference=v["reference"])
        body = repayment_json(selectors.repayment_get(rep.pk))
        body["waived"] = [{"number": w.installment.number, "interest": _m(w.interest), "fees": _m(w.fees),
                           "penalties": _m(w.penalties)} for w in waivers]
        return Response(body, status=status.HTTP_201_CREATED)


def refund_json(refund) -> dict:
    return {"id": refund.pk, "loan": refund.loan_id, "amount": _m(refund.amount),
            "refund_date": refund.refund_date.isoformat(), "channel": refund.channel, "reference": refund.reference,
            "journal_entry": refund.journal_entry_id, "refunded_by": refund.refunded_by.username,
            "refunded_at": refund.refunded_at.isoformat(), **reversal_json(refund)}


class OverpaymentRefundSerializer(StrictSerializer):
    amount = MoneyField()
    refund_date = serializers.DateField(required=False, help_text="default: today")
    channel = serializers.ChoiceField(choices=list(services.REFUND_CHANNELS))
    reference = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")


class LoanOverpaymentRefundsApi(APIView):
    """``GET``: the loan's overpayment refunds. ``POST`` (MFI admins; ``Idempotency-Key`` required): pay back part
    or all of the overpayment the loan holds (201); ``refund_exceeds_overpayment`` (409) beyond it."""

    @extend_schema(responses=schemas.Refund(many=True))
    def get(self, request, loan_id):
        loan = access_loan_by_id(request.user, loan_id)
        return Response([refund_json(r) for r in selectors.overpayment_refund_list(loan=loan)])

    @extend_schema(request=OverpaymentRefundSerializer, responses={201: schemas.Refund})
    @idempotent
    def post(self, request, loan_id):
        loan = access_loan_by_id(request.user, loan_id, roles=ADMINS)
        s = OverpaymentRefundSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        v = s.validated_data
        refund = services.overpayment_refund(actor=request.user, loan=loan, amount=v["amount"],
                                             refund_date=v.get("refund_date") or timezone.localdate(),
                                             channel=v["channel"], reference=v["reference"])
        return Response(refund_json(refund), status=status.HTTP_201_CREATED)


def transaction_json(t: selectors.LoanTransaction) -> dict:
    return {"date": t.date.isoformat(), "type": t.kind, "id": t.id, "amount": _m(t.amount), "reference": t.reference,
            "detail": t.detail, "installment": t.installment, "reversed": t.reversed,
            "parts": {k: _m(v) for k, v in t.parts.items()} if t.parts else None,
            "outstanding_after": _m(t.outstanding_after) if t.outstanding_after is not None else None}


class LoanTransactionsApi(APIView):
    """Every movement on the loan account in date order — the statement's lines: disbursement, repayments,
    overpayment refunds and transfers, charges added, waivers, recoveries; reversed ones marked (the borrower and
    staff of the MFI). Empty before the payout."""

    @extend_schema(responses=schemas.LoanTransaction(many=True))
    def get(self, request, loan_id):
        loan = access_loan_by_id(request.user, loan_id)
        return Response([transaction_json(t) for t in selectors.loan_transactions(loan=loan)])


def charge_json(c) -> dict:
    return {"id": c.pk, "loan": c.loan_id, "installment": c.installment.number, "kind": c.kind, "name": c.name,
            "amount": _m(c.amount), "due_date": c.due_date.isoformat(), "charged_on": c.charged_on.isoformat(),
            "added_by": c.added_by.username, "added_at": c.added_at.isoformat()}


class LoanChargeSerializer(StrictSerializer):
    kind = serializers.ChoiceField(choices=["fees", "penalties"])
    name = serializers.CharField(max_length=100, help_text="what it is for, e.g. \"field visit\"")
    amount = MoneyField()
    due_date = serializers.DateField(required=False, help_text="default: today; it falls on the first installment "
                                                               "due on or after it")


class LoanChargesApi(APIView):
    """``GET``: the fees and penalties staff added to the loan. ``POST`` (loan officers and MFI admins;
    ``Idempotency-Key`` required): add one to an active loan (201). Paid like any charge; forgiven with a waiver."""

    @extend_schema(responses=schemas.LoanCharge(many=True))
    def get(self, request, loan_id):
        loan = access_loan_by_id(request.user, loan_id)
        return Response([charge_json(c) for c in selectors.loan_charge_list(loan=loan)])

    @extend_schema(request=LoanChargeSerializer, responses={201: schemas.LoanCharge})
    @idempotent
    def post(self, request, loan_id):
        loan = access_loan_by_id(request.user, loan_id, roles=OFFICERS)
        s = LoanChargeSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        v = s.validated_data
        charge = services.loan_charge_add(actor=request.user, loan=loan, kind=v["kind"], name=v["name"],
                                          amount=v["amount"], due_date=v.get("due_date"))
        return Response(charge_json(charge), status=status.HTTP_201_CREATED)


def waiver_json(w) -> dict:
    return {"id": w.pk, "loan": w.loan_id, "installment": w.installment.number, "component": w.component,
            "amount": _m(w.amount), "waived_on": w.waived_on.isoformat(), "reason": w.reason,
            "waived_by": w.waived_by.username, "waived_at": w.waived_at.isoformat(),
            "undone_on": w.undone_on.isoformat() if w.undone_on else None,
            "undone_at": w.undone_at.isoformat() if w.undone_at else None,
            "undone_by": w.undone_by.username if w.undone_by_id else None, "undo_reason": w.undo_reason}


class ChargeWaiverSerializer(StrictSerializer):
    component = serializers.ChoiceField(choices=["interest", "fees", "penalties"])
    amount = MoneyField(required=False, help_text="default: all of it that is unpaid")
    installment = serializers.IntegerField(min_value=1, required=False,
                                           help_text="this installment only (its number); default: oldest first")
    reason = serializers.CharField(min_length=services.REASON_MIN, max_length=services.REASON_MAX)


class LoanChargeWaiversApi(APIView):
    """``GET``: what was waived on the loan. ``POST`` (MFI admins; ``Idempotency-Key`` required): forgive interest,
    fees or penalties still unpaid on an active loan — all of it or ``amount``, oldest installment first or one
    ``installment`` (201). No journal entry (cash-based books never booked them); a waiver that leaves nothing to pay
    closes the loan. ``nothing_to_waive`` / ``waiver_exceeds_unpaid`` (409)."""

    @extend_schema(responses=schemas.ChargeWaiver(many=True))
    def get(self, request, loan_id):
        loan = access_loan_by_id(request.user, loan_id)
        return Response([waiver_json(w) for w in selectors.charge_waiver_list(loan=loan)])

    @extend_schema(request=ChargeWaiverSerializer, responses={201: schemas.ChargeWaiverPosted})
    @idempotent
    def post(self, request, loan_id):
        loan = access_loan_by_id(request.user, loan_id, roles=ADMINS)
        s = ChargeWaiverSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        v = s.validated_data
        waivers = services.loan_charges_waive(actor=request.user, loan=loan, component=v["component"],
                                              reason=v["reason"], amount=v.get("amount"),
                                              installment_number=v.get("installment"))
        loan.refresh_from_db(fields=["status"])
        closed = loan.status == LoanStatus.CLOSED
        return Response({"waivers": [waiver_json(w) for w in waivers],
                         "total": _m(sum((w.amount for w in waivers), Decimal(0))), "closed_loan": closed},
                        status=status.HTTP_201_CREATED)


class ReversalReasonSerializer(StrictSerializer):
    reason = serializers.CharField(min_length=services.REASON_MIN, max_length=services.REASON_MAX)


class ChargeWaiverUndoApi(APIView):
    """Undo a waiver made in error (MFI admins; ``Idempotency-Key`` required): the installment owes the amount again;
    the repayments posted since the waiver are reprocessed (posted again in their order, listed in ``replays``); a
    closed loan that owes something again re-opens. 409: ``already_reversed``, ``reprocess_not_possible`` (a payoff
    since), ``overpayment_refunded``, ``overpayment_held``."""

    @extend_schema(request=ReversalReasonSerializer, responses=schemas.ChargeWaiverUndone)
    @idempotent
    def post(self, request, waiver_id):
        waiver = selectors.access_waiver_by_id(request.user, waiver_id, roles=ADMINS)
        s = ReversalReasonSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        waiver = services.charge_waiver_undo(actor=request.user, waiver=waiver, reason=s.validated_data["reason"])
        return Response({**waiver_json(selectors.access_waiver_by_id(request.user, waiver.pk)),
                         "loan_reopened": waiver.loan_reopened,
                         "replays": [repayment_json(selectors.repayment_get(r.pk)) for r in waiver.replayed]})


class OverpaymentRefundReverseApi(APIView):
    """Reverse an overpayment refund (MFI admins; ``Idempotency-Key`` required) — the money never reached the
    borrower, or came back: its journal entry is reversed and the loan holds the amount again."""

    @extend_schema(request=ReversalReasonSerializer, responses=schemas.Refund)
    @idempotent
    def post(self, request, refund_id):
        refund = selectors.access_refund_by_id(request.user, refund_id, roles=ADMINS)
        s = ReversalReasonSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        refund = services.overpayment_refund_reverse(actor=request.user, refund=refund,
                                                     reason=s.validated_data["reason"])
        return Response(refund_json(selectors.access_refund_by_id(request.user, refund.pk)))


def recovery_json(rec, *, written_off_unpaid: Decimal, remaining: Decimal) -> dict:
    return {"id": rec.pk, "receipt_number": rec.receipt_number, "loan": rec.loan_id, "amount": _m(rec.amount),
            "payment_date": rec.payment_date.isoformat(), "channel": rec.channel, "reference": rec.reference,
            "journal_entry": rec.journal_entry_id, "posted_by": rec.posted_by.username,
            "posted_at": rec.posted_at.isoformat(), **reversal_json(rec),
            "written_off_unpaid": _m(written_off_unpaid), "remaining": _m(remaining)}


def _recovery_answer(rec) -> dict:
    unpaid, remaining = services.recovery_remaining(rec.loan)
    return recovery_json(rec, written_off_unpaid=unpaid, remaining=remaining)


class LoanRecoveriesApi(APIView):
    """``GET``: the recoveries of a written-off loan. ``POST`` (loan officers and MFI admins; ``Idempotency-Key``
    required): money collected after the write-off (201, a receipt; Dr Cash / Cr Recoveries 4300);
    ``illegal_transition`` (409) on a loan that is not written off, ``recovery_exceeds_written_off`` (409) beyond
    what it had unpaid."""

    @extend_schema(responses=schemas.Recovery(many=True))
    def get(self, request, loan_id):
        loan = access_loan_by_id(request.user, loan_id)
        unpaid, remaining = services.recovery_remaining(loan)
        return Response([recovery_json(r, written_off_unpaid=unpaid, remaining=remaining)
                         for r in selectors.recovery_list(loan=loan)])

    @extend_schema(request=RepaymentPostSerializer, responses={201: schemas.Recovery})
    @idempotent
    def post(self, request, loan_id):
        loan = access_loan_by_id(request.user, loan_id, roles=OFFICERS)
        s = RepaymentPostSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        v = s.validated_data
        rec = services.loan_recovery_post(actor=request.user, loan=loan, amount=v["amount"],
                                          payment_date=v.get("payment_date") or timezone.localdate(),
                                          channel=v["channel"], reference=v["reference"])
        return Response(_recovery_answer(rec), status=status.HTTP_201_CREATED)


class RecoveryReverseApi(APIView):
    """Reverse a recovery (MFI admins; ``Idempotency-Key`` required): its journal entry is reversed."""

    @extend_schema(request=ReversalReasonSerializer, responses=schemas.Recovery)
    @idempotent
    def post(self, request, recovery_id):
        rec = selectors.access_recovery_by_id(request.user, recovery_id, roles=ADMINS)
        s = ReversalReasonSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        rec = services.loan_recovery_reverse(actor=request.user, recovery=rec, reason=s.validated_data["reason"])
        return Response(_recovery_answer(selectors.access_recovery_by_id(request.user, rec.pk)))


class OverpaymentTransferSerializer(StrictSerializer):
    to_loan = serializers.IntegerField(help_text="another active loan of the same borrower at this MFI")
    amount = MoneyField()
    transfer_date = serializers.DateField(required=False, help_text="default: today")


def transfer_json(t) -> dict:
    return {"id": t.pk, "from_loan": t.from_loan_id, "to_loan": t.to_loan_id, "amount": _m(t.amount),
            "repayment": t.repayment_id, "receipt_number": t.repayment.receipt_number,
            "transfer_date": t.repayment.payment_date.isoformat(),
            "reversed": t.repayment.reversed_at is not None,
            "transferred_by": t.transferred_by.username, "transferred_at": t.transferred_at.isoformat()}


class LoanOverpaymentTransfersApi(APIView):
    """``GET``: the transfers out of the loan's overpayment. ``POST`` (MFI admins; ``Idempotency-Key`` required):
    apply (part of) the overpayment the loan holds to another active loan of the same borrower — a repayment of
    that loan (channel ``transfer``), answered with its receipt (201); ``transfer_exceeds_overpayment`` (409)
    beyond what is held."""

    @extend_schema(responses=schemas.Transfer(many=True))
    def get(self, request, loan_id):
        loan = access_loan_by_id(request.user, loan_id)
        return Response([transfer_json(t) for t in selectors.overpayment_transfer_list(loan=loan)])

    @extend_schema(request=OverpaymentTransferSerializer, responses={201: schemas.TransferPosted})
    @idempotent
    def post(self, request, loan_id):
        loan = access_loan_by_id(request.user, loan_id, roles=ADMINS)
        s = OverpaymentTransferSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        v = s.validated_data
        t = services.overpayment_transfer(actor=request.user, loan=loan, to_loan_id=v["to_loan"], amount=v["amount"],
                                          transfer_date=v.get("transfer_date") or timezone.localdate())
        rep = t.repayment
        return Response({**transfer_json(t), "receipt": repayment_json(rep, rep.posted_allocations)},
                        status=status.HTTP_201_CREATED)


class RepaymentDetailApi(APIView):
    """One receipt (anyone who may see the loan)."""

    @extend_schema(responses=schemas.Receipt)
    def get(self, request, repayment_id):
        return Response(repayment_json(selectors.access_repayment_by_id(request.user, repayment_id)))


class RepaymentReverseSerializer(StrictSerializer):
    reason = serializers.CharField(min_length=services.REASON_MIN, max_length=services.REASON_MAX)
    reprocess_later = serializers.BooleanField(
        required=False, default=False,
        help_text="when later repayments of the loan are in effect: reverse them too and post them again after "
                  "this one (new receipts, allocated anew); without it such a reversal is refused")


class RepaymentReverseApi(APIView):
    """Reverse a repayment (MFI admins; ``Idempotency-Key`` required). An older one only with ``reprocess_later``:
    the later repayments are then replayed and listed in ``replays``."""

    @extend_schema(request=RepaymentReverseSerializer, responses=schemas.ReversalReceipt)
    @idempotent
    def post(self, request, repayment_id):
        rep = selectors.access_repayment_by_id(request.user, repayment_id, roles=ADMINS)
        s = RepaymentReverseSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        rep = services.repayment_reverse(actor=request.user, repayment=rep, reason=s.validated_data["reason"],
                                         reprocess_later=s.validated_data["reprocess_later"])
        replays = [repayment_json(selectors.repayment_get(r.pk)) for r in rep.replays]
        return Response({**repayment_json(selectors.repayment_get(rep.pk)), "replays": replays})


class LoanBalanceApi(APIView):
    """Installments with due/paid/outstanding and status as of a date, totals and the payoff amount."""

    @extend_schema(parameters=[OpenApiParameter("as_of", str, description="YYYY-MM-DD; default today")],
                   responses=schemas.Balance)
    @error_responses({409: "The loan has not been paid out: it has no schedule to owe yet (loan_not_disbursed)."})
    def get(self, request, loan_id):
        loan = access_loan_by_id(request.user, loan_id)
        raw = request.query_params.get("as_of")
        if raw:
            field = serializers.DateField()
            try:
                as_of = field.to_internal_value(raw)
            except serializers.ValidationError:
                raise ValidationFailed("as_of must be a date (YYYY-MM-DD).",
                                       details={"fields": {"as_of": ["YYYY-MM-DD"]}}) from None
        else:
            as_of = timezone.localdate()
        return Response(balance_json(selectors.loan_balance(loan=loan, as_of=as_of), selectors.payoff_floor(loan)))


class ProductRepaymentConfigSerializer(StrictSerializer):
    allocation_strategy = serializers.ChoiceField(choices=AllocationStrategy.values, allow_null=True)


class ProductRepaymentConfigApi(APIView):
    """The product's repayment allocation strategy (staff of its MFI read; MFI admins change it)."""

    def get_permissions(self):
        if self.request.method == "PUT":
            return [role_required(Role.MFI_ADMIN)()]
        return [role_required(Role.LOAN_OFFICER, Role.MFI_ADMIN, Role.ANALYST)()]

    @staticmethod
    def _json(product) -> dict:
        return {"product": product.pk, "allocation_strategy": services.allocation_strategy_for(product),
                "strategies": list(AllocationStrategy.values), "default": A.DEFAULT_STRATEGY}

    @extend_schema(responses=schemas.RepaymentConfig)
    def get(self, request, product_id):
        return Response(self._json(selectors.access_product_by_id(request.user, product_id)))

    @extend_schema(request=ProductRepaymentConfigSerializer, responses=schemas.RepaymentConfig)
    def put(self, request, product_id):
        product = selectors.access_product_by_id(request.user, product_id)
        s = ProductRepaymentConfigSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        services.product_repayment_config_set(actor=request.user, product=product,
                                              allocation_strategy=s.validated_data["allocation_strategy"])
        return Response(self._json(product))


# --- mobile money (docs/mobile-money.md) ---------------------------------------------------------------------------

class MobileMoneyRequestSerializer(StrictSerializer):
    amount = MoneyField()
    phone = serializers.CharField(max_length=20, required=False, allow_blank=True, default="",
                                  help_text="the phone to prompt; default: the borrower's registered phone")


def mobile_money_json(p) -> dict:
    return {
        "id": p.pk, "request_id": str(p.request_id), "kind": p.kind, "loan": p.loan_id,
        "loan_reference": p.loan.reference if p.loan_id else None, "account_reference": p.account_reference,
        "phone": p.phone, "amount": _m(p.amount),
        "status": p.status, "requested_at": p.requested_at.isoformat(),
        "transaction_id": p.provider_transaction_id,
        "amount_received": _m(p.amount_received) if p.amount_received is not None else None,
        "completed_at": p.completed_at.isoformat() if p.completed_at else None, "reason": p.failure_reason,
        "receipt_number": p.repayment.receipt_number if p.repayment_id else None,
        "applied_at": p.applied_at.isoformat() if p.applied_at else None,
        "refunded_at": p.refunded_at.isoformat() if p.refunded_at else None, "refund_reference": p.refund_reference,
    }


class LoanMobileMoneyApi(APIView):
    """``GET``: the loan's mobile-money payments, newest first (whoever may see the loan). ``POST`` (the borrower):
    prompt a phone to pay ``amount`` on the loan; answers 202 with the payment (``requested``; ``failed`` at once
    when the provider could not be reached). ``amount_above_balance`` (400: more than the loan still owes), ``payment_pending`` (409: an earlier
    prompt is still waiting), ``illegal_transition`` (409: the loan is not active)."""

    @extend_schema(responses=schemas.MobileMoneyPayment(many=True))
    def get(self, request, loan_id):
        loan = access_loan_by_id(request.user, loan_id, related=False)
        return Response([mobile_money_json(p) for p in selectors.mobile_money_payments(loan=loan)])

    @extend_schema(request=MobileMoneyRequestSerializer, responses={202: schemas.MobileMoneyPayment})
    def post(self, request, loan_id):
        loan = access_loan_by_id(request.user, loan_id, roles=frozenset({Role.BORROWER}), related=False)
        s = MobileMoneyRequestSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        p = mobile_money.mobile_money_request(actor=request.user, loan=loan, amount=s.validated_data["amount"],
                                              phone=s.validated_data["phone"] or None)
        p.refresh_from_db()  # the prompt ran after the commit: requested, or failed with the reason
        return Response(mobile_money_json(p), status=status.HTTP_202_ACCEPTED)


class MobileMoneyConfirmationApi(APIView):
    """The provider's confirmation of a payment prompt: ``{"request_id", "status": "success"|"failed",
    "transaction_id", "amount", "reason"}``, signed with the shared secret (``X-Letsema-Timestamp``,
    ``X-Letsema-Signature``). ``success`` posts the repayment; the same confirmation twice posts it once.
    401 ``invalid_signature``, 404 (unknown request), 409 ``already_completed`` / ``transaction_id_reused``,
    503 ``mobile_money_not_configured``."""

    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(request=schemas.MobileMoneyConfirmation, responses={200: schemas.MobileMoneyPayment})
    @error_responses({404: "No payment was requested with this request_id."})
    def post(self, request):
        p = mobile_money.mobile_money_confirm(body=request.body,
                                              timestamp=request.headers.get("X-Letsema-Timestamp", ""),
                                              signature=request.headers.get("X-Letsema-Signature", ""))
        return Response(mobile_money_json(p))


class MobileMoneyPaybillApi(APIView):
    """The provider's notice of money a payer sent to an MFI's business number ("Pay Bill") with the loan
    reference as the account, signed like a confirmation. Posted on that loan (201); money whose account matches
    no loan that can take it is kept ``unapplied`` on the books for the MFI's admins (201, ``reason``). The same
    notice again: 200, nothing posted twice. 401 ``invalid_signature``, 404 ``unknown_business_number``, 409
    ``transaction_id_reused``, 503 ``mobile_money_not_configured``."""

    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(request=schemas.MobileMoneyPaybillNotice,
                   responses={201: schemas.MobileMoneyPayment, 200: schemas.MobileMoneyPayment})
    @error_responses({404: "No MFI of this node has that business number (unknown_business_number)."})
    def post(self, request):
        p, new = mobile_money.mobile_money_paybill(body=request.body,
                                                   timestamp=request.headers.get("X-Letsema-Timestamp", ""),
                                                   signature=request.headers.get("X-Letsema-Signature", ""))
        return Response(mobile_money_json(p), status=status.HTTP_201_CREATED if new else status.HTTP_200_OK)


class MobileMoneyPaybillCheckApi(APIView):
    """The provider asks before taking the payer's money whether the MFI takes a paybill payment (M-Pesa's C2B
    validation; the notice's body, signed the same way). 200 with ``accept`` true (the MFI and the loan it will post
    on) or false with ``reason``: ``unknown_business_number``, ``unknown_account``, ``loan_not_active``. Nothing is
    written. 400 ``validation_error``, 401 ``invalid_signature``, 503 ``mobile_money_not_configured``."""

    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(request=schemas.MobileMoneyPaybillNotice, responses={200: schemas.MobileMoneyPaybillCheck})
    def post(self, request):
        return Response(mobile_money.mobile_money_paybill_check(
            body=request.body, timestamp=request.headers.get("X-Letsema-Timestamp", ""),
            signature=request.headers.get("X-Letsema-Signature", "")))


class MobileMoneyUnappliedApi(APIView):
    """Mobile money the MFI received that no loan took (``unapplied``), oldest first: what its admins apply to a
    loan or pay back (the MFI's staff; the first 500)."""

    permission_classes = [role_required(Role.MFI_ADMIN, Role.LOAN_OFFICER, Role.ANALYST)]

    @extend_schema(responses=schemas.MobileMoneyPayment(many=True))
    def get(self, request):
        rows = selectors.mobile_money_unapplied(mfi_id=request.user.mfi_id).select_related("repayment")[:500]
        return Response([mobile_money_json(p) for p in rows])


class MobileMoneyApplySerializer(StrictSerializer):
    loan_reference = serializers.CharField(max_length=64, help_text="the reference of the MFI's loan to apply it to")


class MobileMoneyApplyApi(APIView):
    """Apply ``unapplied`` mobile money to an active loan of the MFI (MFI admins; ``Idempotency-Key`` required): the
    repayment is posted as of the day the money came in, the money leaves Unapplied receipts. 404 for a reference
    that is not the MFI's loan; 409 ``illegal_transition`` (not unapplied, or a loan that is not active)."""

    @extend_schema(request=MobileMoneyApplySerializer, responses={200: schemas.MobileMoneyPayment})
    @idempotent
    def post(self, request, payment_id):
        p = selectors.access_mobile_money_payment(request.user, payment_id)
        s = MobileMoneyApplySerializer(data=request.data)
        s.is_valid(raise_exception=True)
        loan = selectors.mfi_loan_by_reference(mfi_id=p.mfi_id, reference=s.validated_data["loan_reference"])
        if loan is None:
            raise NotFound("The MFI has no loan with that reference.",
                           details={"loan_reference": s.validated_data["loan_reference"]})
        p = mobile_money.mobile_money_apply(actor=request.user, payment=p, loan=loan)
        return Response(mobile_money_json(p))


class MobileMoneyRefundSerializer(StrictSerializer):
    reference = serializers.CharField(max_length=100, required=False, allow_blank=True, default="",
                                      help_text="how it was paid back (the transfer's or voucher's reference)")


class MobileMoneyRefundApi(APIView):
    """Record that an ``unapplied`` mobile-money payment (money no loan could take) was paid back to the payer
    (MFI admins; ``Idempotency-Key`` required): Dr Unapplied receipts / Cr Cash. 409 ``already_refunded``, or
    ``illegal_transition`` for a payment that was not left unapplied."""

    @extend_schema(request=MobileMoneyRefundSerializer, responses={200: schemas.MobileMoneyPayment})
    @idempotent
    def post(self, request, payment_id):
        p = selectors.access_mobile_money_payment(request.user, payment_id)
        s = MobileMoneyRefundSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        p = mobile_money.mobile_money_refund(actor=request.user, payment=p, reference=s.validated_data["reference"])
        return Response(mobile_money_json(p))
