"""The person's own pages: profile, preference center and dashboard."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from accounts.selectors import user_primary_organization
from accounts.services import user_profile_update
from common.exceptions import ValidationError as DomainValidationError

from .forms import ProfileForm
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
