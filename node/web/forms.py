"""Web forms: they render the fields (labels, input types, help) and check only what a browser form must (required,
lengths, a date is a date). The domain rules are checked by the same serializers and services the API uses, and
their errors are put back on these fields (views.common.add_errors)."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from node.borrowers.identity import (
    LESOTHO_DISTRICTS,
    IdentityFormatError,
    normalise_phone,
)
from node.loans.models import DisbursementChannel, RejectionReason
from node.repayments.models import RECEIVED_CHANNELS, RepaymentChannel
from node.users.models import User
from node.web.templatetags.web import CHANNEL_LABELS, REASON_LABELS


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, **kwargs):
        super().__init__(format="%Y-%m-%d", **kwargs)


def _decimal_text(typed: str) -> str:
    """What a person typed ("1234,50" or "1234.50"; Django has stripped it) as the API's decimal string."""
    return typed.replace(",", ".")


def _money_input() -> forms.TextInput:
    return forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off", "pattern": r"[0-9]+([.,][0-9]{1,2})?"})


class LoginForm(AuthenticationForm):
    """Username and password; borrowers may type their phone number in any usual form (58 012 345, +266…)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["username"].label = _("Phone number or username")
        self.fields["username"].widget.attrs.update({"autocomplete": "username", "autocapitalize": "none"})
        self.fields["password"].label = _("Password")

    def clean(self):
        raw = self.cleaned_data.get("username") or ""
        try:
            phone = normalise_phone(raw)
        except IdentityFormatError:
            phone = None
        if phone and User.objects.filter(username=phone).exists():
            self.cleaned_data["username"] = phone
        try:
            return super().clean()
        except forms.ValidationError:
            throttled = getattr(self.request, "login_throttled", None)  # set by node.users.authentication
            if throttled is None:
                raise
            minutes = max(1, -(-(throttled.retry_after or 60) // 60))
            raise forms.ValidationError(
                _("Too many failed sign-ins for this account. Try again in %(minutes)s minute(s)."),
                code="throttled", params={"minutes": minutes}) from None


def _district_field():
    if settings.DISTRICT.country == "LS":
        return forms.ChoiceField(label=_("District you live in"),
                                 choices=[("", "—")] + [(d, d) for d in LESOTHO_DISTRICTS])
    return forms.CharField(label=_("District you live in"), max_length=40)


class RegisterForm(forms.Form):
    first_name = forms.CharField(label=_("First name"), max_length=100,
                                 widget=forms.TextInput(attrs={"autocomplete": "given-name"}))
    last_name = forms.CharField(label=_("Surname"), max_length=100,
                                widget=forms.TextInput(attrs={"autocomplete": "family-name"}))
    national_id = forms.CharField(label=_("National ID number"), max_length=32,
                                  widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}))
    date_of_birth = forms.DateField(label=_("Date of birth"), widget=DateInput(attrs={"autocomplete": "bday"}))
    phone = forms.CharField(label=_("Mobile phone number"), max_length=32,
                            help_text=_("We send a code to this number. It is also your log-in."),
                            widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "tel"}))
    address = forms.CharField(label=_("Home address"), max_length=300,
                              widget=forms.TextInput(attrs={"autocomplete": "street-address"}))
    residence_district = _district_field()
    employer = forms.CharField(label=_("Employer"), max_length=200, required=False)
    employee_number = forms.CharField(label=_("Employee number"), max_length=40, required=False)
    monthly_income = forms.CharField(label=_("Monthly income (maloti)"), max_length=20, widget=_money_input())
    next_of_kin_name = forms.CharField(label=_("Next of kin: name"), max_length=200)
    next_of_kin_phone = forms.CharField(label=_("Next of kin: phone number"), max_length=32,
                                        widget=forms.TextInput(attrs={"type": "tel"}))
    next_of_kin_relationship = forms.CharField(label=_("Next of kin: relationship"), max_length=40)
    password = forms.CharField(label=_("Choose a password"), min_length=10, max_length=128,
                               help_text=_("At least 10 characters."),
                               widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))
    password2 = forms.CharField(label=_("Password again"), max_length=128,
                                widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))

    def clean(self):
        data = super().clean()
        if data.get("password") and data.get("password2") and data["password"] != data["password2"]:
            self.add_error("password2", _("The two passwords are not the same."))
        return data

    def api_payload(self) -> dict:
        """The registration as the API's self-registration serializer takes it."""
        d = self.cleaned_data
        return {
            "national_id": d["national_id"], "first_name": d["first_name"], "last_name": d["last_name"],
            "date_of_birth": d["date_of_birth"], "phone": d["phone"], "address": d["address"],
            "residence_district": d["residence_district"], "employer": d["employer"],
            "employee_number": d["employee_number"], "monthly_income": _decimal_text(d["monthly_income"]),
            "next_of_kin": {"name": d["next_of_kin_name"], "phone": d["next_of_kin_phone"],
                            "relationship": d["next_of_kin_relationship"]},
            "password": d["password"],
        }


class OtpForm(forms.Form):
    code = forms.CharField(label=_("The 6-digit code from the SMS"), min_length=6, max_length=6,
                           widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "one-time-code",
                                                         "pattern": "[0-9]{6}"}))


class ConsentForm(forms.Form):
    agree = forms.BooleanField(label=_("I agree that my credit history is shared with Letsema lenders as described above."))
    version = forms.IntegerField(widget=forms.HiddenInput)
    language = forms.ChoiceField(choices=[("en", "en"), ("st", "st")], widget=forms.HiddenInput)


def _product_choices(products) -> list[tuple[str, str]]:
    return [("", "—")] + [(str(p.pk), f"{p.mfi.name} — {p.name}") for p in products]


class CalculatorForm(forms.Form):
    product = forms.ChoiceField(label=_("Loan product"))
    principal = forms.CharField(label=_("Amount to borrow (maloti)"), max_length=20, widget=_money_input())
    number_of_repayments = forms.IntegerField(label=_("Number of repayments"), min_value=1, max_value=600)

    def __init__(self, *args, products=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["product"].choices = _product_choices(products)


class ApplyForm(CalculatorForm):
    expected_disbursement_date = forms.DateField(label=_("When do you need the money?"), widget=DateInput())
    purpose = forms.CharField(label=_("What is the loan for?"), max_length=300, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["expected_disbursement_date"].initial = timezone.localdate() + timedelta(days=7)

    def api_payload(self) -> dict:
        d = self.cleaned_data
        return {"product": int(d["product"]), "principal": _decimal_text(d["principal"]),
                "number_of_repayments": d["number_of_repayments"],
                "expected_disbursement_date": d["expected_disbursement_date"], "purpose": d["purpose"]}


class RejectForm(forms.Form):
    reason = forms.ChoiceField(label=_("Reason"),
                               choices=[("", "—")] + [(r, REASON_LABELS.get(r, r)) for r in RejectionReason.values])
    note = forms.CharField(label=_("Note to the file (optional)"), max_length=500, required=False,
                           widget=forms.Textarea(attrs={"rows": 2}))


class InitiateForm(forms.Form):
    channel = forms.ChoiceField(label=_("Pay out by"),
                                choices=[(c, CHANNEL_LABELS.get(c, c)) for c in DisbursementChannel.values])
    reference = forms.CharField(label=_("Payment reference (optional)"), max_length=100, required=False)


class ConfirmDisbursementForm(forms.Form):
    password = forms.CharField(label=_("Your password (step-up confirmation)"), max_length=128,
                               widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))


class MobileMoneyForm(forms.Form):
    """A borrower pays from a phone: the provider prompts it, the borrower approves with their PIN."""

    amount = forms.CharField(label=_("Amount to pay (maloti)"), max_length=20, widget=_money_input())
    phone = forms.CharField(label=_("Phone to pay from"), max_length=20, required=False,
                            help_text=_("Leave empty for your registered phone."),
                            widget=forms.TextInput(attrs={"inputmode": "tel", "autocomplete": "tel"}))

    def api_payload(self) -> dict:
        return {"amount": _decimal_text(self.cleaned_data["amount"]), "phone": self.cleaned_data["phone"]}


class RepaymentForm(forms.Form):
    amount = forms.CharField(label=_("Amount received (maloti)"), max_length=20, widget=_money_input())
    channel = forms.ChoiceField(label=_("Received by"),
                                choices=[(c, CHANNEL_LABELS.get(c, c)) for c in RECEIVED_CHANNELS])
    payment_date = forms.DateField(label=_("Payment date"), required=False, widget=DateInput(),
                                   help_text=_("Leave empty for today."))
    reference = forms.CharField(label=_("Receipt or transaction reference (optional)"), max_length=100, required=False)
    form_key = forms.CharField(widget=forms.HiddenInput)

    def api_payload(self) -> dict:
        d = self.cleaned_data
        payload = {"amount": _decimal_text(d["amount"]), "channel": d["channel"], "reference": d["reference"]}
        if d.get("payment_date"):
            payload["payment_date"] = d["payment_date"]
        return payload


class RefundForm(forms.Form):
    """Pay back (part of) what the borrower paid in advance on this loan (MFI admins)."""

    amount = forms.CharField(label=_("Amount to pay back (maloti)"), max_length=20, widget=_money_input())
    channel = forms.ChoiceField(label=_("Paid back by"), choices=[
        (c, CHANNEL_LABELS.get(c, c)) for c in (RepaymentChannel.CASH, RepaymentChannel.BANK,
                                                RepaymentChannel.MOBILE_MONEY)])
    reference = forms.CharField(label=_("Receipt or transaction reference (optional)"), max_length=100, required=False)
    form_key = forms.CharField(widget=forms.HiddenInput)

    def api_payload(self) -> dict:
        d = self.cleaned_data
        return {"amount": _decimal_text(d["amount"]), "channel": d["channel"], "reference": d["reference"]}


class ChargeForm(forms.Form):
    """Add a fee or penalty to this loan (loan officers and MFI admins)."""

    kind = forms.ChoiceField(label=_("Kind"), choices=[("fees", _("Fee")), ("penalties", _("Penalty"))])
    name = forms.CharField(label=_("What it is for"), max_length=100)
    amount = forms.CharField(label=_("Amount (maloti)"), max_length=20, widget=_money_input())
    due_date = forms.DateField(label=_("Due on (leave empty for today)"), required=False,
                               widget=forms.DateInput(attrs={"type": "date"}))
    form_key = forms.CharField(widget=forms.HiddenInput)

    def api_payload(self) -> dict:
        d = self.cleaned_data
        payload = {"kind": d["kind"], "name": d["name"], "amount": _decimal_text(d["amount"])}
        if d["due_date"]:
            payload["due_date"] = d["due_date"].isoformat()
        return payload


class WaiverForm(forms.Form):
    """Forgive interest, fees or penalties still unpaid on this loan (MFI admins)."""

    component = forms.ChoiceField(label=_("Waive"), choices=[
        ("penalties", _("Penalties")), ("fees", _("Fees")), ("interest", _("Interest"))])
    amount = forms.CharField(label=_("Amount (maloti; leave empty for all that is unpaid)"), max_length=20,
                             required=False, widget=_money_input())
    installment = forms.IntegerField(label=_("Installment number (leave empty for the oldest first)"), min_value=1,
                                     max_value=600, required=False)
    reason = forms.CharField(label=_("Reason"), min_length=5, max_length=200)
    form_key = forms.CharField(widget=forms.HiddenInput)

    def api_payload(self) -> dict:
        d = self.cleaned_data
        payload = {"component": d["component"], "reason": d["reason"]}
        if d["amount"]:
            payload["amount"] = _decimal_text(d["amount"])
        if d["installment"]:
            payload["installment"] = d["installment"]
        return payload


class TransferForm(forms.Form):
    """Apply what the borrower paid in advance on this loan to another of their active loans (MFI admins)."""

    to_loan = forms.TypedChoiceField(label=_("Apply to loan"), coerce=int, choices=())
    amount = forms.CharField(label=_("Amount (maloti)"), max_length=20, widget=_money_input())
    form_key = forms.CharField(widget=forms.HiddenInput)

    def __init__(self, *args, loans=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["to_loan"].choices = [(x.pk, x.reference) for x in loans]

    def api_payload(self) -> dict:
        return {"to_loan": self.cleaned_data["to_loan"], "amount": _decimal_text(self.cleaned_data["amount"])}


class ReversalForm(forms.Form):
    """An MFI admin reverses a repayment of the loan (a bounced cheque, a mobile-money chargeback, a keying error)."""

    repayment = forms.TypedChoiceField(label=_("Repayment"), coerce=int, choices=())
    reason = forms.CharField(label=_("Reason"), min_length=5, max_length=200)
    reprocess_later = forms.BooleanField(
        label=_("Post the later repayments again"), required=False,
        help_text=_("Needed when the borrower has paid since: those payments are reversed and posted again in "
                    "their order, with new receipts, as if this one had never been received."))
    form_key = forms.CharField(widget=forms.HiddenInput)

    def __init__(self, *args, repayments=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["repayment"].choices = [
            (r.pk, f"{r.receipt_number} · {r.payment_date:%Y-%m-%d} · {r.amount}") for r in reversed(list(repayments))
            if r.reversed_at is None]


class EntryReversalForm(forms.Form):
    """An MFI admin undoes a refund (the money never reached the borrower), a recovery or a waiver (made in
    error)."""

    entry = forms.ChoiceField(label=_("Refund, recovery or waiver"), choices=())
    reason = forms.CharField(label=_("Reason"), min_length=5, max_length=200)
    form_key = forms.CharField(widget=forms.HiddenInput)

    def __init__(self, *args, refunds=(), recoveries=(), waivers=(), **kwargs):
        super().__init__(*args, **kwargs)
        choices = [(f"refund:{r.pk}", _("Refund") + f" · {r.refund_date:%Y-%m-%d} · {r.amount}")
                   for r in reversed(list(refunds)) if r.reversed_at is None]
        choices += [(f"recovery:{r.pk}",
                     _("Recovery") + f" {r.receipt_number} · {r.payment_date:%Y-%m-%d} · {r.amount}")
                    for r in reversed(list(recoveries)) if r.reversed_at is None]
        components = dict(WaiverForm.base_fields["component"].choices)
        choices += [(f"waiver:{w.pk}", _("Waiver") + f" · {w.waived_on:%Y-%m-%d} · {components[w.component]} · "
                     + _("installment %(number)s") % {"number": w.installment.number} + f" · {w.amount}")
                    for w in reversed(list(waivers)) if w.undone_at is None]
        self.fields["entry"].choices = choices

    def kind_and_id(self) -> tuple[str, int]:
        kind, _sep, pk = self.cleaned_data["entry"].partition(":")
        return kind, int(pk)


class SearchForm(forms.Form):
    q = forms.CharField(label=_("Name, phone or national ID"), max_length=100, required=False,
                        widget=forms.TextInput(attrs={"type": "search", "autocomplete": "off"}))


def _staff_role_choices():
    from node.users.models import MFI_STAFF_ROLES, Role

    labels = {Role.LOAN_OFFICER: _("Loan officer"), Role.MFI_ADMIN: _("MFI administrator"), Role.ANALYST: _("Analyst")}
    return [(r, labels[r]) for r in (Role.LOAN_OFFICER, Role.MFI_ADMIN, Role.ANALYST) if r in MFI_STAFF_ROLES]


class StaffCreateForm(forms.Form):
    username = forms.CharField(label=_("Username"), max_length=150,
                               widget=forms.TextInput(attrs={"autocapitalize": "none", "autocomplete": "off"}))
    first_name = forms.CharField(label=_("First name"), max_length=150)
    last_name = forms.CharField(label=_("Surname"), max_length=150)
    email = forms.EmailField(label=_("E-mail (optional)"), required=False)
    role = forms.ChoiceField(label=_("Role"), choices=_staff_role_choices)
    password = forms.CharField(label=_("First password"), min_length=10, max_length=128,
                               help_text=_("At least 10 characters. Give it to the colleague in person."),
                               widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))


class ProductCreateForm(forms.Form):
    """A new loan product: the terms most MFIs set. The API (``POST /api/v1/products/``) takes every Fineract-style
    setting; this form leaves the rest at their defaults (LSL, cumulative schedule, actual days)."""

    code = forms.SlugField(label=_("Code"), max_length=40, help_text=_("Short, lower case, e.g. salary-12"),
                           widget=forms.TextInput(attrs={"autocapitalize": "none", "autocomplete": "off"}))
    name = forms.CharField(label=_("Name"), max_length=200)
    annual_interest_rate = forms.CharField(label=_("Interest a year (%)"), max_length=12, widget=_money_input())
    interest_method = forms.ChoiceField(label=_("Interest method"), choices=[
        ("DECLINING_BALANCE", _("Declining balance")), ("FLAT", _("Flat"))])
    amortization = forms.ChoiceField(label=_("Installments"), choices=[
        ("EQUAL_INSTALLMENTS", _("Equal installments")), ("EQUAL_PRINCIPAL", _("Equal principal"))])
    repayment_frequency = forms.ChoiceField(label=_("Repaid every"), choices=[
        ("MONTHS", _("month")), ("WEEKS", _("week")), ("DAYS", _("day"))])
    min_principal = forms.CharField(label=_("Smallest amount (maloti)"), max_length=20, widget=_money_input())
    max_principal = forms.CharField(label=_("Largest amount (maloti)"), max_length=20, widget=_money_input())
    min_repayments = forms.IntegerField(label=_("Fewest repayments"), min_value=1, max_value=600)
    max_repayments = forms.IntegerField(label=_("Most repayments"), min_value=1, max_value=600)
    grace_on_principal_periods = forms.IntegerField(label=_("Grace on principal (installments)"), min_value=0,
                                                    max_value=120, required=False, initial=0)
    fee_percent = forms.CharField(label=_("Processing fee (percent of the amount, optional)"), max_length=12,
                                  required=False, widget=_money_input(),
                                  help_text=_("Charged when the loan is paid out."))
    overdue_penalty_amount = forms.CharField(label=_("Late penalty per overdue installment (maloti, optional)"),
                                             max_length=20, required=False, widget=_money_input())
    overdue_penalty_grace_days = forms.IntegerField(label=_("Days late before the penalty"), min_value=0,
                                                    max_value=90, required=False, initial=0)

    def payload(self) -> dict:
        """The API's product fields for what was typed (money as strings, commas as decimal points)."""
        d = self.cleaned_data
        out = {k: d[k] for k in ("code", "name", "interest_method", "amortization", "repayment_frequency",
                                 "min_repayments", "max_repayments")}
        out.update({k: _decimal_text(d[k]) for k in ("annual_interest_rate", "min_principal", "max_principal")})
        out.update(grace_on_principal_periods=d.get("grace_on_principal_periods") or 0, fees=[])
        if d.get("fee_percent"):
            out["fees"] = [{"name": "Processing fee", "amount": _decimal_text(d["fee_percent"]),
                            "calculation": "PERCENT_OF_PRINCIPAL", "charge_time": "DISBURSEMENT"}]
        if d.get("overdue_penalty_amount"):
            out["overdue_penalty"] = {"calculation": "FLAT", "amount": _decimal_text(d["overdue_penalty_amount"]),
                                      "grace_days": d.get("overdue_penalty_grace_days") or 0}
        return out


class MfiOnboardForm(forms.Form):
    """A new MFI on this node with its first MFI admin (``mfi_onboard``, as ``POST /api/v1/mfis/``). The web asks
    for the admin's first password (given to them in person) rather than showing a generated one."""

    code = forms.CharField(label=_("Code"), max_length=40, help_text=_("Lower-case letters, digits and '-', e.g. "
                                                                       "thaba-credit"),
                           widget=forms.TextInput(attrs={"autocapitalize": "none", "autocomplete": "off"}))
    name = forms.CharField(label=_("Name"), max_length=200)
    registration_number = forms.CharField(label=_("Registration number (central bank)"), max_length=60)
    interest_rate_cap = forms.CharField(label=_("Highest interest a year (%)"), max_length=12, widget=_money_input())
    admin_username = forms.CharField(label=_("The MFI admin's username"), max_length=150,
                                     widget=forms.TextInput(attrs={"autocapitalize": "none", "autocomplete": "off"}))
    admin_first_name = forms.CharField(label=_("First name"), max_length=150)
    admin_last_name = forms.CharField(label=_("Surname"), max_length=150)
    admin_email = forms.EmailField(label=_("E-mail (optional)"), required=False)
    admin_password = forms.CharField(label=_("First password"), min_length=10, max_length=128,
                                     help_text=_("At least 10 characters. Give it to the MFI admin in person."),
                                     widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))

    def payload(self) -> dict:
        d = dict(self.cleaned_data)
        d["interest_rate_cap"] = _decimal_text(d["interest_rate_cap"])
        return d


class PayrollDownloadForm(forms.Form):
    """The month's deduction file for an employer (loan officers, MFI admins): a GET form."""

    month = forms.RegexField(label=_("Payroll month (YYYY-MM)"), regex=r"^\d{4}-\d{2}$", max_length=7,
                             widget=forms.TextInput(attrs={"inputmode": "numeric", "placeholder": "2026-07"}))
    format = forms.ChoiceField(label=_("File"), choices=[("csv", "CSV"), ("xlsx", "Excel (XLSX)")])


class PayrollReconciliationForm(forms.Form):
    """The month to reconcile: the deduction file asked for against what the result files deducted (a GET form)."""

    month = forms.RegexField(label=_("Payroll month (YYYY-MM)"), regex=r"^\d{4}-\d{2}$", max_length=7,
                             widget=forms.TextInput(attrs={"inputmode": "numeric", "placeholder": "2026-07"}))
    format = forms.ChoiceField(label=_("Show"), required=False, initial="page",
                               choices=[("page", _("On this page")), ("csv", "CSV"), ("xlsx", "Excel (XLSX)")])


class PayrollImportForm(forms.Form):
    """The employer's result file for a month (MFI admins): validated whole, then the valid rows are posted."""

    month = forms.RegexField(label=_("Payroll month (YYYY-MM)"), regex=r"^\d{4}-\d{2}$", max_length=7,
                             widget=forms.TextInput(attrs={"inputmode": "numeric", "placeholder": "2026-07"}))
    payment_date = forms.DateField(label=_("Date the deductions were paid"), required=False, widget=DateInput(),
                                   help_text=_("Leave empty for the month's last day (or today, during the month)."))
    file = forms.FileField(label=_("Employer's result file (CSV or XLSX)"))


class EmployerForm(forms.Form):
    """A payroll employer of the MFI (MFI admins)."""

    name = forms.CharField(label=_("Employer's name"), max_length=200)
    code = forms.CharField(label=_("Short code (lower-case letters, digits and -)"), max_length=40,
                           widget=forms.TextInput(attrs={"placeholder": "gov-ls", "autocomplete": "off"}))


class EnrolmentForm(forms.Form):
    """Enrol a client of the MFI at the employer: found by national ID or phone number."""

    who = forms.CharField(label=_("Client's national ID or phone number"), max_length=40)
    employee_number = forms.CharField(label=_("Employee number at the employer"), max_length=40)


DISPUTE_REASON_LABELS = {
    "not_my_loan": _("This loan is not mine"),
    "wrong_amount": _("The amount or balance is wrong"),
    "wrong_status": _("The status is wrong (for example shown active, but paid off)"),
    "wrong_days_past_due": _("The days past due are wrong"),
    "other": _("Something else"),
}


class DisputeForm(forms.Form):
    """A borrower disputes one loan of their network credit history (the lender that reported it must answer)."""

    loan_key = forms.ChoiceField(label=_("Loan"))
    reason = forms.ChoiceField(label=_("What is wrong"), choices=list(DISPUTE_REASON_LABELS.items()))
    details = forms.CharField(label=_("Tell the lender more"), max_length=1000, required=False,
                              widget=forms.Textarea(attrs={"rows": 3}),
                              help_text=_("Required when you choose 'Something else'."))

    def __init__(self, *args, loans: list[tuple[str, str]], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["loan_key"].choices = loans


class DisputeAnswerForm(forms.Form):
    outcome = forms.ChoiceField(label=_("Answer"), choices=[
        ("corrected", _("Corrected: the record was wrong and we fixed it")),
        ("rejected", _("Confirmed: the record is right")),
    ])
    note = forms.CharField(label=_("Note to the borrower"), max_length=1000, widget=forms.Textarea(attrs={"rows": 2}))


class MfiSettingsForm(forms.Form):
    """The MFI's own settings an MFI admin changes: the mobile-money business number and payroll messages."""

    paybill_number = forms.CharField(label=_("Mobile-money business number (Pay Bill)"), max_length=12, required=False,
                                     help_text=_("4 to 12 digits; empty if the MFI takes no mobile-money payments."),
                                     widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}))
    payroll_repayments = forms.BooleanField(
        label=_("Send 'repayment received' for payroll deductions"), required=False,
        help_text=_("Repayments posted any other way always send it."))
