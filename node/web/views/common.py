"""Shared pieces of the web views: log-in and role gates, error pages, and putting the API's validation errors
(serializers and services) back on a form's fields."""

from __future__ import annotations

import functools

from django.contrib.auth.views import redirect_to_login
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _

from node.core.errors import ApplicationError

#: Friendly, translated wording for the errors a web user meets most; others show the service's message.
FRIENDLY = {
    "consent_required": lambda: _("The borrower has not given consent to share credit history yet."),
    "otp_invalid": lambda: _("The code is not correct."),
    "otp_expired": lambda: _("The code has expired; ask for a new one."),
    "otp_not_requested": lambda: _("Ask for a code first."),
    "otp_resend_too_soon": lambda: _("A code was sent moments ago; wait a minute before asking for another."),
    "stacking_limit": lambda: _("The credit network's lending limit for this borrower is reached."),
    "credit_network_unavailable": lambda: _("The credit network cannot be reached right now; nothing was changed. Try again shortly."),
    "step_up_failed": lambda: _("The password is not correct."),
    "dispute_already_open": lambda: _("This loan's record is already under dispute; the lender has not answered yet."),
    "lender_district_unavailable": lambda: _("The lender's district cannot be reached right now; nothing was sent. "
                                             "Try again later."),
    "not_found": lambda: _("This page does not exist, or you may not see it."),
    "permission_denied": lambda: _("Your role may not do this."),
}


def message_for(exc: ApplicationError) -> str:
    friendly = FRIENDLY.get(exc.code)
    return friendly() if friendly else exc.message


def is_htmx(request) -> bool:
    return request.headers.get("HX-Request") == "true"


def error_page(request, exc: ApplicationError):
    return render(request, "web/error.html", {"message": message_for(exc), "code": exc.code}, status=exc.status)


def web_view(*roles: str):
    """Log-in required (the log-in page otherwise); with ``roles``, a user of another role gets 403. Expected
    errors raised by selectors and services (ApplicationError) become an error page with their status."""

    def decorate(view):
        @functools.wraps(view)
        def run(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path(), reverse("web:login"))
            if roles and request.user.role not in roles:
                return render(request, "web/error.html", {"message": _("Your role may not open this page."),
                                                          "code": "permission_denied"}, status=403)
            try:
                return view(request, *args, **kwargs)
            except ApplicationError as exc:
                return error_page(request, exc)

        return run

    return decorate


def add_errors(form, errors, prefix: str = "") -> None:
    """Put field errors (a serializer's ``errors`` or a service error's ``details["fields"]``) on ``form``;
    nested objects map to ``<parent>_<field>`` (next_of_kin.name -> next_of_kin_name); unknown fields go to the
    form's non-field errors."""
    if not isinstance(errors, dict):
        form.add_error(None, [str(m) for m in (errors if isinstance(errors, list) else [errors])])
        return
    for field, msgs in errors.items():
        if isinstance(msgs, dict):
            add_errors(form, msgs, prefix=f"{prefix}{field}_")
            continue
        name = f"{prefix}{field}".replace(".", "_")
        msgs = [str(m) for m in (msgs if isinstance(msgs, list) else [msgs])]
        if name in form.fields and name not in (form.errors or {}):
            form.add_error(name, msgs)
        else:
            form.add_error(None, [f"{name}: {m}" if name != "non_field_errors" else m for m in msgs])


def validated(form, serializer_class, payload: dict):
    """Validate ``payload`` with the API's serializer; on failure the errors land on ``form`` and None is returned."""
    s = serializer_class(data=payload)
    if not s.is_valid():
        add_errors(form, s.errors)
        return None
    return s


def service_error_on(form, exc: ApplicationError) -> None:
    fields = exc.details.get("fields") if isinstance(exc.details, dict) else None
    if fields:
        add_errors(form, fields)
    form.add_error(None, message_for(exc))
