"""The payroll API's answers, described for its OpenAPI document (the JSON is built in ``node.payroll.apis``;
schemathesis checks every answer against these, ``tests/test_api_fuzz.py``)."""

from __future__ import annotations

from rest_framework import serializers

from node.core.fields import MoneyField


class Employer(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField()
    name = serializers.CharField()
    mfi = serializers.CharField()
    created_at = serializers.DateTimeField()


class Enrolment(serializers.Serializer):
    id = serializers.IntegerField()
    employer = serializers.IntegerField()
    employer_code = serializers.CharField()
    borrower = serializers.IntegerField()
    borrower_name = serializers.CharField()
    employee_number = serializers.CharField()
    created_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField(allow_null=True)


class ImportSummary(serializers.Serializer):
    rows = serializers.IntegerField()
    posted = serializers.IntegerField()
    reversed = serializers.IntegerField()
    skipped = serializers.IntegerField()
    rejected = serializers.IntegerField()
    pending = serializers.IntegerField(help_text="rows still to post (a file posted in the background)")
    total_posted = MoneyField()
    rejected_by_code = serializers.DictField(child=serializers.IntegerField())


class ImportRow(serializers.Serializer):
    row = serializers.IntegerField(help_text="the row's line in the file")
    employee_number = serializers.CharField(allow_blank=True)
    loan_reference = serializers.CharField(allow_blank=True)
    amount_deducted = serializers.CharField(allow_blank=True, help_text="the amount, or the file's text if it was "
                                                                         "not one")
    status = serializers.CharField(allow_blank=True, help_text="the employer's: deducted, partial, not_deducted")
    outcome = serializers.CharField(help_text="posted, skipped, rejected, reversed or pending")
    error_code = serializers.CharField(allow_null=True)
    message = serializers.CharField(allow_blank=True)
    receipt_number = serializers.CharField(allow_null=True)
    repayment = serializers.IntegerField(allow_null=True)


class ImportHeader(serializers.Serializer):
    id = serializers.IntegerField()
    employer = serializers.IntegerField()
    employer_code = serializers.CharField()
    month = serializers.CharField(help_text="YYYY-MM")
    payment_date = serializers.DateField()
    file_name = serializers.CharField(allow_blank=True)
    format = serializers.CharField()
    sha256 = serializers.CharField()
    status = serializers.CharField()
    imported_by = serializers.CharField()
    created_at = serializers.DateTimeField()
    completed_at = serializers.DateTimeField(allow_null=True)
    summary = ImportSummary()


class ImportReport(ImportHeader):
    rows = ImportRow(many=True)


class ImportPosted(ImportReport):
    resumed = serializers.BooleanField(help_text="true: an interrupted import of the same file was finished")


class ReconciliationLine(serializers.Serializer):
    loan = serializers.IntegerField(allow_null=True)
    loan_reference = serializers.CharField()
    employee_number = serializers.CharField()
    requested = MoneyField(help_text="what the deduction file asked for (0.00 if the loan was not in it)")
    deducted = MoneyField(help_text="posted payroll repayments of the month still in effect")
    difference = MoneyField(help_text="requested − deducted (negative: more was deducted than asked)")
    flag = serializers.ChoiceField(choices=["matched", "short", "over", "not_deducted", "reversed", "missing",
                                            "rejected", "not_requested"])
    employer_status = serializers.CharField(allow_blank=True)
    reason = serializers.CharField(allow_blank=True)
    error_code = serializers.CharField(allow_blank=True)


class ReconciliationSummary(serializers.Serializer):
    loans = serializers.IntegerField()
    total_requested = MoneyField()
    total_deducted = MoneyField()
    difference = MoneyField()
    by_flag = serializers.DictField(child=serializers.IntegerField())


class Reconciliation(serializers.Serializer):
    employer = serializers.IntegerField()
    employer_code = serializers.CharField()
    month = serializers.CharField()
    export = serializers.IntegerField(help_text="the deduction file compared against: the month's latest")
    exported_at = serializers.DateTimeField()
    summary = ReconciliationSummary()
    lines = ReconciliationLine(many=True, help_text="differences first (every flag but matched), then the matches")
