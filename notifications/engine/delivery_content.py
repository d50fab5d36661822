"""What a delivery says: the event as render context, templates loaded per batch, rendering.

Contexts and rendered contents are computed once per distinct situation of a batch: the
recipients of one event usually share their template, locale and event data, so a batch of
1,000 renders a handful of times, not 1,000 (the ``cache`` of ``delivery_render``).
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any

from django.conf import settings
from django.db.models import Q

from common import sealing
from common.links import html_links_sanitize, link_safe_or_empty
from notifications.engine import rendering
from notifications.models import EventType, Notification, NotificationTemplate, TemplateChannel


def _event_source(notification: Notification, *, data: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The event as plain data, addressable by the event type's variable mapping.

    ``data`` replaces the notification's own (its sealed values opened, see ``notification_secrets``).
    """
    resource = {"type": notification.resource_type, "id": notification.resource_id, "name": notification.resource_name}
    actor = {"type": notification.actor_type, "id": notification.actor_id, "name": notification.actor_name}
    return {
        "data": (notification.data if data is None else data) or {},
        "metadata": notification.metadata or {},
        "resource": resource,
        "actor": actor,
        "resourceId": notification.resource_id,
        "resourceType": notification.resource_type,
        "resourceName": notification.resource_name,
        "resource_id": notification.resource_id,
        "resource_type": notification.resource_type,
        "resource_name": notification.resource_name,
        "actorId": notification.actor_id,
        "actorType": notification.actor_type,
        "actorName": notification.actor_name,
        "actor_id": notification.actor_id,
        "actor_name": notification.actor_name,
        "eventType": notification.event_type,
        "event_type": notification.event_type,
        "eventId": str(notification.event_id),
        "correlationId": notification.correlation_id,
        "organizationId": str(notification.organization_id),
    }


def _recipient_name(notification: Notification) -> str:
    user = notification.recipient
    if user is not None:
        return user.get_spoken_name()
    if notification.recipient_email:
        return notification.recipient_email.split("@")[0]
    return ""


def absolute_url(url: str) -> str:
    if url.startswith("/") and not url.startswith("//"):
        return settings.SITE_URL + url
    return url


def ack_link_url(*, notification_id: int) -> str:
    from notifications.engine.ack import ack_link_url as signed_url

    return signed_url(notification_id=notification_id)


def notification_secrets(notification: Notification) -> tuple[dict[str, Any], list[str]]:
    """The notification's data with its sealed values opened, and those clear values (to scrub)."""
    data, secrets = sealing.data_unseal(
        notification.data or {}, scope=sealing.organization_scope(notification.organization_id)
    )
    return data, secrets


def notification_context(
    notification: Notification, *, variable_mapping: Mapping[str, str] | None, data: Mapping[str, Any] | None = None,
    with_ack_url: bool = True, cache: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Render context of one notification: mapped event variables + the standard ones.

    ``with_ack_url=False`` leaves out the signed acknowledgement link (a signature per
    notification) when no template of the batch reads ``ack_url``. With ``cache`` (one dict
    per batch), the mapped event variables are built once per distinct event data: the
    recipients of one event share them; only the standard (per-recipient) ones are per row.
    """
    standard = {
        "recipient.name": _recipient_name(notification),
        "actor.name": notification.actor_name,
        "action_url": absolute_url(link_safe_or_empty(notification.action_url)),
        "ack_url": ack_link_url(notification_id=notification.pk) if with_ack_url else None,
        "organization.name": notification.organization.name,
        "resource.type": notification.resource_type,
        "resource.id": notification.resource_id,
        "resource.name": notification.resource_name,
        "event.type": notification.event_type,
    }
    source = _event_source(notification, data=data)
    if cache is None:
        return rendering.template_context_build(variable_mapping=variable_mapping, source=source, standard=standard)
    key = json.dumps([variable_mapping, source], sort_keys=True, default=str, separators=(",", ":"))
    mapped = cache.get(key)
    if mapped is None:
        mapped = cache[key] = rendering.template_context_build(variable_mapping=variable_mapping, source=source)
    own = rendering.template_context_build(variable_mapping=None, source={}, standard=standard)
    if own.keys() & mapped.keys():
        # A mapped variable shares a root with a standard one (``resource.*``): merge the slow way.
        return rendering.template_context_build(variable_mapping=variable_mapping, source=source, standard=standard)
    return {**own, **mapped}


@dataclass
class Templates:
    """Templates and event types for a set of notifications, loaded in three queries."""

    event_types: dict[str, EventType] = field(default_factory=dict)
    # (organization_id or None, key) -> template
    by_key: dict[tuple[int | None, str], NotificationTemplate] = field(default_factory=dict)
    by_id: dict[int, NotificationTemplate] = field(default_factory=dict)
    # template id -> channel -> TemplateChannel
    channels: dict[int, dict[str, TemplateChannel]] = field(default_factory=dict)

    @classmethod
    def load(cls, notifications: Iterable[Notification]) -> Templates:
        """Read once per process for the same event types, organizations and templates
        (engine.config_memo): the result is shared, read-only."""
        from .config_memo import config_read

        notifications = list(notifications)
        type_keys = frozenset(n.event_type for n in notifications)
        org_ids = frozenset(n.organization_id for n in notifications)
        explicit = frozenset(n.template_id for n in notifications if n.template_id)
        return config_read(("templates", type_keys, org_ids, explicit),
                           lambda: cls._read(type_keys=type_keys, org_ids=org_ids, explicit=explicit))

    @classmethod
    def _read(cls, *, type_keys: frozenset[str], org_ids: frozenset[int], explicit: frozenset[int]) -> Templates:
        loaded = cls()
        loaded.event_types = {et.key: et for et in EventType.objects.filter(key__in=type_keys)}
        template_keys = {loaded.event_types[k].template_key if k in loaded.event_types else k for k in type_keys}
        templates = NotificationTemplate.objects.filter(
            Q(pk__in=explicit)
            | Q(key__in=template_keys, is_active=True) & (Q(organization__isnull=True) | Q(organization_id__in=org_ids))
        )
        for template in templates:
            loaded.by_id[template.pk] = template
            if template.is_active:
                loaded.by_key[(template.organization_id, template.key)] = template
        for channel in TemplateChannel.objects.filter(template_id__in=list(loaded.by_id)):
            loaded.channels.setdefault(channel.template_id, {})[channel.channel] = channel
        return loaded

    def template_for(self, notification: Notification) -> NotificationTemplate | None:
        if notification.template_id and notification.template_id in self.by_id:
            return self.by_id[notification.template_id]
        event_type = self.event_types.get(notification.event_type)
        key = event_type.template_key if event_type else notification.event_type
        return self.by_key.get((notification.organization_id, key)) or self.by_key.get((None, key))

    @cached_property
    def reads_ack_url(self) -> bool:
        """Does any loaded channel block mention ``ack_url``? (If not, no link is signed.)"""
        return any("ack_url" in repr([getattr(block, f.attname) for f in block._meta.concrete_fields])
                   for blocks in self.channels.values() for block in blocks.values())

    def mapping_for(self, notification: Notification) -> dict[str, str]:
        event_type = self.event_types.get(notification.event_type)
        return dict(event_type.variable_mapping or {}) if event_type else {}


def _roots_read(block: TemplateChannel, locale: str) -> tuple[str, ...]:
    """The top-level context names a channel block reads, in any of its fields."""
    sources = [*rendering.template_channel_contents(block, locale=locale).values(), block.action_url or ""]
    roots: set[str] = set()
    for source in sources:
        if source:
            roots.update(name.split(".")[0] for name in rendering.template_variables(source))
    return tuple(sorted(roots))


def _plain(value: Any) -> Any:
    # The context's mappings are read-only proxies (rendering._freeze): checked by type first,
    # an ABC isinstance per value is slow enough to show in a batch's profile.
    if type(value) is MappingProxyType or type(value) is dict:
        return dict(value)
    return dict(value) if isinstance(value, Mapping) else str(value)


def delivery_render(
    *, notification: Notification, channel: str, locale: str, templates: Templates, context: Mapping[str, Any],
    cache: dict[tuple, Any] | None = None,
) -> dict[str, str]:
    """Content of one delivery: the template's channel block in ``locale`` (English fallback).

    With ``cache`` (one dict per batch), a block is rendered once per distinct context: the
    recipients of one event that read the same values share one rendering.
    """
    template = templates.template_for(notification)
    block = templates.channels.get(template.pk, {}).get(channel) if template else None
    if block is not None and cache is not None:
        roots = cache.get(("roots", block.pk, locale))
        if roots is None:
            roots = cache[("roots", block.pk, locale)] = _roots_read(block, locale)
        # Only the values the block reads decide its rendering (not, say, every recipient's name).
        read = {name: context.get(name) for name in roots}
        key = (block.pk, locale, notification.action_url, json.dumps(read, sort_keys=True, default=_plain, separators=(",", ":")))
        found = cache.get(key)
        if found is None:
            found = cache[key] = delivery_render(notification=notification, channel=channel, locale=locale,
                                                 templates=templates, context=context)
        return dict(found)
    if block is None:
        # No template for this channel: the event's own title and body, as plain text.
        title = notification.title or notification.resource_name or notification.event_type
        return {
            "subject": title,
            "title": title,
            "body": notification.body or title,
            "body_html": html_links_sanitize(notification.body_html),  # e.g. a digest rendered from its own template
            "action_label": notification.action_label,
            "action_url": link_safe_or_empty(notification.action_url),
        }
    contents = rendering.template_channel_contents(block, locale=locale)
    rendered = rendering.content_render(contents=contents, context=context)
    action_url = rendering.template_render(block.action_url, context, html=False) if block.action_url else ""
    return {
        "subject": rendered.subject or rendered.title,
        "title": rendered.title,
        "body": rendered.body,
        # A link assembled from event data is checked once rendered: never a javascript: href.
        "body_html": html_links_sanitize(rendered.body_html),
        "action_label": rendered.action_label,
        "action_url": link_safe_or_empty(action_url) or link_safe_or_empty(notification.action_url),
        **({"extra": block.extra} if block.extra else {}),
    }


