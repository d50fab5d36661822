"""What Amazon SES and SNS records share: whose credentials sign a request, and where it may go.

boto3 without explicit keys falls back to its default chain (environment, shared files, the
instance role): the platform's own AWS identity. That is right for a request to Amazon's own
endpoints on the platform's behalf, never for a record whose `endpoint_url` points elsewhere —
the signed request would hand the platform's access key id and a valid signature to whoever
runs that endpoint. So a custom endpoint signs with the record's explicit keys or not at all,
and an organization may only name an Amazon endpoint unless platform staff set it.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from common.exceptions import ProviderPermanentError

AWS_DOMAINS = ("amazonaws.com", "amazonaws.com.cn", "api.aws")


def aws_endpoint_is_amazon(url: str) -> bool:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 — raises on a malformed port
    except ValueError:
        return False
    host = (parts.hostname or "").lower().rstrip(".")
    return parts.scheme == "https" and any(host == d or host.endswith("." + d) for d in AWS_DOMAINS)


def aws_session_params(provider: Any) -> dict[str, Any]:
    """boto3 Session keyword arguments for this provider: explicit keys whenever a custom
    endpoint is configured (refused without them), the default chain only for Amazon's own."""
    params: dict[str, Any] = {"region_name": provider.setting("region", "us-east-1")}
    key_id = provider.setting("access_key_id")
    secret = provider.setting("secret_access_key")
    if key_id and secret:
        params["aws_access_key_id"] = key_id
        params["aws_secret_access_key"] = secret
        if provider.setting("session_token"):
            params["aws_session_token"] = provider.setting("session_token")
    elif provider.config.get("endpoint_url"):
        raise ProviderPermanentError(
            f"{provider.code}: a custom endpoint_url needs the record's own access_key_id and secret_access_key.",
            code="configuration",
        )
    return params
