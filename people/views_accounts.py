"""Account pages: sign-up, address verification and password reset (Django's own auth views).

Django's views over django-allauth: the project already signs in with them, the flows needed
here (sign-up, reset, verification) are a few small views, and every email they send must go
through the platform's providers — with allauth that means overriding its adapter and most of
its templates anyway, for settings and social login machinery nobody here uses.
"""
from __future__ import annotations

import logging

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from accounts.services import user_email_verify, user_ensure_personal_organization
from common.exceptions import TroubadourError
from common.exceptions import ValidationError as DomainValidationError
from notifications.services import event_emit

from common.net import client_ip

from .forms import PlatformPasswordResetForm, SignupForm
from .limits import RESET_PER_EMAIL, RESET_PER_IP, SIGNUP_PER_IP, limit_hit, wait_words
from .services import person_signup
from .verification import verification_mode, verification_read, verification_send

logger = logging.getLogger(__name__)


def _next_url(request: HttpRequest, default: str) -> str:
    wanted = request.POST.get("next") or request.GET.get("next") or ""
    if wanted and url_has_allowed_host_and_scheme(wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return wanted
    return default


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("home")
    form = SignupForm(request.POST or None)
    mode = verification_mode()
    if request.method == "POST":
        wait = limit_hit(SIGNUP_PER_IP, client_ip(request))
        if wait is not None:
            form.is_valid()
            form.add_error(None, f"Too many accounts were created from your network in the last hour. "
                                 f"Please try again in {wait_words(wait)}.")
            response = render(request, "accounts/signup.html", {"form": form, "next": _next_url(request, "")}, status=429)
            response["Retry-After"] = str(wait)
            return response
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            user = person_signup(
                username=data["username"], email=data["email"], password=data["password1"],
                display_name=data.get("display_name", ""), active=mode != "mandatory",
            )
        except DomainValidationError as exc:
            for field, errors in (exc.detail.items() if isinstance(exc.detail, dict) else [(None, exc.detail)]):
                form.add_error(field if field in form.fields else None, errors)
        else:
            if mode != "none":
                verification_send(user=user)
            if mode == "mandatory":
                return render(request, "accounts/signup_check_email.html", {"email": user.email})
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, "Welcome to Troubadour! Add your phone and time zone so notifications reach you at the right time.")
            return redirect(_next_url(request, str(reverse_lazy("me-profile"))))
    return render(request, "accounts/signup.html", {"form": form, "next": _next_url(request, "")},
                  status=400 if form.errors else 200)


def verify_email(request: HttpRequest, token: str) -> HttpResponse:
    found = verification_read(token)
    user = user_email_verify(user_id=found[0], email=found[1]) if found else None
    if user is None:
        return render(request, "accounts/verify_email.html", {"ok": False}, status=400)
    return render(request, "accounts/verify_email.html", {"ok": True, "verified_user": user})


@require_http_methods(["POST"])
def resend_verification(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated and request.user.email_verified_at is None:
        verification_send(user=request.user)
        messages.success(request, f"We sent a new confirmation link to {request.user.email}.")
    return redirect("me-profile")


class PasswordResetView(auth_views.PasswordResetView):
    """Django's view; every request counts against the client's address and the email address.
    The count is of requests, not of accounts: the answer says nothing about who has one."""

    form_class = PlatformPasswordResetForm
    template_name = "accounts/password_reset.html"

    def form_valid(self, form):
        wait = limit_hit(RESET_PER_IP, client_ip(self.request))
        if wait is not None:
            form.add_error(None, f"Too many password reset requests from your network. Please try again in {wait_words(wait)}.")
        else:
            wait = limit_hit(RESET_PER_EMAIL, form.cleaned_data["email"])
            if wait is not None:
                form.add_error("email", f"We already sent several links to this address in the last hour. Check your inbox "
                                        f"and spam folder, or try again in {wait_words(wait)}.")
        if wait is not None:
            response = self.render_to_response(self.get_context_data(form=form), status=429)
            response["Retry-After"] = str(wait)
            return response
        return super().form_valid(form)


password_reset = PasswordResetView.as_view()
password_reset_done = auth_views.PasswordResetDoneView.as_view(template_name="accounts/password_reset_done.html")


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "accounts/password_reset_confirm.html"

    def form_valid(self, form):
        response = super().form_valid(form)
        user = form.user
        try:
            event_emit(
                organization=user_ensure_personal_organization(user=user), type="security.password_changed",
                recipient_ids=[user.pk], actor={"type": "system", "name": "Troubadour"},
                data={"changedAt": timezone.now().strftime("%Y-%m-%d %H:%M UTC"), "ipAddress": self.request.META.get("REMOTE_ADDR", "")},
                source="accounts",
            )
        except TroubadourError:
            logger.warning("password change of user %s not notified", user.pk)
        return response


password_reset_confirm = PasswordResetConfirmView.as_view()
password_reset_complete = auth_views.PasswordResetCompleteView.as_view(template_name="accounts/password_reset_complete.html")
