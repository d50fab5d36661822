"""Channel options of an event (seed 004 §4.3–4.8): validated at intake, merged at send.

An event may carry ``channel_options`` keyed by channel (API.md "Channel options on an event").
They are checked here before anything is saved — an unknown channel or key, a wrong type, a
script link, an oversized attachment is a 400 naming it — and stored on each notification.
When a delivery is rendered, the options of its channel are merged over the organization's
channel settings (``ChannelConfiguration.settings``) and the template's own ones
(``TemplateChannel.extra``): the event wins, then the template, then the organization.
"""
from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.validators import validate_email
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from common.exceptions import ValidationError
from common.links import link_problem
from notifications.enums import Channel

IN_APP_TYPES = ("toast", "banner", "silent")
IN_APP_ACTIONS = ("navigate", "dismiss", "custom")
PUSH_PRIORITIES = ("normal", "high")
WHATSAPP_COMPONENT_TYPES = ("header", "body", "button")
WHATSAPP_PARAMETER_TYPES = ("text", "image", "document", "video", "currency", "date_time", "payload")
WHATSAPP_MEDIA_TYPES = ("image", "document", "video")
WHATSAPP_BUTTON_TYPES = ("reply", "url")
DTMF_DIGITS = set("0123456789*#")

# Content types an email may carry as an attachment (checked at intake and against what a URL serves).
ATTACHMENT_CONTENT_TYPES = frozenset({
    "application/pdf", "application/zip", "application/json", "application/xml",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/msword", "application/vnd.ms-excel", "application/vnd.oasis.opendocument.text",
    "text/plain", "text/csv", "text/calendar", "text/html",
    "image/png", "image/jpeg", "image/gif", "image/webp",
})
MAX_ATTACHMENTS = 10
MAX_EMAIL_COPIES = 20  # cc + bcc addresses each
MAX_ACTIONS = 5
MAX_BUTTONS = 3
# Custom email headers: X- names only, never ours (X-Troubadour-*), one line each.
HEADER_NAME = re.compile(r"X-[A-Za-z0-9][A-Za-z0-9-]{0,60}")
RESERVED_HEADER_PREFIX = "x-troubadour-"
SENDER_ID = re.compile(r"\+?[0-9]{3,15}|[A-Za-z0-9 ]{1,11}")


def attachment_max_bytes() -> int:
    return int(getattr(settings, "EMAIL_ATTACHMENT_MAX_BYTES", 5 * 1024 * 1024))


def attachments_total_max_bytes() -> int:
    return int(getattr(settings, "EMAIL_ATTACHMENTS_TOTAL_MAX_BYTES", 10 * 1024 * 1024))


# --- field checks: each returns the cleaned value or raises _Bad -------------------------------


class _Bad(Exception):
    def __init__(self, message: str | dict | list) -> None:
        super().__init__(message)
        self.message = message


def _str(max_length: int = 255, *, blank: bool = False) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise _Bad("Expected a string.")
        if not blank and not value.strip():
            raise _Bad("May not be blank.")
        if len(value) > max_length:
            raise _Bad(f"At most {max_length} characters.")
        return value
    return check


def _one_line(max_length: int = 255) -> Callable[[Any], str]:
    inner = _str(max_length)

    def check(value: Any) -> str:
        value = inner(value)
        if "\r" in value or "\n" in value:
            raise _Bad("Must be one line.")
        return value
    return check


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Bad("Expected true or false.")
    return value


def _int(minimum: int, maximum: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Bad("Expected an integer.")
        if not minimum <= value <= maximum:
            raise _Bad(f"Must be between {minimum} and {maximum}.")
        return value
    return check


def _choice(choices: tuple[str, ...]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in choices:
            raise _Bad(f"Must be one of: {', '.join(choices)}.")
        return value
    return check


def _link(value: Any) -> str:
    value = _str(2000)(value)
    problem = link_problem(value)
    if problem:
        raise _Bad(problem)
    return value.strip()


def _https_url(value: Any) -> str:
    value = _link(value)
    if not value.lower().startswith(("https://", "http://")):
        raise _Bad("Must be an absolute http(s) URL.")
    return value


def _object(max_keys: int = 50) -> Callable[[Any], dict]:
    def check(value: Any) -> dict:
        if not isinstance(value, Mapping):
            raise _Bad("Expected an object.")
        if len(value) > max_keys:
            raise _Bad(f"At most {max_keys} keys.")
        return dict(value)
    return check


def _email(value: Any) -> str:
    value = _one_line(320)(value)
    try:
        validate_email(value)
    except DjangoValidationError:
        raise _Bad(f"{value!r} is not a valid email address.") from None
    return value


def _emails(value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise _Bad("Expected a list of email addresses.")
    if len(value) > MAX_EMAIL_COPIES:
        raise _Bad(f"At most {MAX_EMAIL_COPIES} addresses.")
    return [_email(v) for v in value]


def _future_datetime(value: Any) -> str:
    parsed = parse_datetime(value) if isinstance(value, str) else value if isinstance(value, datetime) else None
    if parsed is None:
        raise _Bad("Expected an ISO 8601 date and time.")
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, timezone.get_current_timezone())
    if parsed <= timezone.now():
        raise _Bad("Must be in the future.")
    return parsed.astimezone(UTC).isoformat()


def _list_of(check: Callable[[Any], Any], *, max_items: int) -> Callable[[Any], list]:
    def run(value: Any) -> list:
        if not isinstance(value, list):
            raise _Bad("Expected a list.")
        if len(value) > max_items:
            raise _Bad(f"At most {max_items} items.")
        out, errors = [], {}
        for index, item in enumerate(value):
            try:
                out.append(check(item))
            except _Bad as exc:
                errors[str(index)] = exc.message if isinstance(exc.message, (dict, list)) else [exc.message]
        if errors:
            raise _Bad(errors)
        return out
    return run


def _fields(spec: Mapping[str, Callable[[Any], Any]], *, required: tuple[str, ...] = (),
            after: Callable[[dict], None] | None = None) -> Callable[[Any], dict]:
    """An object whose keys are exactly those of ``spec`` (unknown ones are named)."""

    def check(value: Any) -> dict:
        if not isinstance(value, Mapping):
            raise _Bad("Expected an object.")
        errors: dict[str, Any] = {}
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key not in spec:
                errors[str(key)] = [f"Unknown option. Allowed: {', '.join(spec)}."]
                continue
            if item is None:
                continue
            try:
                out[key] = spec[key](item)
            except _Bad as exc:
                errors[key] = exc.message if isinstance(exc.message, (dict, list)) else [exc.message]
        for key in required:
            if key not in out and key not in errors:
                errors[key] = ["This field is required."]
        if not errors and after is not None:
            try:
                after(out)
            except _Bad as exc:
                errors.update(exc.message if isinstance(exc.message, dict) else {"non_field_errors": [exc.message]})
        if errors:
            raise _Bad(errors)
        return out
    check.keys = tuple(spec)  # type: ignore[attr-defined]
    return check


# --- per channel -------------------------------------------------------------------------------


def _action_after(action: dict) -> None:
    if action.get("action") == "navigate" and not action.get("url"):
        raise _Bad({"url": ["A navigate action needs a url."]})


_IN_APP_ACTION = _fields({
    "id": _str(64), "label": _str(100), "action": _choice(IN_APP_ACTIONS), "url": _link, "data": _object(),
}, required=("id", "label", "action"), after=_action_after)


def _attachment_after(attachment: dict) -> None:
    sources = [k for k in ("content_base64", "url") if k in attachment]
    if len(sources) != 1:
        raise _Bad("Give exactly one of content_base64 or url.")
    if "content_base64" in attachment:
        try:
            raw = base64.b64decode(attachment["content_base64"], validate=True)
        except (binascii.Error, ValueError):
            raise _Bad({"content_base64": ["Not valid base64."]}) from None
        if len(raw) > attachment_max_bytes():
            raise _Bad({"content_base64": [f"Larger than {attachment_max_bytes()} bytes."]})
        attachment["size"] = len(raw)


def _filename(value: Any) -> str:
    value = _one_line(200)(value)
    if "/" in value or "\\" in value or value.startswith("."):
        raise _Bad("A plain file name, without a path.")
    return value


def _content_type(value: Any) -> str:
    value = _str(100)(value).lower().split(";")[0].strip()
    if value not in ATTACHMENT_CONTENT_TYPES:
        raise _Bad(f"Content type {value!r} is not accepted. Accepted: {', '.join(sorted(ATTACHMENT_CONTENT_TYPES))}.")
    return value


_ATTACHMENT = _fields({
    "filename": _filename, "content_type": _content_type, "content_base64": _str(14_000_000), "url": _https_url,
    "content_id": _one_line(100),
}, required=("filename", "content_type"), after=_attachment_after)


def _attachments(value: Any) -> list[dict]:
    items = _list_of(_ATTACHMENT, max_items=MAX_ATTACHMENTS)(value)
    if sum(a.get("size", 0) for a in items) > attachments_total_max_bytes():
        raise _Bad(f"Attachments larger than {attachments_total_max_bytes()} bytes in total.")
    for item in items:
        item.pop("size", None)
    return items


def _headers(value: Any) -> dict[str, str]:
    value = _object(20)(value)
    errors: dict[str, list[str]] = {}
    for name, text in value.items():
        if not HEADER_NAME.fullmatch(str(name)) or str(name).lower().startswith(RESERVED_HEADER_PREFIX):
            errors[str(name)] = ["Only custom X- headers are accepted (not X-Troubadour-*)."]
        elif not isinstance(text, str) or "\r" in text or "\n" in text or len(text) > 998:
            errors[str(name)] = ["Expected one line of text (at most 998 characters)."]
    if errors:
        raise _Bad(errors)
    return value


def _push_data(value: Any) -> dict[str, str]:
    value = _object(50)(value)
    for key, item in value.items():
        if not isinstance(item, (str, int, float, bool)):
            raise _Bad({str(key): ["Push data values are strings (or numbers, booleans)."]})
    return {str(k): str(v) for k, v in value.items()}


def _badge(value: Any) -> int | str:
    if isinstance(value, int) and not isinstance(value, bool):
        return _int(0, 99_999)(value)
    return _link(value)


def _sender(value: Any) -> str:
    value = _one_line(20)(value)
    if not SENDER_ID.fullmatch(value):
        raise _Bad("An E.164 number or an alphanumeric sender id of at most 11 characters.")
    return value


def _digit(value: Any) -> str:
    if not isinstance(value, str) or len(value) != 1 or value not in DTMF_DIGITS:
        raise _Bad("One of 0-9, * or #.")
    return value


_WA_PARAMETER = _fields({
    "type": _choice(WHATSAPP_PARAMETER_TYPES), "text": _str(1024), "payload": _str(256),
    "image": _fields({"link": _https_url}), "document": _fields({"link": _https_url, "filename": _filename}),
    "video": _fields({"link": _https_url}), "currency": _object(5), "date_time": _object(5),
}, required=("type",))
_WA_COMPONENT = _fields({
    "type": _choice(WHATSAPP_COMPONENT_TYPES), "sub_type": _choice(("quick_reply", "url")), "index": _int(0, 9),
    "parameters": _list_of(_WA_PARAMETER, max_items=10),
}, required=("type",))


def _button_after(button: dict) -> None:
    if button.get("type") == "url" and not button.get("url"):
        raise _Bad({"url": ["A url button needs a url."]})


_WA_BUTTON = _fields({"type": _choice(WHATSAPP_BUTTON_TYPES), "text": _str(25), "url": _https_url, "id": _str(256)},
                     required=("type", "text"), after=_button_after)

CHANNEL_SPECS: dict[str, Callable[[Any], dict]] = {
    Channel.IN_APP: _fields({
        "type": _choice(IN_APP_TYPES), "actions": _list_of(_IN_APP_ACTION, max_items=MAX_ACTIONS),
        "group_key": _one_line(255), "expires_at": _future_datetime, "persistent": _bool, "icon": _link,
        "image_url": _link, "metadata": _object(), "duration": _int(0, 3_600_000),
    }),
    Channel.EMAIL: _fields({
        "cc": _emails, "bcc": _emails, "reply_to": _email, "track_opens": _bool, "track_clicks": _bool,
        "attachments": _attachments, "headers": _headers, "template_id": _one_line(200), "template_data": _object(),
    }),
    Channel.PUSH: _fields({
        "icon": _link, "badge": _badge, "sound": _one_line(100), "click_action": _one_line(500), "data": _push_data,
        "device_tokens": _list_of(_str(4096), max_items=20),
        "android": _fields({"channel_id": _one_line(100), "priority": _choice(PUSH_PRIORITIES), "ttl": _int(0, 2_419_200)}),
        "ios": _fields({"badge": _int(0, 99_999), "sound": _one_line(100), "content_available": _bool}),
        "web": _fields({"require_interaction": _bool, "icon": _link, "badge": _link}),
    }),
    Channel.SMS: _fields({"from": _sender, "max_segments": _int(1, 10), "unicode": _bool}),
    Channel.WHATSAPP: _fields({
        "template_name": _one_line(512), "template_language": _one_line(15),
        "template_components": _list_of(_WA_COMPONENT, max_items=10), "media_url": _https_url,
        "media_type": _choice(WHATSAPP_MEDIA_TYPES), "buttons": _list_of(_WA_BUTTON, max_items=MAX_BUTTONS),
    }),
    Channel.VOICE: _fields({
        "language": _one_line(10), "voice": _one_line(60), "audio_url": _https_url, "require_acknowledgment": _bool,
        "acknowledgment_digit": _digit, "max_retries": _int(0, 5), "retry_delay": _int(30, 3600), "record": _bool,
    }),
}


def channel_options_clean(value: Any) -> dict[str, dict[str, Any]]:
    """The event's ``channel_options``, checked; a ValidationError naming every bad channel or key."""
    if value in (None, {}):
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError({"channel_options": ["Expected an object keyed by channel."]})
    errors: dict[str, Any] = {}
    out: dict[str, dict[str, Any]] = {}
    for channel, options in value.items():
        spec = CHANNEL_SPECS.get(channel)
        if spec is None:
            errors[str(channel)] = [f"Unknown channel. Valid: {', '.join(Channel.values)}."]
            continue
        try:
            cleaned = spec(options)
        except _Bad as exc:
            errors[channel] = exc.message if isinstance(exc.message, (dict, list)) else [exc.message]
            continue
        if cleaned:
            out[channel] = cleaned
    if errors:
        raise ValidationError({"channel_options": errors})
    return out


# Template-only keys of ``TemplateChannel.extra`` (beside the event's option keys): WhatsApp
# parameters as template strings, the shipped voice/push names.
TEMPLATE_ONLY_KEYS: dict[str, tuple[str, ...]] = {
    Channel.WHATSAPP: ("header_parameters", "body_parameters", "button_parameters"),
    Channel.VOICE: ("voice_language", "voice_name"),
    Channel.PUSH: ("require_interaction",),
}


def template_extra_clean(channel: str, extra: Any) -> dict[str, Any]:
    """A template channel's options (``extra``), checked when the template is saved: the event's
    option keys like an event's (an empty value counts as unset), and the template-only keys."""
    if not isinstance(extra, Mapping):
        raise ValidationError({"extra": ["Expected an object."]})
    own = {k: v for k, v in extra.items() if k in TEMPLATE_ONLY_KEYS.get(channel, ())}
    rest = {k: v for k, v in extra.items() if k not in own and v not in ("", None)}
    errors: dict[str, Any] = {}
    for key, value in own.items():
        if key.endswith("_parameters"):
            if not isinstance(value, list) or len(value) > 10 or not all(isinstance(v, str) and len(v) <= 1024 for v in value):
                errors[key] = ["Expected a list of at most 10 template strings."]
        elif key == "require_interaction":
            if not isinstance(value, bool):
                errors[key] = ["Expected true or false."]
        elif not isinstance(value, str) or len(value) > 60:
            errors[key] = ["Expected a short string."]
    spec = CHANNEL_SPECS.get(channel)
    cleaned: dict[str, Any] = {}
    if spec is not None:
        try:
            cleaned = spec(rest)
        except _Bad as exc:
            if isinstance(exc.message, dict):
                errors.update(exc.message)
            else:
                errors["non_field_errors"] = [exc.message]
    if errors:
        raise ValidationError({"extra": errors})
    return {**{k: v for k, v in extra.items() if k not in rest}, **cleaned}


def channel_settings_clean(channel: str, settings_value: Any) -> dict[str, Any]:
    """An organization's channel settings (``ChannelConfiguration.settings``): the keys that are
    channel options (an SMS ``from``, email ``track_clicks``…) are checked like an event's; other
    keys (``requiresOptIn``, selection settings) are left to their own readers."""
    if not isinstance(settings_value, Mapping):
        raise ValidationError({"settings": ["Expected an object."]})
    spec = CHANNEL_SPECS.get(channel)
    if spec is None:
        return dict(settings_value)
    known = {k: v for k, v in settings_value.items() if k in getattr(spec, "keys", ())}
    try:
        cleaned = spec(known)
    except _Bad as exc:
        raise ValidationError({"settings": exc.message if isinstance(exc.message, (dict, list)) else [exc.message]}) from None
    return {**dict(settings_value), **cleaned}


def audience_size_check(options: Mapping[str, Any], *, recipients: int) -> None:
    """Inline (base64) attachments are stored with each recipient's notification: a large audience
    must name them by URL instead."""
    inline = sum(len(a.get("content_base64") or "") for a in (options.get(Channel.EMAIL) or {}).get("attachments") or [])
    budget = int(getattr(settings, "EMAIL_INLINE_ATTACHMENTS_EVENT_MAX_BYTES", 50 * 1024 * 1024))
    if inline and inline * recipients > budget:
        raise ValidationError({"channel_options": {Channel.EMAIL: {"attachments": [
            f"Inline attachments for {recipients} recipients exceed {budget} bytes in all: give them by url instead."]}}})


# --- merging at send ---------------------------------------------------------------------------

# Template ``extra`` keys written before the event-level names existed → the option they mean.
_TEMPLATE_ALIASES: dict[str, dict[str, str]] = {
    Channel.VOICE: {"voice_language": "language", "voice_name": "voice"},
}
# Defaults where the seed asks for them: email open/click tracking on where supported.
CHANNEL_DEFAULTS: dict[str, dict[str, Any]] = {
    Channel.EMAIL: {"track_opens": True, "track_clicks": True},
}


def _template_options(channel: str, extra: Mapping[str, Any] | None) -> dict[str, Any]:
    options = dict(extra or {})
    for old, new in _TEMPLATE_ALIASES.get(channel, {}).items():
        if old in options:
            options.setdefault(new, options.pop(old))
    if channel == Channel.PUSH and "require_interaction" in options:
        # The shipped push templates say it flat; the event contract says web.require_interaction.
        options.setdefault("web", {}).setdefault("require_interaction", options.pop("require_interaction"))
    return options


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping) and key not in ("data", "metadata", "template_data"):
            out[key] = _merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


def channel_options_merge(
    *, channel: str, organization_settings: Mapping[str, Any] | None, template_extra: Mapping[str, Any] | None,
    event_options: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """Platform defaults ← organization channel settings ← template ← event (the event wins)."""
    merged = dict(CHANNEL_DEFAULTS.get(channel, {}))
    merged = _merge(merged, dict(organization_settings or {}))
    merged = _merge(merged, _template_options(channel, template_extra))
    return _merge(merged, dict(event_options or {}))
