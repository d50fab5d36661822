"""Google Workspace's SMTP relay (smtp-relay.gmail.com): an SMTP preset.

Google accepts relayed mail from a Workspace domain when the relay setting allows the sender
by IP address or by SMTP AUTH with a Workspace account (an app password); either way on port
587 with STARTTLS required, and the client must greet with a real host name (EHLO), not
"localhost". https://support.google.com/a/answer/2956491
"""
from __future__ import annotations

from typing import Any

from ..registry import register
from .smtp import SmtpEmailProvider

RELAY_DEFAULTS: dict[str, Any] = {"host": "smtp-relay.gmail.com", "port": 587, "use_tls": True, "use_ssl": False}


@register
class GoogleWorkspaceRelayProvider(SmtpEmailProvider):
    """Config: from_email (an address of the Workspace domain), helo_name (default the site's
    host name); host/port/use_tls only to point elsewhere (a test peer). Credentials (when the
    relay requires SMTP AUTH): username, password (an app password)."""

    code = "google_workspace_relay"
    name = "Google Workspace SMTP relay"
    required_params = ("from_email",)
    env_credentials = {"username": "GOOGLE_RELAY_USERNAME", "password": "GOOGLE_RELAY_PASSWORD"}

    def __init__(self, *, config: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(config={**RELAY_DEFAULTS, **(config or {})}, **kwargs)
        if not self.config.get("helo_name"):
            from urllib.parse import urlsplit

            from django.conf import settings

            self.config["helo_name"] = urlsplit(getattr(settings, "SITE_URL", "") or "").hostname or ""

    @classmethod
    def config_errors(cls, config: dict[str, Any]) -> list[str]:
        if config.get("use_ssl") and int(config.get("port") or 587) == 587:
            return ["The relay speaks STARTTLS on 587 (use_tls); use port 465 for use_ssl."]
        return []
