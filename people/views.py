"""The person's own pages: profile, preference center and dashboard."""
from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.utils import timezone
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from accounts.selectors import request_user, user_primary_organization
from accounts.services import user_profile_update
from common.exceptions import ProviderError
from common.exceptions import ValidationError as DomainValidationError
from notifications.engine.quiet_hours import quiet_hours_get_for_user
from notifications.enums import Channel, DigestFrequency, QuietHoursAction

from .charts import PALETTE, channel_bars, daily_series
from .forms import DndForm, DigestForm, ProfileForm, QuietHoursForm, matrix_choices_parse
from .phone import phone_code_pending, phone_code_send
from .preferences import digest_settings, preference_matrix
from .selectors import (
    HISTORY_ACTIONS,
    organization_projects,
    user_delivery_analytics,
    user_history_filtered,
    user_invitation_summary,
)
from .services import (
    person_digest_save,
    person_dnd_save,
    person_phone_confirm,
    person_preferences_matrix_save,
    person_quiet_hours_save,
)
from .verification import verification_mode


def _add_domain_errors(form, exc: DomainValidationError) -> None:
    detail = exc.detail if isinstance(exc.detail, dict) else {None: exc.detail}
    for field, errors in detail.items():
        form.add_error(field if field in form.fields else None, errors)


@login_required
@require_http_methods(["GET", "POST"])
def profile(request: HttpRequest) -> HttpResponse:
    user = request_user(request)
    initial = {"display_name": user.display_name, "phone": user.phone, "locale": user.locale, "timezone": user.timezone}
    form = ProfileForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            user_profile_update(user=user, changes=form.cleaned_data)
        except DomainValidationError as exc:
            _add_domain_errors(form, exc)
        else:
            messages.success(request, "Profile saved.")
            return redirect("me-profile")
    return render(
        request,
        "people/profile.html",
        {
            "form": form,
            "organization": user_primary_organization(user=user),
            "verification": verification_mode(),
            "phone_code_pending": phone_code_pending(user=user),
        },
        status=400 if form.errors else 200,
    )


@login_required
@require_http_methods(["POST"])
def phone_code(request: HttpRequest) -> HttpResponse:
    try:
        phone_code_send(user=request_user(request))
    except DomainValidationError as exc:
        for errors in (exc.detail.values() if isinstance(exc.detail, dict) else [[exc.detail]]):
            for error in errors:
                messages.error(request, error)
    except ProviderError:
        messages.error(request, "We could not send a text message just now. Please try again in a few minutes.")
    else:
        messages.success(request, f"We texted a code to {request_user(request).phone}. Type it below.")
    return redirect("me-profile")  # messages show at the top, where the page opens


@login_required
@require_http_methods(["POST"])
def phone_confirm(request: HttpRequest) -> HttpResponse:
    try:
        person_phone_confirm(user=request_user(request), code=request.POST.get("code", "")[:20])
    except DomainValidationError as exc:
        for errors in (exc.detail.values() if isinstance(exc.detail, dict) else [[exc.detail]]):
            for error in errors:
                messages.error(request, error)
    else:
        messages.success(request, "Your phone number is confirmed.")
    return redirect("me-profile")  # messages show at the top, where the page opens


# --- preference center -----------------------------------------------------------------------

DAYS = [(0, "Mon"), (1, "Tue"), (2, "Wed"), (3, "Thu"), (4, "Fri"), (5, "Sat"), (6, "Sun")]


def _quiet_context(user) -> dict:
    qh = quiet_hours_get_for_user(user=user)
    schedules = list(qh.schedules.all()) if qh else []
    first = schedules[0] if schedules else None
    rules = {r.channel: r.action for r in qh.channel_rules.all()} if qh else {}
    dnd_until = qh.dnd_until if qh and qh.dnd_until and qh.dnd_until > timezone.now() else None
    zone = zoneinfo.ZoneInfo(user.timezone or "UTC")
    return {
        "enabled": bool(qh and qh.enabled and schedules),
        "days": first.days_of_week if first else [0, 1, 2, 3, 4, 5, 6],
        "start": first.start_time.strftime("%H:%M") if first else "22:00",
        "end": first.end_time.strftime("%H:%M") if first else "07:00",
        "more_windows": max(0, len(schedules) - 1),
        "default_action": qh.default_action if qh else QuietHoursAction.HOLD,
        "allow_critical": qh.allow_critical if qh else True,
        "rules": [(value, label, rules.get(value, "")) for value, label in Channel.choices],
        "dnd_until": dnd_until.astimezone(zone) if dnd_until else None,
        "dnd_default": (timezone.now().astimezone(zone) + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
        "timezone": user.timezone or "UTC",
    }


# Each section: its form, the service that saves it (called with user, organization and the form's kwargs), a message.
SECTIONS: dict[str, tuple[Any, Callable[..., Any], str]] = {
    "quiet_hours": (QuietHoursForm, person_quiet_hours_save, "Quiet hours saved."),
    "dnd": (DndForm, person_dnd_save, "Do not disturb updated."),
    "digest": (DigestForm, person_digest_save, "Digest saved."),
}


def _form_errors(form) -> dict:
    return {(field if field != "__all__" else "detail"): list(errors) for field, errors in form.errors.items()}


@login_required
@require_http_methods(["GET", "POST"])
def preferences(request: HttpRequest) -> HttpResponse:
    user = request_user(request)
    organization = user_primary_organization(user=user)
    projects = list(organization_projects(organization=organization)) if organization else []
    project = None
    if request.GET.get("project"):
        project = next((p for p in projects if str(p.pk) == request.GET["project"]), None)
        if project is None:
            raise Http404("No such project in your organization.")
    errors: dict = {}
    section = request.POST.get("section", "")
    if request.method == "POST":
        try:
            if section == "matrix":
                changed = person_preferences_matrix_save(
                    user=user, organization=organization, project=project, choices=matrix_choices_parse(request.POST),
                )
                messages.success(request, "Preferences saved." if changed else "Nothing changed.")
            elif section in SECTIONS:
                form_class, save, done = SECTIONS[section]
                form = form_class(request.POST)
                if not form.is_valid():
                    raise DomainValidationError(_form_errors(form))
                save(user=user, organization=organization, **form.service_kwargs())
                messages.success(request, done)
            else:
                raise DomainValidationError({"section": ["Unknown form."]})
        except DomainValidationError as exc:
            errors = exc.detail if isinstance(exc.detail, dict) else {"detail": [exc.detail]}
        else:
            query = f"?{urlencode({'project': project.pk})}" if project else ""
            return redirect(f"{request.path}{query}#{section}")
    return render(
        request,
        "people/preferences.html",
        {
            "matrix": preference_matrix(user=user, organization=organization, project=project),
            "channels": Channel.choices,
            "quiet": _quiet_context(user),
            "digest": digest_settings(user=user),
            "digest_choices": DigestFrequency.choices,
            "quiet_actions": QuietHoursAction.choices,
            "days": DAYS,
            "hours": range(24),
            "errors": errors,
            "error_section": section if errors else "",
            "organization": organization,
            "projects": projects,
            "project": project,
        },
        status=400 if errors else 200,
    )


# --- dashboard -------------------------------------------------------------------------------

TILES = [
    ("sent", "invitations_sent", "sent"),
    ("received", "invitations_received", "received"),
    ("accepted", "invitations_accepted", "accepted"),
    ("declined", "invitations_declined", "declined"),
    ("viewed", "invitations_viewed", "viewed"),
]


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    user = request_user(request)
    action = request.GET.get("action", "")
    query = request.GET.get("q", "")[:200].replace("\x00", "")
    summary = user_invitation_summary(user=user)
    paginator = Paginator(user_history_filtered(user=user, action=action, query=query), 20)
    page = paginator.get_page(request.GET.get("page"))
    analytics = user_delivery_analytics(user=user)
    since, until = date.fromisoformat(analytics["since"]), date.fromisoformat(analytics["until"])
    params = {k: v for k, v in (("action", action), ("q", query)) if v}
    return render(
        request,
        "people/dashboard.html",
        {
            "summary": summary,
            "tiles": [(key, label, summary[field]) for key, field, label in TILES],
            "action": action if action in HISTORY_ACTIONS else "",
            "query": query,
            "page": page,
            "base_query": urlencode(params),
            "analytics": analytics,
            "channel_chart": channel_bars(analytics["by_channel"]),
            "daily_chart": daily_series(analytics["daily"], since=since, until=until),
            "legend": [(name.replace("_", " "), color) for name, color in PALETTE.items()
                       if any(r["delivery_type"] == name for r in analytics["daily"])],
        },
    )
