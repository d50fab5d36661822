"""Forms of the people pages; they validate input and hand it to services."""
from __future__ import annotations

import zoneinfo

from django import forms
from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.auth.forms import PasswordResetForm
from django.contrib.auth.tokens import default_token_generator
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts.models import User

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
        data = super().clean()
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
