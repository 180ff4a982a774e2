"""Letsema admin and operator pages: this node's health (the /healthz checks and the outbox backlog), the MFIs it
serves and the network lending policy; the district nodes (directory, keys, who answers now) and, for Letsema
admins, the network's portfolio; the MFIs of this node, which Letsema admins onboard here. The same check,
selector and service functions as the JSON endpoints."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from node.credit.stacking import policy_get
from node.health.checks import run_checks
from node.core.errors import ApplicationError
from node.mfis.apis import MfiOnboardSerializer, mfi_onboard_validated
from node.mfis.selectors import mfi_list_for
from node.peers.selectors import network_districts, network_figures
from node.users.models import Role
from node.web.forms import MfiOnboardForm
from node.web.views.common import service_error_on, validated, web_view
from replication.outbox import outbox_lag
from replication.ring import RingUnavailable

NETWORK_ROLES = (Role.LETSEMA_ADMIN, Role.OPERATOR)


@web_view(*NETWORK_ROLES)
def node_status(request):
    checks = run_checks()
    try:
        policy = policy_get().to_json()
    except RingUnavailable:
        policy = None
    return render(request, "web/network/node.html", {
        "district": settings.DISTRICT, "checks": sorted(checks.items()),
        "all_up": all(r["status"] == "up" for r in checks.values()),
        "outbox": outbox_lag().to_json(), "mfis": mfi_list_for(actor=request.user), "policy": policy,
    })


@web_view(*NETWORK_ROLES)
def districts(request):
    """Every district node: directory entry, signing keys, whether it answers a signed ping now; Letsema admins
    also see each district's portfolio and the network totals (``GET /api/v1/network/aggregates``)."""
    figures = network_figures() if request.user.role == Role.LETSEMA_ADMIN else None
    return render(request, "web/network/districts.html", {
        "district": settings.DISTRICT, "nodes": network_districts(), "figures": figures,
        "figure_rows": sorted(figures["districts"].items()) if figures else [],
    })


@web_view(*NETWORK_ROLES)
def mfis(request):
    """The MFIs of this node; Letsema admins onboard a new one with its first MFI admin (operators only read)."""
    may_onboard = request.user.role == Role.LETSEMA_ADMIN
    form = MfiOnboardForm(request.POST or None) if may_onboard else None
    if request.method == "POST" and form is not None and form.is_valid():
        s = validated(form, MfiOnboardSerializer, form.payload())
        if s is not None:
            try:
                result = mfi_onboard_validated(actor=request.user, data=s.validated_data)
            except ApplicationError as exc:
                service_error_on(form, exc)
            else:
                messages.success(request, _("%(mfi)s is onboarded; %(user)s can now log in as its MFI admin.")
                                 % {"mfi": result.mfi.name, "user": result.admin.username})
                return redirect("web:network-mfis")
    return render(request, "web/network/mfis.html", {
        "district": settings.DISTRICT, "mfis": mfi_list_for(actor=request.user).order_by("code"), "form": form,
    }, status=400 if form is not None and form.errors else 200)
