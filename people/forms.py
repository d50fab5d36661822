"""Forms of the people pages; they validate input and hand it to services."""
from __future__ import annotations

import zoneinfo
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.auth.forms import PasswordResetForm
from django.contrib.auth.tokens import default_token_generator
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts.models import User
from common.exceptions import ValidationError as DomainValidationError
from notifications.enums import Channel, DigestFrequency, QuietHoursAction

from .emails import account_email_send


class SignupForm(forms.Form):
    username = forms.CharField(max_length=150, help_text="Letters, digits and @ . + - _ only.")
    email = forms.EmailField(max_length=254)
    display_name = forms.CharField(max_length=150, required=False, label="Your name")
    password1 = forms.CharField(label="Password", strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))
    password2 = forms.CharField(label="Password again", strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))

    def clean_username(self) -> str:
        value = self.cleaned_data["username"].strip()
        User.username_validator(value)
        return value

    def clean(self):
        data = super().clean() or {}
        p1, p2 = data.get("password1"), data.get("password2")
        if p1 and p2 and p1 != p2:
            self.add_error("password2", "The two passwords differ.")
        elif p1:
            probe = User(username=data.get("username", ""), email=data.get("email", ""), display_name=data.get("display_name", ""))
            try:
                password_validation.validate_password(p1, probe)
            except forms.ValidationError as exc:
                self.add_error("password1", exc)
        return data


def _timezone_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in sorted(zoneinfo.available_timezones())]


class ProfileForm(forms.Form):
    """The page's form; the service (accounts.services.profile_clean) does the real validation,
    so the page and PATCH /api/v1/me/ refuse exactly the same input."""

    display_name = forms.CharField(max_length=150, required=False, label="Display name")
    phone = forms.CharField(max_length=32, required=False, help_text="International format, e.g. +14155550100.")
    locale = forms.ChoiceField(choices=settings.LANGUAGES, label="Language")
    timezone = forms.ChoiceField(choices=_timezone_choices, label="Time zone")


class PlatformPasswordResetForm(PasswordResetForm):
    """Django's reset flow, with the email sent through the platform's providers."""

    def save(self, domain_override=None, subject_template_name="", email_template_name="", use_https=False,
             token_generator=default_token_generator, from_email=None, request=None, html_email_template_name=None,
             extra_email_context=None):
        from django.conf import settings as conf

        email = self.cleaned_data["email"]
        for user in self.get_users(email):
            uid = urlsafe_base64_encode(force_bytes(user.pk))
            token = token_generator.make_token(user)
            link = conf.SITE_URL + reverse("password_reset_confirm", kwargs={"uidb64": uid, "token": token})
            account_email_send(user=user, template="password_reset", context={"link": link}, to=getattr(user, "email"))


# --- preference center ---------------------------------------------------------------------
# Each form reads one section of /me/preferences/; the people.services function behind it
# checks the rest (time windows, locks) exactly as the API's services do.

MATRIX_CHANNELS = set(Channel.values)
CELL_CHOICES = ("", "on", "off")
DAY_CHOICES = [(0, "Mon"), (1, "Tue"), (2, "Wed"), (3, "Thu"), (4, "Fri"), (5, "Sat"), (6, "Sun")]


def matrix_choices_parse(data: Any) -> dict[tuple[str, str], dict[str, str]]:
    """{("cat"|"type", key): {channel: "" | "on" | "off"}} from the matrix's `cat:KEY:CH` / `type:KEY:CH` fields."""
    wanted: dict[tuple[str, str], dict[str, str]] = {}
    errors: list[str] = []
    for name in data:
        if not (name.startswith("cat:") or name.startswith("type:")):
            continue
        kind, _, rest = name.partition(":")
        key, _, channel = rest.rpartition(":")
        value = data.get(name, "")
        if channel not in MATRIX_CHANNELS or value not in CELL_CHOICES or not key:
            errors.append(f"Unknown setting {name!r}.")
            continue
        wanted.setdefault((kind, key), {})[channel] = value
    if errors:
        raise DomainValidationError({"preferences": errors})
    return wanted


class QuietHoursForm(forms.Form):
    enabled = forms.BooleanField(required=False)
    days = forms.TypedMultipleChoiceField(choices=DAY_CHOICES, coerce=int, required=False,
                                          error_messages={"invalid_choice": "Days are Monday to Sunday."})
    start = forms.TimeField(required=False, error_messages={"invalid": "A time such as 22:00."})
    end = forms.TimeField(required=False, error_messages={"invalid": "A time such as 07:00."})
    default_action = forms.ChoiceField(choices=QuietHoursAction.choices, required=False)
    allow_critical = forms.BooleanField(required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for channel in Channel.values:
            self.fields[f"rule:{channel}"] = forms.ChoiceField(choices=[("", "as by default"), *QuietHoursAction.choices], required=False)

    def clean(self):
        data = super().clean() or {}
        if data.get("enabled") and not self.errors and (data.get("start") is None or data.get("end") is None):
            self.add_error("start", "Give the start and the end of the quiet time.")
        return data

    def service_kwargs(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "enabled": data["enabled"], "days": data["days"], "start": data["start"], "end": data["end"],
            "default_action": data["default_action"] or QuietHoursAction.HOLD, "allow_critical": data["allow_critical"],
            "channel_rules": {channel: data[f"rule:{channel}"] for channel in Channel.values if data.get(f"rule:{channel}")},
        }


class DndForm(forms.Form):
    action = forms.ChoiceField(choices=[("set", "Turn on"), ("clear", "Turn off")], required=False)
    until = forms.DateTimeField(required=False, input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"],
                                error_messages={"invalid": "Pick a date and time."})

    def clean(self):
        data = super().clean() or {}
        if data.get("action") != "clear" and not self.errors and data.get("until") is None:
            self.add_error("until", "Pick a date and time.")
        return data

    def service_kwargs(self) -> dict[str, Any]:
        # The field is a wall-clock time in the person's zone: the service attaches it.
        until = self.cleaned_data["until"]
        if self.cleaned_data.get("action") == "clear":
            return {"until": None}
        return {"until": until.replace(tzinfo=None) if until is not None else None}


class DigestForm(forms.Form):
    frequency = forms.ChoiceField(choices=DigestFrequency.choices,
                                  error_messages={"invalid_choice": f"Choose one of {', '.join(DigestFrequency.values)}."})
    # TypedChoiceField takes any value as empty_value (here the default hour); the stubs say str.
    hour = forms.TypedChoiceField(choices=[(h, f"{h:02d}:00") for h in range(24)], coerce=int, required=False,
                                  empty_value=8,  # type: ignore[arg-type]
                                  error_messages={"invalid_choice": "An hour from 0 to 23."})
    day_of_week = forms.TypedChoiceField(choices=DAY_CHOICES, coerce=int, required=False,
                                         empty_value=0,  # type: ignore[arg-type]
                                         error_messages={"invalid_choice": "A day from Monday to Sunday."})

    def service_kwargs(self) -> dict[str, Any]:
        return {name: self.cleaned_data[name] for name in ("frequency", "hour", "day_of_week")}
