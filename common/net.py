"""The client's address, as far as the deployment's proxies can vouch for it."""
from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    """The address of the client that made ``request``.

    With ``TRUSTED_PROXY_COUNT = n`` (n proxies in front of the application, each appending the
    address it saw to ``X-Forwarded-For``), the client is the n-th entry from the right; what a
    client wrote itself further left is never believed. With 0 (the default) the header is
    ignored and ``REMOTE_ADDR`` is the client. DRF's throttles use the same rule (``NUM_PROXIES``).
    """
    remote = request.META.get("REMOTE_ADDR") or "unknown"
    trusted = int(getattr(settings, "TRUSTED_PROXY_COUNT", 0) or 0)
    if trusted <= 0:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if not forwarded:
        return remote
    return forwarded[-min(trusted, len(forwarded))][:64]
