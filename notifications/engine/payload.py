"""A delivery's channel payload (seed 004 §4.3–4.8): the merged channel options, turned into
what the provider call carries.

``delivery_options`` merges, for one delivery, the organization's channel settings, the
template's channel options (``TemplateChannel.extra``) and the event's ``channel_options`` (the
event wins; see ``channel_options``), renders the template-side WhatsApp parameters with the
event's variables, and resolves what must be fetched (email attachments by URL, through the
SSRF-safe client of ``common.outbound``). ``message_options_apply`` sets them on the
``OutboundMessage``: typed fields where the contract has them, the rest in ``message.options``
for the providers that understand them.

A payload that cannot be sent whatever happens (an SMS over its ``max_segments``, an
attachment of the wrong type or size) is a ``PayloadError``: the delivery fails permanently
with that reason. A URL that does not answer now is a ``ProviderTransientError``: retried later.
"""
from __future__ import annotations

import base64
import logging
from collections.abc import Iterable, Mapping
from typing import Any

import requests

from common import outbound
from common.exceptions import ProviderTransientError, ValidationError
from notifications.engine import rendering
from notifications.engine.channel_options import (
    ATTACHMENT_CONTENT_TYPES,
    attachment_max_bytes,
    attachments_total_max_bytes,
    channel_options_merge,
)
from notifications.enums import Channel

logger = logging.getLogger(__name__)

ATTACHMENT_FETCH_TIMEOUT = 10.0
DEFAULT_REDIAL_DELAY = 120  # seconds before calling again after no answer or busy
# Template-side WhatsApp parameters (shipped templates): sandboxed template strings per component.
_WA_TEMPLATE_PARAMETERS = (("header_parameters", "header"), ("body_parameters", "body"), ("button_parameters", "button"))


class PayloadError(ValidationError):
    """This delivery's payload can never be sent as it is."""

    def __init__(self, detail: str, *, code: str = "payload") -> None:
        super().__init__(detail, code=code)


def organization_channel_settings(organization_ids: Iterable[int]) -> dict[tuple[int | None, str], dict[str, Any]]:
    """``ChannelConfiguration.settings`` of the platform (None) and of these organizations, in one
    query (or none: engine.config_memo); the caller gets its own copy."""
    from django.db.models import Q

    from notifications.models import ChannelConfiguration

    from .config_memo import config_read

    ids = frozenset(organization_ids)

    def read() -> dict[tuple[int | None, str], dict[str, Any]]:
        rows = ChannelConfiguration.objects.filter(Q(organization__isnull=True) | Q(organization_id__in=set(ids)))
        return {(row.organization_id, row.channel): dict(row.settings or {})
                for row in rows.only("organization_id", "channel", "settings")}

    return {key: dict(value) for key, value in config_read(("channel_settings", ids), read).items()}


def _settings_for(all_settings: Mapping[tuple[int | None, str], dict], organization_id: int, channel: str) -> dict[str, Any]:
    merged = dict(all_settings.get((None, channel), {}))
    merged.update(all_settings.get((organization_id, channel), {}))
    return merged


def _whatsapp_components(options: dict[str, Any], context: Mapping[str, Any]) -> None:
    """The template's ``*_parameters`` rendered with the event's variables into components, unless
    the event gave its own components (Meta refuses a template message missing its parameters)."""
    rendered: list[dict[str, Any]] = []
    for key, component_type in _WA_TEMPLATE_PARAMETERS:
        sources = options.pop(key, None)
        if not sources:
            continue
        parameters = [{"type": "text", "text": rendering.template_render(str(s), context, html=False) or "-"} for s in sources]
        if component_type == "button":
            for index, parameter in enumerate(parameters):
                rendered.append({"type": "button", "sub_type": "url", "index": index, "parameters": [parameter]})
        else:
            rendered.append({"type": component_type, "parameters": parameters})
    if rendered and not options.get("template_components"):
        options["template_components"] = rendered


def delivery_options(
    *, channel: str, organization_id: int, event_options: Mapping[str, Any] | None, template_extra: Mapping[str, Any] | None,
    all_settings: Mapping[tuple[int | None, str], dict], context: Mapping[str, Any],
) -> dict[str, Any]:
    """The merged options of one delivery (organization ← template ← event)."""
    options = channel_options_merge(
        channel=channel, organization_settings=_settings_for(all_settings, organization_id, channel),
        template_extra=template_extra, event_options=event_options,
    )
    if channel == Channel.WHATSAPP:
        _whatsapp_components(options, context)
    return options


# --- checks that only the rendered content allows ---------------------------------------------


def sms_segments_check(text: str, options: Mapping[str, Any]) -> None:
    """Refuse an SMS longer than its ``max_segments`` (a preview shows the same error)."""
    limit = options.get("max_segments")
    if not limit:
        return
    if not isinstance(limit, int) or isinstance(limit, bool):
        raise PayloadError(f"max_segments must be a number, not {limit!r}.", code="options")
    info = rendering.sms_segments(text)
    if info["segments"] > int(limit):
        raise PayloadError(
            f"The SMS needs {info['segments']} segments ({info['characters']} characters, {info['encoding']}) "
            f"but max_segments is {int(limit)}.", code="too_many_segments",
        )


def _fetch(url: str, *, limit: int) -> tuple[bytes, str]:
    """GET a tenant-chosen URL: public addresses only, no redirect, at most ``limit`` bytes."""
    try:
        target = outbound.url_resolve_public(url)
    except outbound.OutboundRefused as exc:
        logger.info("attachment URL refused: %s", exc.reason)
        raise PayloadError(f"The attachment URL {url!r} cannot be used.", code="attachment_refused") from None
    try:
        with outbound.pinned_session(target) as session, session.get(url, stream=True, timeout=ATTACHMENT_FETCH_TIMEOUT) as response:
            if response.status_code >= 500 or response.status_code == 429:
                raise ProviderTransientError(f"The attachment URL answered HTTP {response.status_code}.", code="attachment_unavailable")
            if response.status_code >= 300:
                raise PayloadError(f"The attachment URL answered HTTP {response.status_code}.", code="attachment_unavailable")
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > limit:
                raise PayloadError(f"The attachment at {url!r} is larger than {limit} bytes.", code="attachment_too_large")
            body = bytearray()
            for chunk in response.iter_content(64 * 1024):
                body.extend(chunk)
                if len(body) > limit:
                    raise PayloadError(f"The attachment at {url!r} is larger than {limit} bytes.", code="attachment_too_large")
            return bytes(body), (response.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    except requests.RequestException as exc:
        raise ProviderTransientError(f"The attachment URL could not be fetched: {exc.__class__.__name__}.",
                                     code="attachment_unavailable") from None


def email_attachments_load(options: Mapping[str, Any]) -> list[Any]:
    """The email's attachments as provider ``Attachment``s: decoded, or fetched and checked."""
    from providers.base import Attachment

    out: list[Attachment] = []
    total = 0
    for item in options.get("attachments") or []:
        declared = str(item.get("content_type") or "").lower()
        if declared not in ATTACHMENT_CONTENT_TYPES:
            raise PayloadError(f"Attachment {item.get('filename')!r}: content type {declared!r} is not accepted.",
                               code="attachment_type")
        if item.get("content_base64"):
            content = base64.b64decode(item["content_base64"])
        else:
            content, served = _fetch(str(item.get("url") or ""), limit=attachment_max_bytes())
            if served and served != declared and not (served == "application/octet-stream"):
                raise PayloadError(f"Attachment {item.get('filename')!r} is served as {served!r}, not {declared!r}.",
                                   code="attachment_type")
        if len(content) > attachment_max_bytes():
            raise PayloadError(f"Attachment {item.get('filename')!r} is larger than {attachment_max_bytes()} bytes.",
                               code="attachment_too_large")
        total += len(content)
        if total > attachments_total_max_bytes():
            raise PayloadError(f"The attachments are larger than {attachments_total_max_bytes()} bytes in total.",
                               code="attachment_too_large")
        out.append(Attachment(filename=str(item["filename"]), content=content, mimetype=declared,
                              content_id=item.get("content_id") or None))
    return out


# --- onto the provider message ------------------------------------------------------------------

_TYPED = {
    Channel.EMAIL: ("reply_to", "track_opens", "track_clicks"),
    Channel.WHATSAPP: ("template_name", "template_language", "template_components"),
    Channel.VOICE: ("audio_url", "require_acknowledgment", "acknowledgment_digit"),
}


def message_options_apply(message: Any, options: Mapping[str, Any], *, attachments: list[Any] | None = None) -> None:
    """Set the merged options on an ``OutboundMessage`` (typed fields first, the rest in ``options``)."""
    channel = message.channel
    for key in _TYPED.get(channel, ()):
        if key in options and options[key] not in (None, ""):
            setattr(message, key, options[key])
    if channel == Channel.EMAIL:
        message.cc = list(options.get("cc") or [])
        message.bcc = list(options.get("bcc") or [])
        message.headers.update(options.get("headers") or {})
        if attachments:
            message.attachments = list(attachments)
    elif channel == Channel.VOICE:
        message.voice_language = str(options.get("language") or message.voice_language)
        message.voice_name = str(options.get("voice") or message.voice_name)
    message.options = {k: v for k, v in options.items() if k not in ("attachments", "headers", "cc", "bcc")}


def delivery_payload_prepare(
    content: dict[str, Any], *, channel: str, organization_id: int, event_options: Mapping[str, Any] | None,
    all_settings: Mapping[tuple[int | None, str], dict], context: Mapping[str, Any], private_links: bool = False,
) -> None:
    """Put the delivery's merged ``options`` (and loaded ``attachments``) into its rendered content.

    ``private_links``: the content carries sealed links (an invitation's): click tracking stays off
    whatever the settings say, so such a link never goes through the provider's redirector.

    Raises ``PayloadError`` (never sendable) or ``ProviderTransientError`` (an attachment URL down).
    """
    try:
        options = delivery_options(channel=channel, organization_id=organization_id, event_options=event_options,
                                   template_extra=content.get("extra"), all_settings=all_settings, context=context)
    except (TypeError, ValueError, AttributeError) as exc:
        # Options stored before they were checked (a template's, an organization's): this delivery fails, not the batch.
        raise PayloadError(f"The {channel} channel options cannot be used: {exc.__class__.__name__}.", code="options") from None
    content["options"] = options
    if channel == Channel.EMAIL and private_links:
        options["track_clicks"] = False
    if channel == Channel.VOICE:
        # Stored with the rendered content: the digit the callee must press, and the redial plan
        # applied when the call reports no answer or busy (notifications.engine.provider_events).
        if options.get("require_acknowledgment") and options.get("acknowledgment_digit"):
            content["acknowledgment_digit"] = str(options["acknowledgment_digit"])[:1]
        if options.get("max_retries"):
            content["voice_retry"] = {"max_retries": int(options["max_retries"]),
                                      "retry_delay": int(options.get("retry_delay") or DEFAULT_REDIAL_DELAY)}
    if channel == Channel.SMS:
        sms_segments_check(content.get("body") or "", options)
    elif channel == Channel.EMAIL and options.get("attachments"):
        content["attachments"] = email_attachments_load(options)


# Keys of a delivery's content that are not stored in ``NotificationDelivery.rendered``.
NOT_STORED = frozenset({"extra", "options", "attachments"})


# --- in-app: the inbox item's fields ---------------------------------------------------------------

IN_APP_FIELDS = ("type", "actions", "group_key", "expires_at", "persistent", "icon", "image_url", "metadata", "duration")


def inbox_fields(notification: Any, options: Mapping[str, Any]) -> dict[str, Any]:
    """Columns of the inbox item from its merged IN_APP options (stored when it is delivered)."""
    from django.utils.dateparse import parse_datetime

    in_app = {key: options[key] for key in IN_APP_FIELDS if key in options}
    stored = dict(notification.channel_options or {})
    stored[Channel.IN_APP] = in_app
    expires = in_app.get("expires_at")
    return {
        "channel_options": stored,
        "group_key": str(in_app.get("group_key") or "")[:255],
        "inbox_expires_at": parse_datetime(expires) if isinstance(expires, str) else None,
        "image_url": str(in_app.get("image_url") or notification.image_url or "")[:500],
    }
