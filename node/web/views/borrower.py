"""Borrower pages: register, verify the phone, give consent, apply, and follow each loan (status, schedule,
balance, repayments). Each step calls the service the API calls; validation is the API serializers'."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.shortcuts import redirect, render
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from node.borrowers import selectors as borrower_selectors
from node.borrowers import services as borrower_services
from node.borrowers.apis import SelfRegistrationSerializer
from node.borrowers.models import Channel
from node.core.errors import ApplicationError, NotFound
from node.credit.disputes import dispute_file
from node.credit.services import credit_history_own
from node.loans import selectors as loan_selectors
from node.loans import services as loan_services
from node.loans.apis import LoanApplySerializer
from node.repayments import mobile_money
from node.repayments.apis import MobileMoneyRequestSerializer
from node.notifications import selectors as notification_selectors
from node.notifications import texts as notification_texts
from node.users.models import Role
from node.web.forms import ApplyForm, ConsentForm, DisputeForm, MobileMoneyForm, OtpForm, RegisterForm
from node.web.views.common import is_htmx, message_for, service_error_on, validated, web_view
from node.web.views.loan_pages import loan_context

BORROWER = (Role.BORROWER,)


def _me(request):
    b = borrower_selectors.borrower_list_for(actor=request.user).first()
    if b is None:
        raise NotFound("No borrower profile for this account.")
    return b


def register(request):
    if request.user.is_authenticated:
        return redirect("web:home")
    form = RegisterForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        s = validated(form, SelfRegistrationSerializer, form.api_payload())
        if s is not None:
            try:
                b = borrower_services.borrower_register(actor=None, data=s.to_data(), channel=Channel.SELF_SERVICE,
                                                        password=s.validated_data["password"])
            except ApplicationError as exc:
                service_error_on(form, exc)
            else:
                login(request, b.user, backend="node.users.authentication.ThrottledModelBackend")
                _send_code(request, b)
                return redirect("web:me-phone")
    return render(request, "web/borrower/register.html", {"form": form})


def _send_code(request, b) -> None:
    try:
        borrower_services.otp_send(actor=request.user, borrower=b)
    except ApplicationError as exc:
        messages.error(request, message_for(exc))
    else:
        messages.success(request, _("We sent a 6-digit code by SMS to %(phone)s.") % {"phone": _masked(b.phone)})


def _masked(phone: str) -> str:
    return phone[:4] + "*" * max(0, len(phone) - 7) + phone[-3:]


@web_view(*BORROWER)
def dashboard(request):
    b = _me(request)
    consent = borrower_selectors.consent_active(borrower=b)
    loans = loan_selectors.loan_list_for(actor=request.user).order_by("-created_at")
    return render(request, "web/borrower/dashboard.html", {"borrower": b, "consent": consent, "loans": loans})


@web_view(*BORROWER)
def phone(request):
    b = _me(request)
    if b.phone_verified_at is not None:
        return redirect("web:me")
    if request.method == "POST" and request.POST.get("action") == "send":
        _send_code(request, b)
        return redirect("web:me-phone")
    form = OtpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            borrower_services.otp_verify(actor=request.user, borrower=b, code=form.cleaned_data["code"])
        except ApplicationError as exc:
            service_error_on(form, exc)
        else:
            messages.success(request, _("Your phone number is verified."))
            return redirect("web:me-consent")
    return render(request, "web/borrower/phone.html", {"form": form, "borrower": b, "phone": _masked(b.phone)})


@web_view(*BORROWER)
def consent(request):
    b = _me(request)
    language = "st" if get_language() == "st" else "en"
    text = borrower_selectors.consent_text_current(language=language) or \
        borrower_selectors.consent_text_current(language="en")
    active = borrower_selectors.consent_active(borrower=b)
    form = ConsentForm(request.POST or None,
                       initial={"version": text.version if text else 0, "language": text.language if text else "en"})
    if request.method == "POST" and form.is_valid():
        try:
            borrower_services.consent_give(actor=request.user, borrower=b, version=form.cleaned_data["version"],
                                           language=form.cleaned_data["language"], channel=Channel.SELF_SERVICE)
        except ApplicationError as exc:
            service_error_on(form, exc)
        else:
            messages.success(request, _("Thank you: your consent is recorded."))
            return redirect("web:me")
    return render(request, "web/borrower/consent.html", {"form": form, "text": text, "active": active})


@web_view(*BORROWER)
def apply(request):
    b = _me(request)
    products = list(loan_selectors.product_list())
    form = ApplyForm(request.POST or None, products=products, initial={"product": request.GET.get("product", ""),
                                                                         "principal": request.GET.get("principal", ""),
                                                                         "number_of_repayments": request.GET.get("number_of_repayments", "")})
    if request.method == "POST" and form.is_valid():
        s = validated(form, LoanApplySerializer, form.api_payload())
        if s is not None:
            v = s.validated_data
            try:
                product = loan_selectors.product_get(v["product"])
                loan = loan_services.loan_apply(
                    actor=request.user, borrower=b, product=product, principal=v["principal"],
                    number_of_repayments=v["number_of_repayments"],
                    expected_disbursement_date=v["expected_disbursement_date"], purpose=v["purpose"])
                # on the web, applying sends the application: a borrower has nothing to do between the two
                loan_services.loan_submit(actor=request.user, loan=loan)
            except ApplicationError as exc:
                service_error_on(form, exc)
            else:
                messages.success(request, _("Your application %(ref)s is sent to %(mfi)s.")
                                 % {"ref": loan.reference, "mfi": loan.mfi.name})
                return redirect("web:me-loan", loan_id=loan.pk)
    return render(request, "web/borrower/apply.html", {"form": form, "products": products, "borrower": b,
                                                       "consent": borrower_selectors.consent_active(borrower=b)})


@web_view(*BORROWER)
def notifications(request):
    """The messages Letsema sent (or is sending) to this borrower, worded in the page's language."""
    b = _me(request)
    language = "st" if get_language() == "st" else "en"
    rows = [{"n": n, "text": notification_texts.render(n.kind, language, "sms", n.context, first_name=b.first_name)[1]}
            for n in notification_selectors.notification_list(actor=request.user, borrower=b)[:50]]
    return render(request, "web/borrower/notifications.html", {"rows": rows})


@web_view(*BORROWER)
def credit_history(request):
    """My network credit history (every loan at every MFI and district, who looked) and disputes of its records."""
    b = _me(request)
    history = error = None
    try:
        history = credit_history_own(borrower=b)
    except ApplicationError as exc:
        error = message_for(exc)
    loans = [(x.loan_key, f"{x.mfi} · {x.loan_ref} ({x.district})") for x in (history.loans if history else ())
             if not x.under_dispute]
    form = DisputeForm(request.POST or None, loans=loans)
    if request.method == "POST" and history is not None and form.is_valid():
        try:
            filed = dispute_file(borrower=b, **form.cleaned_data)
        except ApplicationError as exc:
            service_error_on(form, exc)
        else:
            messages.success(request, _("Your dispute was sent to the lender, who must answer by %(date)s.")
                             % {"date": filed.respond_by.isoformat()})
            return redirect("web:me-credit")
    return render(request, "web/borrower/credit.html", {"history": history, "history_error": error, "form": form},
                  status=400 if request.method == "POST" else 200)


@web_view(*BORROWER)
def loan_detail(request, loan_id):
    loan = loan_selectors.access_loan_by_id(request.user, loan_id)
    if is_htmx(request):  # the mobile-money panel, polled while a payment waits for the phone
        return render(request, "web/partials/mobile_money.html", loan_context(loan))
    return render(request, "web/borrower/loan.html", {**loan_context(loan), "pay_form": _pay_form(loan)})


def _pay_form(loan, data=None):
    """The mobile-money form of an active loan: what is overdue, else the next installment, to start from."""
    if loan.status != "active":
        return None
    if data is not None:
        return MobileMoneyForm(data)
    ctx = loan_context(loan)["balance"]
    due = ctx["overdue"] if ctx and ctx["overdue"] > 0 else (ctx["next_due"]["outstanding"] if ctx and ctx["next_due"]
                                                             else None)
    return MobileMoneyForm(initial={"amount": f"{due:.2f}" if due else ""})


@web_view(*BORROWER)
def loan_pay(request, loan_id):
    """Pay by mobile money: the provider prompts the phone; the page then follows the payment until it is paid."""
    loan = loan_selectors.access_loan_by_id(request.user, loan_id)
    if request.method != "POST":
        return redirect("web:me-loan", loan_id=loan.pk)
    form = _pay_form(loan, request.POST)
    if form is None:
        messages.error(request, _("Only an active loan can be repaid."))
        return redirect("web:me-loan", loan_id=loan.pk)
    if form.is_valid():
        s = validated(form, MobileMoneyRequestSerializer, form.api_payload())
        if s is not None:
            try:
                p = mobile_money.mobile_money_request(actor=request.user, loan=loan, amount=s.validated_data["amount"],
                                                      phone=s.validated_data["phone"] or None)
            except ApplicationError as exc:
                service_error_on(form, exc)
            else:
                p.refresh_from_db()
                if p.status == "failed":
                    messages.error(request, _("The payment could not be started; nothing was taken. Try again "
                                              "later or pay at the branch."))
                else:
                    messages.success(request, _("Check your phone %(phone)s: approve the payment of %(amount)s with "
                                                "your PIN.") % {"phone": p.phone, "amount": f"{p.amount:.2f}"})
                return redirect("web:me-loan", loan_id=loan.pk)
    return render(request, "web/borrower/loan.html", {**loan_context(loan), "pay_form": form}, status=400)


@web_view(*BORROWER)
def loan_pdf(request, loan_id, kind):
    """The borrower's loan statement or repayment schedule as a PDF."""
    from node.web.views.loan_pages import loan_document

    return loan_document(loan_selectors.access_loan_by_id(request.user, loan_id), kind)


@web_view(*BORROWER)
def loan_withdraw(request, loan_id):
    if request.method != "POST":
        return redirect("web:me-loan", loan_id=loan_id)
    loan = loan_selectors.access_loan_by_id(request.user, loan_id)
    try:
        loan_services.loan_withdraw(actor=request.user, loan=loan)
    except ApplicationError as exc:
        messages.error(request, message_for(exc))
    else:
        messages.success(request, _("The application is withdrawn."))
    return redirect("web:me-loan", loan_id=loan.pk)
