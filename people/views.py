"""The person's own pages: profile, preference center and dashboard."""
from __future__ import annotations

import zoneinfo
from datetime import date, datetime, timedelta
from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.utils import timezone
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from accounts.selectors import user_primary_organization
from accounts.services import user_profile_update
from common.exceptions import ValidationError as DomainValidationError

from notifications.engine.preferences import preferences_replace
from notifications.engine.quiet_hours import quiet_hours_get_for_user, quiet_hours_set, quiet_hours_set_dnd
from notifications.enums import AuditActorType, Channel, DigestFrequency, PreferenceLevel, PreferenceScope, QuietHoursAction

from .charts import PALETTE, channel_bars, daily_series
from .forms import ProfileForm
from .preferences import digest_settings, preference_matrix, preference_matrix_save
from .selectors import HISTORY_ACTIONS, user_delivery_analytics, user_history_filtered, user_invitation_summary
from .verification import verification_mode


def _add_domain_errors(form, exc: DomainValidationError) -> None:
    detail = exc.detail if isinstance(exc.detail, dict) else {None: exc.detail}
    for field, errors in detail.items():
        form.add_error(field if field in form.fields else None, errors)


@login_required
@require_http_methods(["GET", "POST"])
def profile(request: HttpRequest) -> HttpResponse:
    user = request.user
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
        },
        status=400 if form.errors else 200,
    )


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


def _save_quiet_hours(request: HttpRequest, organization) -> None:
    post = request.POST
    user = request.user
    schedules = []
    if post.get("enabled") == "on":
        try:
            days = sorted({int(d) for d in post.getlist("days")})
        except ValueError:
            raise DomainValidationError({"days": ["Days are 0 (Monday) to 6 (Sunday)."]}) from None
        if not days:
            raise DomainValidationError({"days": ["Pick at least one day."]})
        schedules = [{"days_of_week": days, "start": post.get("start", ""), "end": post.get("end", "")}]
    rules = [
        {"channel": channel, "action": post.get(f"rule:{channel}")}
        for channel in Channel.values if post.get(f"rule:{channel}")
    ]
    quiet_hours_set(
        user=user, organization_id=organization.pk if organization else None, timezone_name=user.timezone or "UTC",
        enabled=bool(schedules), default_action=post.get("default_action") or QuietHoursAction.HOLD,
        allow_critical=post.get("allow_critical") == "on", schedules=schedules, channel_rules=rules,
    )


def _save_dnd(request: HttpRequest, organization) -> None:
    user = request.user
    until = None
    if request.POST.get("action") != "clear":
        raw = request.POST.get("until", "")
        try:
            naive = datetime.fromisoformat(raw)
        except ValueError:
            raise DomainValidationError({"until": ["Pick a date and time."]}) from None
        until = naive.replace(tzinfo=zoneinfo.ZoneInfo(user.timezone or "UTC")) if naive.tzinfo is None else naive
        if until <= timezone.now():
            raise DomainValidationError({"until": ["Pick a moment in the future."]})
    quiet_hours_set_dnd(user=user, organization_id=organization.pk if organization else None, until=until)


def _save_digest(request: HttpRequest, organization) -> None:
    post = request.POST
    frequency = post.get("frequency", "")
    errors = {}
    if frequency not in DigestFrequency.values:
        errors["frequency"] = [f"Choose one of {', '.join(DigestFrequency.values)}."]
    try:
        hour, day = int(post.get("hour", "8")), int(post.get("day_of_week", "0"))
        if not 0 <= hour <= 23 or not 0 <= day <= 6:
            raise ValueError
    except ValueError:
        errors["hour"] = ["An hour from 0 to 23 and a day from Monday to Sunday."]
    if errors:
        raise DomainValidationError(errors)
    user = request.user
    preferences_replace(
        level=PreferenceLevel.USER, user_id=user.pk, actor_type=AuditActorType.USER, actor_id=str(user.pk),
        actor_label=user.get_username(), audit_organization_id=organization.pk if organization else None,
        items=[{"scope": PreferenceScope.ALL, "channels": {Channel.EMAIL: {
            "digest_frequency": frequency, "digest_hour": hour if frequency in ("DAILY", "WEEKLY") else None,
            "digest_day_of_week": day if frequency == "WEEKLY" else None,
        }}}],
    )


SECTIONS = {
    "quiet_hours": (_save_quiet_hours, "Quiet hours saved."),
    "dnd": (_save_dnd, "Do not disturb updated."),
    "digest": (_save_digest, "Digest saved."),
}


@login_required
@require_http_methods(["GET", "POST"])
def preferences(request: HttpRequest) -> HttpResponse:
    user = request.user
    organization = user_primary_organization(user=user)
    errors: dict = {}
    section = request.POST.get("section", "")
    if request.method == "POST":
        try:
            if section == "matrix":
                changed = preference_matrix_save(user=user, organization=organization, data=request.POST)
                messages.success(request, "Preferences saved." if changed else "Nothing changed.")
            elif section in SECTIONS:
                save, done = SECTIONS[section]
                with transaction.atomic():
                    save(request, organization)
                messages.success(request, done)
            else:
                raise DomainValidationError({"section": ["Unknown form."]})
        except DomainValidationError as exc:
            errors = exc.detail if isinstance(exc.detail, dict) else {"detail": [exc.detail]}
        else:
            return redirect(f"{request.path}#{section}")
    return render(
        request,
        "people/preferences.html",
        {
            "matrix": preference_matrix(user=user, organization=organization),
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
    user = request.user
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
