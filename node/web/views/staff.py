"""Loan officer and MFI admin pages: the application queue, the application page with the network credit report
and score, approve / reject, initiate and (checker) confirm a disbursement with step-up, record a repayment, and
borrower search. Access goes through the same selectors as the API (another MFI's object is "not found")."""

from __future__ import annotations

from decimal import Decimal

from django.contrib import messages
from django.db.models import Q
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from node.borrowers import selectors as borrower_selectors
from node.core.errors import ApplicationError, NotFound
from node.credit.apis import assessment_json
from node.credit.disputes import dispute_resolve, disputes_for_staff
from node.loans import selectors as loan_selectors
from node.loans import services as loan_services
from node.loans.apis import InitiateSerializer, RejectSerializer
from node.loans.models import LoanStatus
from node.repayments import selectors as repayment_selectors
from node.repayments import services as repayment_services
from node.repayments.apis import (
    ChargeWaiverSerializer,
    LoanChargeSerializer,
    OverpaymentRefundSerializer,
    OverpaymentTransferSerializer,
    RepaymentPostSerializer,
    RepaymentReverseSerializer,
    ReversalReasonSerializer,
)
from node.users.models import Role
from node.web import once
from node.web.forms import (
    ChargeForm,
    ConfirmDisbursementForm,
    DisputeAnswerForm,
    EntryReversalForm,
    InitiateForm,
    RefundForm,
    RejectForm,
    RepaymentForm,
    ReversalForm,
    SearchForm,
    TransferForm,
    WaiverForm,
)
from node.web.templatetags.web import format_money
from node.web.views.common import (
    is_htmx,
    message_for,
    service_error_on,
    validated,
    web_view,
)
from node.web.views.loan_pages import loan_context

OFFICERS = (Role.LOAN_OFFICER, Role.MFI_ADMIN)
QUEUE_STATES = (LoanStatus.SUBMITTED, LoanStatus.UNDER_REVIEW, LoanStatus.APPROVED)


@web_view(*OFFICERS)
def queue(request):
    loans = (loan_selectors.loan_list_for(actor=request.user).filter(status__in=QUEUE_STATES)
             .order_by("submitted_at", "id"))
    to_refund = (repayment_selectors.mobile_money_unapplied(mfi_id=request.user.mfi_id).count()
                 if request.user.role == Role.MFI_ADMIN else 0)
    return render(request, "web/staff/queue.html", {"loans": loans, "to_refund": to_refund})


def _page(request, loan, *, report=None, report_error=None, forms=None, status=200):
    ctx = loan_context(loan)
    forms = forms or {}
    ctx.update({
        "report": report, "report_error": report_error,
        "reject_form": forms.get("reject") or RejectForm(),
        "initiate_form": forms.get("initiate") or InitiateForm(),
        "repayment_form": forms.get("repayment") or RepaymentForm(initial={"form_key": once.new_form_key()}),
        "confirm_form": forms.get("confirm") or ConfirmDisbursementForm(),
        "can_reverse": request.user.role == Role.MFI_ADMIN and any(r.reversed_at is None for r in ctx["repayments"]),
        "recoveries": (list(repayment_selectors.recovery_list(loan=loan))
                       if loan.status == LoanStatus.WRITTEN_OFF else []),
        "refunds": list(repayment_selectors.overpayment_refund_list(loan=loan)) if loan.disbursement_date else [],
        "can_use_overpayment": (request.user.role == Role.MFI_ADMIN and ctx["balance"] is not None
                                and ctx["balance"]["overpayment_held"] > 0),
        "refund_form": forms.get("refund") or RefundForm(initial={"form_key": once.new_form_key()}),
        "charge_form": (forms.get("charge") or ChargeForm(initial={"form_key": once.new_form_key()})
                        if loan.status == LoanStatus.ACTIVE else None),
        "waiver_form": (forms.get("waiver") or WaiverForm(initial={"form_key": once.new_form_key()})
                        if request.user.role == Role.MFI_ADMIN and loan.status == LoanStatus.ACTIVE else None),
        "reversal_form": forms.get("reversal") or ReversalForm(
            repayments=ctx["repayments"], initial={"form_key": once.new_form_key()}),
    })
    if request.user.role == Role.MFI_ADMIN:
        waivers = (repayment_selectors.charge_waiver_list(loan=loan)
                   if loan.status in (LoanStatus.ACTIVE, LoanStatus.CLOSED) else [])
        form = forms.get("entry_reversal") or EntryReversalForm(
            refunds=ctx["refunds"], recoveries=ctx["recoveries"], waivers=waivers,
            initial={"form_key": once.new_form_key()})
        ctx["entry_reversal_form"] = form if form.fields["entry"].choices else None
    if ctx["can_use_overpayment"]:
        others = _other_active_loans(request, loan)
        ctx["transfer_form"] = (forms.get("transfer") or TransferForm(loans=others,
                                                                      initial={"form_key": once.new_form_key()}))
        ctx["transfer_targets"] = others
    return render(request, "web/staff/loan.html", ctx, status=status)


@web_view(*OFFICERS)
def loan_detail(request, loan_id):
    return _page(request, loan_selectors.access_loan_by_id(request.user, loan_id, roles=frozenset(OFFICERS)))


@web_view(*OFFICERS)
def loan_pdf(request, loan_id, kind):
    """The loan statement or schedule as a PDF, to print for the borrower."""
    from node.web.views.loan_pages import loan_document

    return loan_document(loan_selectors.access_loan_by_id(request.user, loan_id, roles=frozenset(OFFICERS)), kind)


@web_view(*OFFICERS)
def credit_report(request, loan_id):
    """Pull the network credit report and score for this application (logged as an enquiry, like the API's)."""
    loan = loan_selectors.access_loan_by_id(request.user, loan_id, roles=frozenset(OFFICERS))
    if request.method != "POST":
        return redirect("web:staff-loan", loan_id=loan.pk)
    report = error = None
    try:
        a = loan_services.loan_credit_assess(actor=request.user, loan=loan)
        report = assessment_json(a, purpose="loan_application", monthly_income=loan.borrower.monthly_income)
    except ApplicationError as exc:
        error = message_for(exc)
    if is_htmx(request):
        return render(request, "web/partials/credit_report.html", {"report": report, "report_error": error,
                                                                    "loan": loan})
    return _page(request, loan, report=report, report_error=error)


def _after(request, loan, text):
    messages.success(request, text)
    return redirect("web:staff-loan", loan_id=loan.pk)


@web_view(*OFFICERS)
def loan_action(request, loan_id, action):
    """Start review, approve, reject or initiate the disbursement (POST only)."""
    loan = loan_selectors.access_loan_by_id(request.user, loan_id, roles=frozenset(OFFICERS))
    if request.method != "POST":
        return redirect("web:staff-loan", loan_id=loan.pk)
    try:
        if action == "review":
            loan = loan_services.loan_start_review(actor=request.user, loan=loan)
            return _after(request, loan, _("Review started."))
        if action == "approve":
            loan = loan_services.loan_approve(actor=request.user, loan=loan)
            return _after(request, loan, _("Loan %(ref)s approved.") % {"ref": loan.reference})
        if action == "reject":
            form = RejectForm(request.POST)
            if form.is_valid() and (s := validated(form, RejectSerializer, dict(form.cleaned_data))) is not None:
                loan = loan_services.loan_reject(actor=request.user, loan=loan, **s.validated_data)
                return _after(request, loan, _("Loan %(ref)s rejected.") % {"ref": loan.reference})
            return _page(request, loan, forms={"reject": form}, status=400)
        if action == "initiate":
            form = InitiateForm(request.POST)
            if form.is_valid() and (s := validated(form, InitiateSerializer, dict(form.cleaned_data))) is not None:
                loan = loan_services.loan_initiate_disbursement(actor=request.user, loan=loan, **s.validated_data)
                return _after(request, loan, _("Disbursement initiated; another colleague must confirm it."))
            return _page(request, loan, forms={"initiate": form}, status=400)
    except ApplicationError as exc:
        messages.error(request, message_for(exc))
        return redirect("web:staff-loan", loan_id=loan.pk)
    return render(request, "web/error.html", {"message": _("Unknown action."), "code": "not_found"}, status=404)


@web_view(*OFFICERS)
def repayment_record(request, loan_id):
    return _money_received(request, loan_id, repayment_services.repayment_post,
                           _("This repayment was already recorded."), _("Repayment recorded: receipt %(number)s."))


@web_view(*OFFICERS)
def recovery_record(request, loan_id):
    """Money collected on a written-off loan (the API's ``loan_recovery_post``)."""
    return _money_received(request, loan_id, repayment_services.loan_recovery_post,
                           _("This recovery was already recorded."), _("Recovery recorded: receipt %(number)s."))


def _money_received(request, loan_id, service, already: str, done: str):
    """The repayment form's round trip (a repayment, or a recovery on a written-off loan)."""
    loan = loan_selectors.access_loan_by_id(request.user, loan_id, roles=frozenset(OFFICERS))
    if request.method != "POST":
        return redirect("web:staff-loan", loan_id=loan.pk)

    def post(v):
        return service(actor=request.user, loan=loan, amount=v["amount"],
                       payment_date=v.get("payment_date") or timezone.localdate(), channel=v["channel"],
                       reference=v["reference"]).receipt_number

    return _submit_once(request, loan, RepaymentForm(request.POST), "repayment", RepaymentPostSerializer, post,
                        already, done)


def _submit_once(request, loan, form, name: str, serializer_class, call, already: str, done: str):
    """A money form of the loan page, submitted once: validate, claim its one-time key (a double click finds the
    first submission's outcome), the API's serializer over ``form.api_payload()``, ``call(validated_data)`` — the
    service, answering what ``done`` names — then back to the loan page. Errors land on the form."""
    if not form.is_valid():
        return _page(request, loan, forms={name: form}, status=400)
    try:
        record = once.claim(request)
    except once.AlreadySubmitted as submitted:
        messages.info(request, already)
        return redirect(submitted.location or reverse("web:staff-loan", args=[loan.pk]))
    if record is None:
        form.add_error(None, _("The form has expired; please fill it in again."))
        return _page(request, loan, forms={name: form}, status=400)
    s = validated(form, serializer_class, form.api_payload())
    if s is None:
        once.release(record)
        return _page(request, loan, forms={name: form}, status=400)
    try:
        number = call(s.validated_data)
    except ApplicationError as exc:
        once.release(record)
        service_error_on(form, exc)
        return _page(request, loan, forms={name: form}, status=exc.status)
    location = reverse("web:staff-loan", args=[loan.pk])
    once.complete(record, location)
    messages.success(request, done % {"number": number})
    return redirect(location)


def _other_active_loans(request, loan):
    """The borrower's other active loans at this MFI: where what they paid in advance can go."""
    return list(loan_selectors.loan_list_for(actor=request.user, related=False)
                .filter(borrower_id=loan.borrower_id, status=LoanStatus.ACTIVE).exclude(pk=loan.pk).order_by("id"))


@web_view(Role.MFI_ADMIN)
def overpayment_refund(request, loan_id):
    """Pay back what the borrower paid in advance (the API's ``overpayment_refund``)."""
    loan = loan_selectors.access_loan_by_id(request.user, loan_id, roles=frozenset({Role.MFI_ADMIN}))
    if request.method != "POST":
        return redirect("web:staff-loan", loan_id=loan.pk)

    def post(v):
        refund = repayment_services.overpayment_refund(actor=request.user, loan=loan, amount=v["amount"],
                                                       refund_date=timezone.localdate(), channel=v["channel"],
                                                       reference=v["reference"])
        return format_money(refund.amount, loan.product.currency)

    return _submit_once(request, loan, RefundForm(request.POST), "refund", OverpaymentRefundSerializer, post,
                        _("This refund was already made."), _("Paid back to the borrower: %(number)s."))


@web_view(*OFFICERS)
def charge_add(request, loan_id):
    """Add a fee or penalty (the API's ``loan_charge_add``)."""
    loan = loan_selectors.access_loan_by_id(request.user, loan_id, roles=frozenset(OFFICERS))
    if request.method != "POST":
        return redirect("web:staff-loan", loan_id=loan.pk)

    def post(v):
        charge = repayment_services.loan_charge_add(actor=request.user, loan=loan, kind=v["kind"], name=v["name"],
                                                    amount=v["amount"], due_date=v.get("due_date"))
        return _("%(amount)s on installment %(number)s") % {
            "amount": format_money(charge.amount, loan.product.currency), "number": charge.installment.number}

    return _submit_once(request, loan, ChargeForm(request.POST), "charge", LoanChargeSerializer, post,
                        _("This charge was already added."), _("Charge added: %(number)s."))


@web_view(Role.MFI_ADMIN)
def charges_waive(request, loan_id):
    """Forgive interest, fees or penalties still unpaid (the API's ``loan_charges_waive``)."""
    loan = loan_selectors.access_loan_by_id(request.user, loan_id, roles=frozenset({Role.MFI_ADMIN}))
    if request.method != "POST":
        return redirect("web:staff-loan", loan_id=loan.pk)

    def post(v):
        waivers = repayment_services.loan_charges_waive(
            actor=request.user, loan=loan, component=v["component"], reason=v["reason"], amount=v.get("amount"),
            installment_number=v.get("installment"))
        return format_money(sum((w.amount for w in waivers), Decimal(0)), loan.product.currency)

    return _submit_once(request, loan, WaiverForm(request.POST), "waiver", ChargeWaiverSerializer, post,
                        _("This waiver was already made."), _("Waived: %(number)s."))


@web_view(Role.MFI_ADMIN)
def overpayment_transfer(request, loan_id):
    """Apply what the borrower paid in advance to another of their loans (the API's ``overpayment_transfer``)."""
    loan = loan_selectors.access_loan_by_id(request.user, loan_id, roles=frozenset({Role.MFI_ADMIN}))
    if request.method != "POST":
        return redirect("web:staff-loan", loan_id=loan.pk)

    def post(v):
        return repayment_services.overpayment_transfer(
            actor=request.user, loan=loan, to_loan_id=v["to_loan"], amount=v["amount"],
            transfer_date=timezone.localdate()).repayment.receipt_number

    return _submit_once(request, loan, TransferForm(request.POST, loans=_other_active_loans(request, loan)), "transfer",
                        OverpaymentTransferSerializer, post,
                        _("This transfer was already made."), _("Applied to the other loan: receipt %(number)s."))


@web_view(Role.MFI_ADMIN)
def repayment_reverse(request, loan_id):
    """Reverse a repayment of this loan (MFI admins), optionally replaying the later ones: the API's service."""
    loan = loan_selectors.access_loan_by_id(request.user, loan_id, roles=frozenset({Role.MFI_ADMIN}))
    if request.method != "POST":
        return redirect("web:staff-loan", loan_id=loan.pk)
    form = ReversalForm(request.POST, repayments=repayment_selectors.repayment_list(loan=loan))

    def act(v):
        rep = repayment_selectors.access_repayment_by_id(request.user, form.cleaned_data["repayment"],
                                                         roles=frozenset({Role.MFI_ADMIN}))
        rep = repayment_services.repayment_reverse(actor=request.user, repayment=rep, **v)
        text = _("Repayment %(number)s reversed.") % {"number": rep.receipt_number}
        if rep.replays:
            text += " " + _("Posted again: %(receipts)s.") % {
                "receipts": ", ".join(r.receipt_number for r in rep.replays)}
        return text

    return _reverse_once(request, loan, form, "reversal", RepaymentReverseSerializer, ("reason", "reprocess_later"),
                         act, _("This reversal was already made."))


@web_view(Role.MFI_ADMIN)
def entry_reverse(request, loan_id):
    """Undo a refund, a recovery or a waiver of this loan (MFI admins): the API's services."""
    loan = loan_selectors.access_loan_by_id(request.user, loan_id, roles=frozenset({Role.MFI_ADMIN}))
    if request.method != "POST":
        return redirect("web:staff-loan", loan_id=loan.pk)
    form = EntryReversalForm(request.POST, refunds=repayment_selectors.overpayment_refund_list(loan=loan),
                             recoveries=repayment_selectors.recovery_list(loan=loan),
                             waivers=repayment_selectors.charge_waiver_list(loan=loan))
    admins = frozenset({Role.MFI_ADMIN})

    def act(v):
        kind, pk = form.kind_and_id()
        if kind == "refund":
            refund = repayment_selectors.access_refund_by_id(request.user, pk, roles=admins)
            refund = repayment_services.overpayment_refund_reverse(actor=request.user, refund=refund, **v)
            return _("Refund of %(amount)s reversed: the loan holds it again.") % {
                "amount": format_money(refund.amount, loan.product.currency)}
        if kind == "waiver":
            waiver = repayment_selectors.access_waiver_by_id(request.user, pk, roles=admins)
            waiver = repayment_services.charge_waiver_undo(actor=request.user, waiver=waiver, **v)
            done = _("Waiver of %(amount)s undone: installment %(number)s owes it again.") % {
                "amount": format_money(waiver.amount, loan.product.currency), "number": waiver.installment.number}
            if waiver.replayed:
                done += " " + _("Posted again: %(receipts)s.") % {
                    "receipts": ", ".join(r.receipt_number for r in waiver.replayed)}
            return " ".join([done, _("The loan is open again.")]) if waiver.loan_reopened else done
        rec = repayment_selectors.access_recovery_by_id(request.user, pk, roles=admins)
        rec = repayment_services.loan_recovery_reverse(actor=request.user, recovery=rec, **v)
        return _("Recovery %(number)s reversed.") % {"number": rec.receipt_number}

    return _reverse_once(request, loan, form, "entry_reversal", ReversalReasonSerializer, ("reason",), act,
                         _("This reversal was already made."))


def _reverse_once(request, loan, form, name, serializer_class, fields, act, already):
    """A reversal from the loan page, claimed before the form's own checks (after a double click the entry is no
    longer a choice, and the second click must find the first one's outcome), then checked by the API's serializer.
    ``act(validated_data)`` reverses and returns the message to show."""
    try:
        record = once.claim(request)
    except once.AlreadySubmitted as done:
        messages.info(request, already)
        return redirect(done.location or reverse("web:staff-loan", args=[loan.pk]))
    if record is None:
        form.add_error(None, _("The form has expired; please fill it in again."))
        return _page(request, loan, forms={name: form}, status=400)
    s = form.is_valid() and validated(form, serializer_class, {k: form.cleaned_data[k] for k in fields})
    if not s:
        once.release(record)
        return _page(request, loan, forms={name: form}, status=400)
    try:
        text = act(s.validated_data)
    except ApplicationError as exc:
        once.release(record)
        service_error_on(form, exc)
        return _page(request, loan, forms={name: form}, status=exc.status)
    location = reverse("web:staff-loan", args=[loan.pk])
    once.complete(record, location)
    messages.success(request, text)
    return redirect(location)


@web_view(*OFFICERS)
def disbursements(request):
    """The checker's queue: approved loans whose disbursement a colleague has initiated."""
    loans = (loan_selectors.loan_list_for(actor=request.user)
             .filter(status=LoanStatus.APPROVED, disbursement_initiated_by__isnull=False)
             .select_related("disbursement_initiated_by", "approved_by").order_by("disbursement_initiated_at"))
    return render(request, "web/staff/disbursements.html", {"loans": loans, "form": ConfirmDisbursementForm()})


def _disputes_page(request, forms=None, status=200):
    show = request.GET.get("show", "open")
    rows = list(disputes_for_staff(request.user, status="all" if show == "all" else "open")[:200])
    forms = forms or {}
    return render(request, "web/staff/disputes.html", {
        "rows": [{"d": d, "overdue": d.overdue,
                  "form": forms.get(str(d.id)) or (DisputeAnswerForm(auto_id=f"d{d.id.hex[:8]}_%s")
                                                   if d.status == "open" else None)}
                 for d in rows], "show": show}, status=status)


@web_view(*OFFICERS)
def disputes(request):
    """Borrowers' disputes of this MFI's loan records, earliest deadline first, each with its answer form."""
    return _disputes_page(request)


@web_view(*OFFICERS)
def dispute_answer(request, dispute_id):
    """Answer a dispute (corrected / confirmed, with a note to the borrower): the API's service."""
    if request.method != "POST":
        return redirect("web:staff-disputes")
    form = DisputeAnswerForm(request.POST, auto_id=f"d{dispute_id.hex[:8]}_%s")
    if form.is_valid():
        try:
            dispute_resolve(actor=request.user, dispute_id=dispute_id, **form.cleaned_data)
        except ApplicationError as exc:
            if exc.status == 404:
                raise
            service_error_on(form, exc)
        else:
            messages.success(request, _("Answer recorded; the credit reports no longer show the loan as disputed."))
            return redirect("web:staff-disputes")
    return _disputes_page(request, forms={str(dispute_id): form}, status=400)


@web_view(*OFFICERS)
def disbursement_confirm(request, loan_id):
    """Confirm (checker): the password again is the step-up; then the same service as the API's confirm."""
    loan = loan_selectors.access_loan_by_id(request.user, loan_id, roles=frozenset(OFFICERS))
    if request.method != "POST":
        return redirect("web:staff-disbursements")
    form = ConfirmDisbursementForm(request.POST)
    if form.is_valid():
        try:
            token, _grant = loan_services.step_up_grant(user=request.user, password=form.cleaned_data["password"])
            loan = loan_services.loan_confirm_disbursement(actor=request.user, loan=loan, step_up_token=token)
        except ApplicationError as exc:
            service_error_on(form, exc)
        else:
            messages.success(request, _("Loan %(ref)s disbursed.") % {"ref": loan.reference})
            return redirect("web:staff-loan", loan_id=loan.pk)
    return _page(request, loan, forms={"confirm": form}, status=400)


@web_view(*OFFICERS)
def borrowers(request):
    form = SearchForm(request.GET or None)
    results = None
    if form.is_valid() and form.cleaned_data["q"].strip():
        q = form.cleaned_data["q"].strip()
        match = Q(first_name__icontains=q) | Q(last_name__icontains=q) | borrower_selectors.identity_match(q)
        results = borrower_selectors.borrower_list_for(actor=request.user).filter(match).order_by("last_name", "id")[:50]
    template = "web/partials/borrower_results.html" if is_htmx(request) else "web/staff/borrowers.html"
    return render(request, template, {"form": form, "results": results})


@web_view(*OFFICERS)
def borrower_detail(request, borrower_id):
    b = borrower_selectors.access_borrower_by_id(request.user, borrower_id)
    loans = loan_selectors.loan_list_for(actor=request.user).filter(borrower=b).order_by("-created_at")
    return render(request, "web/staff/borrower.html", {"borrower": b, "loans": loans,
                                                       "consent": borrower_selectors.consent_active(borrower=b)})


def _momo_refund(request, p) -> None:
    """Record that money no loan took was paid back (the API's ``mobile_money_refund``), with a message."""
    from node.repayments import mobile_money

    try:
        mobile_money.mobile_money_refund(actor=request.user, payment=p,
                                         reference=request.POST.get("reference", "")[:100])
    except ApplicationError as exc:
        messages.error(request, message_for(exc))
    else:
        messages.success(request, _("Recorded as paid back: %(amount)s.") % {"amount": format_money(p.amount_received)})


@web_view(Role.MFI_ADMIN)
def mobile_money_refund(request, loan_id, payment_id):
    """Record on the loan's page that mobile money the loan could not take was paid back to the payer."""
    loan = loan_selectors.access_loan_by_id(request.user, loan_id, roles=frozenset({Role.MFI_ADMIN}))
    if request.method == "POST":
        p = repayment_selectors.access_mobile_money_payment(request.user, payment_id)
        if p.loan_id != loan.pk:
            raise NotFound("No such payment.")
        _momo_refund(request, p)
    return redirect(reverse("web:staff-loan", kwargs={"loan_id": loan.pk}) + "#mobile-money")


@web_view(Role.MFI_ADMIN)
def mobile_money_unapplied(request):
    """Mobile money the MFI received that no loan took (a paybill payment with a mistyped account, money for a
    loan closed meanwhile), oldest first: apply each to a loan, or record that it was paid back."""
    rows = list(repayment_selectors.mobile_money_unapplied(mfi_id=request.user.mfi_id)[:200])
    return render(request, "web/staff/mobile_money.html", {"rows": rows, "paybill": request.user.mfi.paybill_number})


@web_view(Role.MFI_ADMIN)
def mobile_money_resolve(request, payment_id, action):
    """POST: apply unapplied money to the loan whose reference was typed (``apply``), or record it paid back
    (``refund``); back to the list with what happened."""
    from node.repayments import mobile_money

    if request.method == "POST" and action in ("apply", "refund"):
        p = repayment_selectors.access_mobile_money_payment(request.user, payment_id)
        if action == "refund":
            _momo_refund(request, p)
        else:
            typed = request.POST.get("loan_reference", "")[:64]
            loan = repayment_selectors.mfi_loan_by_reference(mfi_id=p.mfi_id, reference=typed)
            if loan is None:
                messages.error(request, _("The MFI has no loan with the reference %(reference)s.") % {
                    "reference": typed.strip() or "—"})
            else:
                try:
                    p = mobile_money.mobile_money_apply(actor=request.user, payment=p, loan=loan)
                except ApplicationError as exc:
                    messages.error(request, message_for(exc))
                else:
                    messages.success(request, _("%(amount)s applied to loan %(reference)s: receipt %(receipt)s.") % {
                        "amount": format_money(p.amount_received), "reference": loan.reference,
                        "receipt": p.repayment.receipt_number})
    return redirect("web:staff-momo")
