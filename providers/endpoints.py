"""Where a provider record may send its requests: an organization's record may name its own
endpoints (a regional API, its SMTP relay), checked when saved (`endpoint_errors`) and again,
resolved, before each use (`endpoints_refuse_internal`)."""
from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from .secrets import CONNECTION_PARAMS

logger = logging.getLogger(__name__)


class EndpointRefused(ImproperlyConfigured):
    """An organization's record points at a non-public address: treated as misconfigured."""


def endpoints_refuse_internal(binding: Any, *, config: dict[str, Any], credentials: dict[str, Any]) -> None:
    """An organization's record may name its own endpoints (a regional API, its SMTP relay), but
    they must resolve to public addresses now, not only when saved: the provider (and its health
    check) would otherwise probe the platform's network for whoever set the record."""
    from common import outbound

    for key in CONNECTION_PARAMS:
        for source in (config, credentials):
            value = source.get(key)
            if value in (None, ""):
                continue
            url = str(value) if key.endswith("_url") else f"https://{value}"
            try:
                outbound.url_resolve_public(url, schemes=("https", "http"))
            except outbound.OutboundRefused as exc:
                logger.warning("provider %s (%s): %s refused: %s", binding.record_id, binding.code, key, exc.reason)
                raise EndpointRefused(f"Provider {binding.code}: its {key} cannot be used.") from None


def endpoint_errors(cls, *, config: dict[str, Any], credentials: dict[str, Any]) -> list[str]:
    """Where an organization admin may send a provider's requests (and its credentials): https
    URLs with a valid port, no literal internal address, and the service's own domains when
    the provider declares them (`endpoint_domains`: Amazon's for SES and SNS)."""
    from common import outbound

    schemes = ("https", "http") if outbound.loopback_allowed() else ("https",)
    problems: list[str] = []
    for key in CONNECTION_PARAMS:
        for source in (config, credentials):
            value = source.get(key)
            if value in (None, ""):
                continue
            url = str(value) if key.endswith("_url") else f"https://{value}"
            try:
                outbound.url_check_syntax(url, schemes=schemes)
            except outbound.OutboundRefused as exc:
                problems.append(f"{key}: {exc.reason}.")
                continue
            if key.endswith("_url") and cls.endpoint_domains and not on_domains(url, cls.endpoint_domains):
                problems.append(f"{key}: only the service's own endpoints (https://*.{cls.endpoint_domains[0]}) may be "
                                "set by an organization; ask platform staff for another.")
    return problems


def on_domains(url: str, domains: tuple[str, ...]) -> bool:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = (parts.hostname or "").lower().rstrip(".")
    return parts.scheme == "https" and any(host == d or host.endswith("." + d) for d in domains)
