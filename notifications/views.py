"""Web pages of the inbox side: the inbox and, for development, the outbox of the embedded providers."""
from __future__ import annotations

import email
import email.policy
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

OUTBOX_LIMIT = 50


@login_required
def inbox_page(request: HttpRequest) -> HttpResponse:
    return render(request, "notifications/inbox.html", {"vapid_public_key": settings.VAPID_PUBLIC_KEY})


def _file_backend_messages(limit: int) -> list[dict[str, Any]]:
    """Emails written by Django's file backend (one .log file per connection, messages separated by dashes)."""
    if settings.EMAIL_BACKEND != "django.core.mail.backends.filebased.EmailBackend":
        return []
    folder = Path(settings.EMAIL_FILE_PATH)
    if not folder.is_dir():
        return []
    files = sorted(folder.glob("*.log"), key=lambda p: p.stat().st_mtime, reverse=True)
    messages: list[dict[str, Any]] = []
    for path in files:
        # Bytes, not text: the backend writes UTF-8 bodies as 8bit, which the str parser would
        # turn into replacement characters ("escaladé" read as "escalad�").
        for chunk in reversed(path.read_bytes().split(b"-" * 79)):
            chunk = chunk.strip()
            if not chunk:
                continue
            parsed = email.message_from_bytes(chunk, policy=email.policy.default)
            text_part = parsed.get_body(preferencelist=("plain",))
            html_part = parsed.get_body(preferencelist=("html",))
            messages.append({
                "to": parsed.get("To", ""), "subject": parsed.get("Subject", ""), "date": parsed.get("Date", ""),
                "text": text_part.get_content() if text_part else "",
                "has_html": html_part is not None,
                "html": html_part.get_content() if html_part is not None else "",
            })
            if len(messages) >= limit:
                return messages
    return messages


def outbox_page(request: HttpRequest) -> HttpResponse:
    """Every organization's sent messages, in clear: a development aid (DEBUG, staff) or a
    superuser's; otherwise it does not exist."""
    from providers.models import ProviderOutbox

    user = request.user
    if not user.is_authenticated:
        if not settings.DEBUG:
            raise Http404()
        return redirect_to_login(request.get_full_path())
    if not (user.is_active and (user.is_superuser or (settings.DEBUG and user.is_staff))):
        raise Http404()

    context = {
        "emails": _file_backend_messages(OUTBOX_LIMIT),
        "email_backend": settings.EMAIL_BACKEND.rsplit(".", 2)[-2],
        "logged": list(ProviderOutbox.objects.order_by("-created_at", "-pk")[:OUTBOX_LIMIT]),
    }
    return render(request, "notifications/outbox.html", context)
