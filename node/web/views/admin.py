"""MFI admin pages: the MFI's staff (add a colleague, deactivate or reactivate one), the MFI's products (add
one) and its settings (business number, payroll messages). The same serializers and services as ``/api/v1/staff/`` and ``/api/v1/products/`` (the role rules, the rate
cap, the audit)."""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from node.core.errors import ApplicationError
from node.loans import selectors as loan_selectors
from node.loans.apis import ProductCreateSerializer
from node.loans.products import product_create
from node.mfis.services import mfi_notifications_set, mfi_paybill_set
from node.users import selectors as user_selectors
from node.users import services as user_services
from node.users.apis import StaffCreateSerializer
from node.users.models import Role
from node.web.forms import MfiSettingsForm, ProductCreateForm, StaffCreateForm
from node.web.views.common import message_for, service_error_on, validated, web_view

ADMINS = (Role.MFI_ADMIN,)


@web_view(*ADMINS)
def team(request):
    form = StaffCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        payload = {**form.cleaned_data, "mfi": request.user.mfi.code}
        s = validated(form, StaffCreateSerializer, payload)
        if s is not None:
            try:
                user = user_services.staff_create(actor=request.user, **s.validated_data)
            except ApplicationError as exc:
                service_error_on(form, exc)
            else:
                messages.success(request, _("%(user)s can now log in.") % {"user": user.username})
                return redirect("web:admin-team")
    staff = user_selectors.staff_list_for(actor=request.user)
    return render(request, "web/admin/team.html", {"form": form, "staff": staff},
                  status=400 if form.errors else 200)


@web_view(*ADMINS)
def team_member(request, user_id):
    """Deactivate or reactivate a colleague (POST ``active=0|1``)."""
    if request.method != "POST" or request.POST.get("active") not in ("0", "1"):
        return redirect("web:admin-team")
    user = user_selectors.access_staff_by_id(request.user, user_id)
    try:
        user = user_services.staff_update(actor=request.user, user=user, is_active=request.POST["active"] == "1")
    except ApplicationError as exc:
        messages.error(request, message_for(exc))
    else:
        messages.success(request, (_("%(user)s is active again.") if user.is_active else
                                   _("%(user)s can no longer log in.")) % {"user": user.username})
    return redirect("web:admin-team")


@web_view(*ADMINS)
def products(request):
    """The MFI's products, and a new one (the API's serializer and ``product_create``: rate cap, consistent limits,
    a schedule the engine can build at both ends of the limits, the audit row)."""
    form = ProductCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        s = validated(form, ProductCreateSerializer, form.payload())
        if s is not None:
            try:
                product = product_create(actor=request.user, mfi=request.user.mfi, data=dict(s.validated_data))
            except ApplicationError as exc:
                fields = exc.details.get("fields") if isinstance(exc.details, dict) else None
                if isinstance(fields, dict):  # the fee's errors are named after the API's list: show them on the fee
                    exc.details["fields"] = {("fee_percent" if k.startswith("fees") else k): v for k, v in fields.items()}
                if exc.code == "rate_above_cap":  # the rate field is the one to change
                    form.add_error("annual_interest_rate", message_for(exc))
                else:
                    service_error_on(form, exc)
            else:
                messages.success(request, _("Product %(code)s is on offer.") % {"code": product.code})
                return redirect("web:admin-products")
    items = loan_selectors.product_list(mfi_code=request.user.mfi.code, include_inactive=True).order_by("code")
    return render(request, "web/admin/products.html", {"products": items, "form": form},
                  status=400 if form.errors else 200)


@web_view(*ADMINS)
def settings_page(request):
    """The MFI's business number and whether payroll deductions send "repayment received": the API's services
    (``mfi_paybill_set``, ``mfi_notifications_set``), both or neither (one transaction), each change audited."""
    mfi = request.user.mfi
    form = MfiSettingsForm(request.POST or None, initial={"paybill_number": mfi.paybill_number or "",
                                                          "payroll_repayments": mfi.notify_payroll_repayments})
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():
                mfi = mfi_paybill_set(actor=request.user, mfi=mfi, paybill_number=form.cleaned_data["paybill_number"])
                mfi_notifications_set(actor=request.user, mfi=mfi,
                                      payroll_repayments=form.cleaned_data["payroll_repayments"])
        except ApplicationError as exc:
            service_error_on(form, exc)
        else:
            messages.success(request, _("Settings saved."))
            return redirect("web:admin-settings")
    return render(request, "web/admin/settings.html", {"form": form, "mfi": mfi},
                  status=400 if form.errors else 200)
