"""Pages anyone may open: the landing page, log-in, and the loan calculator with the products on offer."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from rest_framework import serializers

from node.core.errors import ValidationFailed
from node.core.fields import MoneyField
from node.loans import products as product_services
from node.loans import selectors as loan_selectors
from node.users.models import Role
from node.users.tokens import token_sessions_revoke
from node.web.forms import CalculatorForm, LoginForm
from node.web.views.common import add_errors, message_for

STAFF_HOME = {Role.LOAN_OFFICER: "web:staff-queue", Role.MFI_ADMIN: "web:staff-queue",
              Role.LETSEMA_ADMIN: "web:network-node", Role.OPERATOR: "web:network-node"}


def home(request):
    user = request.user
    if user.is_authenticated:
        if user.role == Role.BORROWER:
            return redirect("web:me")
        if user.role in STAFF_HOME:
            return redirect(STAFF_HOME[user.role])
    return render(request, "web/home.html", {"products": loan_selectors.product_list()[:20]})


class LoginView(auth_views.LoginView):
    template_name = "web/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True

    def get_default_redirect_url(self):
        return reverse("web:home")


class LogoutView(auth_views.LogoutView):
    """Log out of this browser; with ``everywhere=1`` also end every other session of the account — its other
    browsers and its API tokens (the API's ``{"everywhere": true}`` log-out, audited the same)."""

    next_page = "web:home"

    def post(self, request, *args, **kwargs):
        if request.POST.get("everywhere") == "1" and request.user.is_authenticated:
            token_sessions_revoke(actor=request.user, sid=None, everywhere=True)
        return super().post(request, *args, **kwargs)


def calculator(request):
    """Products on offer and the repayment schedule for chosen terms (GET, so the result can be bookmarked). The
    schedule comes from the same engine and product rules as the API's calculator and applications."""
    products = list(loan_selectors.product_list())
    form = CalculatorForm(request.GET if "principal" in request.GET else None, products=products,
                          initial={"product": request.GET.get("product", "")})
    schedule = None
    chosen = None
    if form.is_bound and form.is_valid():
        chosen = next((p for p in products if str(p.pk) == form.cleaned_data["product"]), None)
        try:
            principal = MoneyField().run_validation(form.cleaned_data["principal"].replace(",", "."))
        except serializers.ValidationError as exc:
            form.add_error("principal", [str(m) for m in exc.detail])
        else:
            try:
                n = form.cleaned_data["number_of_repayments"]
                product_services.check_terms(chosen, principal=principal, number_of_repayments=n)
                schedule = product_services.build_schedule(
                    chosen, principal=principal, number_of_repayments=n,
                    annual_interest_rate=chosen.annual_interest_rate, disbursement_date=timezone.localdate())
            except ValidationFailed as exc:
                add_errors(form, exc.details.get("fields") or {})
                if not form.errors:
                    form.add_error(None, message_for(exc))
    return render(request, "web/calculator.html",
                  {"form": form, "products": products, "schedule": schedule, "chosen": chosen})
