"""The credit API's answers, described for its OpenAPI document (the JSON itself is built in ``node.credit.apis``;
schemathesis and ``tests/test_api_contract.py`` check the answers against these)."""

from __future__ import annotations

from rest_framework import serializers

from node.core.fields import MoneyField
from node.credit.report import STATUS_AFTER

LINE_STATUSES = sorted({s for s in STATUS_AFTER.values() if s})


class CreditLoanLine(serializers.Serializer):
    loan_key = serializers.CharField(help_text="<district>/<loan reference>: unique network-wide")
    mfi = serializers.CharField()
    district = serializers.CharField()
    loan_ref = serializers.CharField()
    status = serializers.ChoiceField(choices=LINE_STATUSES)
    currency = serializers.CharField()
    principal = MoneyField()
    outstanding = MoneyField(help_text="principal outstanding (0 unless active)")
    monthly_installment = MoneyField(help_text="the regular installment, normalised to a month")
    current_days_past_due = serializers.IntegerField()
    worst_days_past_due = serializers.IntegerField()
    written_off_amount = MoneyField()
    recovered_amount = MoneyField(help_text="collected after the write-off")
    disbursed_on = serializers.DateField(allow_null=True)
    first_seen = serializers.DateTimeField()
    last_event_at = serializers.DateTimeField()
    this_application = serializers.BooleanField(help_text="the application being assessed (left out of the summary)")
    under_dispute = serializers.BooleanField(help_text="the borrower disputes this record; the lender has not answered")


class CreditDisputeLine(serializers.Serializer):
    dispute_id = serializers.UUIDField()
    loan_key = serializers.CharField()
    reason = serializers.CharField()
    status = serializers.ChoiceField(choices=["open", "corrected", "rejected"],
                                     help_text="corrected: the lender fixed the record; rejected: the record stands")
    opened_at = serializers.DateTimeField()
    respond_by = serializers.DateField(allow_null=True, help_text="the lender's deadline to answer")
    resolved_at = serializers.DateTimeField(allow_null=True)


class CreditEnquiry(serializers.Serializer):
    at = serializers.DateTimeField()
    mfi = serializers.CharField()
    district = serializers.CharField()
    purpose = serializers.CharField()


class ScoreReason(serializers.Serializer):
    code = serializers.CharField(help_text="stable snake_case, e.g. dti_high")
    points = serializers.IntegerField(help_text="what this factor added (positive) or took away (negative)")
    text = serializers.CharField(help_text="plain language, with the figure")


class Score(serializers.Serializer):
    points = serializers.IntegerField()
    grade = serializers.ChoiceField(choices=["A", "B", "C", "D", "E"])
    reasons = ScoreReason(many=True, help_text="every factor that moved the score, largest first")
    dti = MoneyField(places=4, allow_null=True, help_text="debt-to-income; null when no income is declared")
    card_version = serializers.CharField()


class NetworkPolicy(serializers.Serializer):
    max_active_loans = serializers.IntegerField(allow_null=True)
    max_dti = MoneyField(places=4, allow_null=True)
    reservation_days = serializers.IntegerField()
    source = serializers.ChoiceField(choices=["network", "default"],
                                     help_text="set in the ring by a Letsema admin, or the node's default")


class CreditSummary(serializers.Serializer):
    active_loans = serializers.IntegerField()
    pending_applications = serializers.IntegerField()
    total_exposure = MoneyField()
    monthly_debt_service = MoneyField()
    new_monthly_installment = MoneyField()
    debt_to_income = MoneyField(places=4, allow_null=True)
    write_offs = serializers.IntegerField()
    worst_days_past_due = serializers.IntegerField()
    current_days_past_due = serializers.IntegerField()
    closed_loans = serializers.IntegerField()
    enquiries_30_days = serializers.IntegerField()
    enquiries_90_days = serializers.IntegerField()
    first_seen = serializers.DateTimeField(allow_null=True)
    events_read = serializers.IntegerField()
    disputed_loans = serializers.IntegerField(help_text="loans whose record the borrower disputes, not yet answered")


class CreditAssessment(serializers.Serializer):
    borrower_key = serializers.CharField()
    as_of = serializers.DateTimeField()
    purpose = serializers.CharField()
    enquiry_id = serializers.UUIDField(help_text="the enquiry this look-up left in the ring")
    summary = CreditSummary()
    loans = CreditLoanLine(many=True)
    enquiries = CreditEnquiry(many=True)
    disputes = CreditDisputeLine(many=True)
    score = Score()
    network_policy = NetworkPolicy(allow_null=True, help_text="null when the ring could not be read for it")


class OwnCreditSummary(serializers.Serializer):
    active_loans = serializers.IntegerField()
    pending_applications = serializers.IntegerField()
    total_exposure = MoneyField()
    closed_loans = serializers.IntegerField()
    write_offs = serializers.IntegerField()
    worst_days_past_due = serializers.IntegerField()
    disputed_loans = serializers.IntegerField()


class OwnCreditHistory(serializers.Serializer):
    borrower_key = serializers.CharField()
    as_of = serializers.DateTimeField()
    home_district = serializers.CharField(allow_null=True)
    summary = OwnCreditSummary()
    loans = CreditLoanLine(many=True)
    enquiries = CreditEnquiry(many=True)
    disputes = CreditDisputeLine(many=True, help_text="your disputes of these records and the lenders' answers")


class DisputeFiled(serializers.Serializer):
    dispute_id = serializers.UUIDField()
    loan_key = serializers.CharField()
    lender_district = serializers.CharField(help_text="the district node of the lender that must answer")
    respond_by = serializers.DateField()
    status = serializers.ChoiceField(choices=["open", "corrected", "rejected"], help_text="open when filed")


class StaffDispute(serializers.Serializer):
    dispute_id = serializers.UUIDField()
    loan_id = serializers.IntegerField()
    loan_ref = serializers.CharField()
    reason = serializers.CharField()
    details = serializers.CharField(allow_blank=True)
    filed_at_district = serializers.CharField()
    status = serializers.ChoiceField(choices=["open", "corrected", "rejected"])
    opened_at = serializers.DateTimeField()
    respond_by = serializers.DateField()
    overdue = serializers.BooleanField(help_text="open past its deadline")
    resolved_at = serializers.DateTimeField(allow_null=True)
    resolved_by = serializers.CharField(allow_null=True)
    resolution_note = serializers.CharField(allow_blank=True)
