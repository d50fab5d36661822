"""The one-click unsubscribe target (RFC 8058) of the links providers put in emails."""
from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from common.exceptions import ValidationError
from notifications.enums import Channel, EventCategory

from notifications.engine.unsubscribe import unsubscribe_apply
from providers.unsubscribe import unsubscribe_token_read


@csrf_exempt  # RFC 8058: mail clients POST "List-Unsubscribe=One-Click" without any session
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    try:
        data = unsubscribe_token_read(token)
    except ValidationError as exc:
        return render(request, "notifications/unsubscribe.html", {"error": exc.detail}, status=400)
    context = {
        "channel_label": Channel(data["c"]).label.lower() if data["c"] != Channel.SMS else "SMS",
        "category": data["k"],
        "category_label": EventCategory(data["k"]).label.lower() if data["k"] else "",
    }
    if request.method == "GET":
        # A GET never changes anything: link scanners and prefetchers open every URL.
        return render(request, "notifications/unsubscribe.html", context)
    try:
        unsubscribe_apply(token=token)
    except ValidationError as exc:
        return render(request, "notifications/unsubscribe.html", {"error": exc.detail}, status=400)
    return render(request, "notifications/unsubscribe.html", {**context, "done": True})
