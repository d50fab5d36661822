"""Event intake: one event → validated, deduplicated, routed, stored and queued, in bulk.

`event_emit` is the one entry point (REST, the AMQP consumer, incoming webhooks and Python
callers such as invitations all end up here). Its query count does not depend on the number
of recipients: recipients, preferences, quiet hours and presence are loaded with one query
each, and notifications, deliveries and audit rows are written with one COPY per table on
PostgreSQL (engine.bulk; ids come from the sequence in one query), so a 1,000-recipient
event on six channels costs the same number of queries as a 10-recipient one.
"""
from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Organization
from common.exceptions import ValidationError
from common.links import link_validate
from common.logging import bind_correlation_id
from common.metrics import record_event
from notifications.enums import (
    ActorType,
    AuditAction,
    AuditActorType,
    Criticality,
    EventCategory,
    NotificationStatus,
)
from notifications.models import (
    EventType,
    Notification,
    NotificationAuditLog,
    NotificationTemplate,
)

from .audit import AuditActor
from .channel_options import audience_size_check, channel_options_clean
from .config_memo import config_read
from .intake_input import (
    _as_datetime,
    _channels,
    _link_errors,
    _bare_recipients,
    _user_recipients,
    _subscriber_recipients,
    _context_ids,
)
from .intake_routed import (
    ESCALATION_CRITICALITIES,
    emit_routed,
    RESOLVING_EVENT_TYPES,
    RecipientOverride,
    _result_recipient_id,
)
from .routing import Recipient, RoutingContext

MAX_RECIPIENTS = 10_000
DEFAULT_DEDUP_WINDOW = 3600


@dataclass
class EmitResult:
    event_id: str
    notifications: list[tuple[int, str | None, str]] = field(default_factory=list)
    deduplicated: bool = False
    batch_job_id: int | None = None  # an audience fanned out in chunks (engine.fanout_jobs)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "event_id": self.event_id,
            "notifications": [{"id": nid, "recipient_id": rid, "status": status} for nid, rid, status in self.notifications],
        }
        if self.batch_job_id is not None:
            out["batch_job_id"] = self.batch_job_id
        return out


def _dedup_lock(organization_id: int, key: str) -> None:
    """Serialize emitters of one deduplication key until commit (PostgreSQL advisory lock)."""
    if connection.vendor != "postgresql":
        return  # SQLite serializes writers anyway
    digest = hashlib.blake2b(f"{organization_id}:{key}".encode(), digest_size=8).digest()
    lock_id = int.from_bytes(digest, "big", signed=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [lock_id])


def _template_for(*, organization: Organization, event_type: EventType) -> NotificationTemplate | None:
    return config_read(("template_for", organization.pk, event_type.template_key),
                       lambda: _template_read(organization=organization, event_type=event_type))


def _template_read(*, organization: Organization, event_type: EventType) -> NotificationTemplate | None:
    templates = list(
        NotificationTemplate.objects.filter(key=event_type.template_key, is_active=True)
        .filter(Q(organization=organization) | Q(organization__isnull=True))
        .only("id", "organization_id")
    )
    templates.sort(key=lambda t: t.organization_id is None)
    return templates[0] if templates else None




# --- the facade ------------------------------------------------------------------------------


def event_emit(
    *,
    organization: Organization,
    type: str,
    recipient_ids: Sequence[Any] = (),
    recipients: Sequence[Mapping[str, Any]] = (),
    audience: Any = None,
    category: str | None = None,
    actor: Mapping[str, Any] | None = None,
    resource: Mapping[str, Any] | None = None,
    team_id: Any = None,
    project_id: Any = None,
    criticality: str | None = None,
    channels: Sequence[str] | None = None,
    data: Mapping[str, Any] | None = None,
    deduplication_key: str | None = None,
    correlation_id: str | None = None,
    scheduled_for: datetime | str | None = None,
    expires_at: datetime | str | None = None,
    source: str = "python",
    action_url: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    audit_actor: AuditActor | None = None,
    channel_options: Mapping[str, Any] | None = None,
    event_id: uuid.UUID | None = None,
    fanout_chunk: bool = False,
) -> EmitResult:
    """Create one notification per recipient and queue its deliveries after commit.

    Joins the caller's transaction (invitations emit inside theirs); nothing is saved if
    any input is invalid. Raises common.exceptions.ValidationError with per-field details.
    """
    now = timezone.now()
    bind_correlation_id(correlation_id)  # logs and the delivery tasks of this event carry it
    if not isinstance(type, str) or not type:
        raise ValidationError({"type": ["This field is required."]})
    if data is not None and not isinstance(data, Mapping):
        raise ValidationError({"data": ["Expected an object."]})
    if action_url:
        link_validate(action_url, field="action_url")
    if data:
        link_errors = _link_errors(data, prefix="data")
        if link_errors:
            raise ValidationError(link_errors)
    options = channel_options_clean(channel_options)
    event_type = config_read(("event_type", type), lambda: EventType.objects.filter(key=type, is_active=True).first())
    if event_type is None:
        raise ValidationError({"type": [f"Unknown event type {type!r}."]}, code="unknown_event_type")
    category = category or event_type.category
    if category not in EventCategory.values:
        raise ValidationError({"category": [f"Unknown category {category!r}. Valid: {', '.join(EventCategory.values)}."]})
    criticality = criticality or event_type.default_criticality
    if criticality not in Criticality.values:
        raise ValidationError({"criticality": [f"Unknown criticality {criticality!r}. Valid: {', '.join(Criticality.values)}."]})
    requested = _channels(channels)
    scheduled_at = _as_datetime(scheduled_for, field_name="scheduled_for")
    expires = _as_datetime(expires_at, field_name="expires_at")
    if expires is not None and expires <= now:
        raise ValidationError({"expires_at": ["Must be in the future."]})
    if expires is not None and scheduled_at is not None and expires <= scheduled_at:
        raise ValidationError({"expires_at": ["Must be after scheduled_for."]})
    actor = dict(actor or {})
    actor_type = str(actor.get("type") or (ActorType.USER if actor.get("id") else ActorType.SYSTEM)).lower()
    if actor_type not in ActorType.values:
        raise ValidationError({"actor": {"type": [f"Expected one of {', '.join(ActorType.values)}."]}})
    resource = dict(resource or {})
    if isinstance(recipient_ids, (str, bytes)) or not isinstance(recipient_ids, Iterable):
        raise ValidationError({"recipient_ids": ["Expected a list of user ids."]})
    recipient_ids = list(recipient_ids)
    recipients = list(recipients or [])
    audience_spec = None
    if audience is not None:
        from .audiences import audience_clean

        if recipient_ids or recipients:
            raise ValidationError({"audience": ["Give either an audience or recipients, not both."]})
        audience_spec = audience_clean(organization=organization, audience=audience)
    elif not recipient_ids and not recipients:
        raise ValidationError({"recipient_ids": ["At least one recipient is required."]})
    if len(recipient_ids) + len(recipients) > MAX_RECIPIENTS:
        raise ValidationError({"recipient_ids": [f"At most {MAX_RECIPIENTS} recipients per event."]})
    audience_size_check(options, recipients=len(recipient_ids) + len(recipients))

    members = _user_recipients(organization=organization, recipient_ids=recipient_ids) if recipient_ids else []
    # Recipients named by the client's own id (subscribers) are resolved inside the transaction
    # below, where unknown ones may be created; here they are only validated.
    by_external_id = [(i, r) for i, r in enumerate(recipients) if isinstance(r, Mapping) and "external_id" in r]
    if by_external_id:
        from .subscribers import subscriber_recipients_clean

        subscriber_items = subscriber_recipients_clean(by_external_id)
        recipients = [r for r in recipients if not (isinstance(r, Mapping) and "external_id" in r)]
    else:
        subscriber_items = []
    bare, bare_overrides = _bare_recipients(recipients) if recipients else ([], [])
    team_pk, project_pk = _context_ids(organization=organization, team_id=team_id, project_id=project_id)
    dedup_key = (deduplication_key or "").strip()[:255]
    audit_actor = audit_actor or AuditActor(
        type=AuditActorType.USER if actor_type == ActorType.USER else AuditActorType.SYSTEM,
        id=str(actor.get("id") or ""), label=str(actor.get("name") or source),
    )

    with transaction.atomic():
        if dedup_key and not fanout_chunk:
            _dedup_lock(organization.pk, dedup_key)
            window = int(getattr(settings, "NOTIFICATION_DEDUP_WINDOW_SECONDS", DEFAULT_DEDUP_WINDOW))
            existing = list(
                Notification.objects.filter(
                    organization=organization, deduplication_key=dedup_key, created_at__gte=now - timedelta(seconds=window)
                ).order_by("pk").values("id", "recipient_id", "status", "event_id")
            )
            if existing:
                NotificationAuditLog.objects.create(
                    organization=organization, action=AuditAction.NOTIFICATION_DEDUPLICATED,
                    actor_type=audit_actor.type, actor_id=audit_actor.id[:100], actor_label=audit_actor.label[:200],
                    notification_id=existing[0]["id"],
                    details={"deduplication_key": dedup_key, "event_type": type, "source": source,
                             "event_id": str(existing[0]["event_id"]), "window_seconds": window},
                )
                return EmitResult(
                    event_id=str(existing[0]["event_id"]),
                    notifications=[(row["id"], _result_recipient_id(row), row["status"]) for row in existing],
                    deduplicated=True,
                )

        if audience_spec is not None:
            from .audiences import audience_event

            event = {
                "type": type, "category": category, "criticality": criticality, "channels": requested, "data": dict(data or {}),
                "actor": actor, "resource": resource, "team_id": team_pk, "project_id": project_pk,
                "deduplication_key": dedup_key, "correlation_id": correlation_id, "action_url": action_url,
                "metadata": dict(metadata or {}), "scheduled_for": scheduled_at.isoformat() if scheduled_at else None,
                "expires_at": expires.isoformat() if expires else None, "channel_options": channel_options,
            }
            ids, job_result = audience_event(
                organization=organization, audience=audience_spec, event=event, source=source, audit_actor=audit_actor,
                size_check=lambda count: audience_size_check(options, recipients=count),
            )
            if job_result is not None:
                return EmitResult(event_id=str(job_result[1]), notifications=[], batch_job_id=job_result[0])
            assert ids is not None  # audience_event returns the user ids whenever it records no batch job
            members = _user_recipients(organization=organization, recipient_ids=ids)
        subscribers: list[Recipient] = []
        subscriber_overrides: list[RecipientOverride | None] = []
        if subscriber_items:
            subscribers, subscriber_overrides = _subscriber_recipients(
                organization=organization, items=subscriber_items, raw=[r for _, r in by_external_id],
                members=members, audit_actor=audit_actor, source=source,
            )

        candidates = requested if requested is not None else list(event_type.default_channels or [])
        ctx = RoutingContext(
            organization_id=organization.pk, event_type=event_type, category=category, criticality=criticality,
            channels=candidates, channel_source="request" if requested is not None else "event_type",
            team_id=team_pk, project_id=project_pk, now=now, send_at=scheduled_at,
        )
        all_recipients = members + subscribers + bare
        template = _template_for(organization=organization, event_type=event_type)
        event_id = event_id or uuid.uuid4()
        payload = dict(data or {})
        title = str(payload.get("title") or resource.get("name") or event_type.name)[:255]
        body = str(payload.get("body") or payload.get("message") or "")
        url = action_url or payload.get("action_url") or payload.get("actionUrl") or ""
        common = {
            "organization": organization,
            "team_id": team_pk,
            "project_id": project_pk,
            "event_id": event_id,
            "event_type": event_type.key,
            "category": category,
            "source_module": str(source)[:100],
            "actor_type": actor_type,
            "actor_id": str(actor.get("id") or "")[:100],
            "actor_name": str(actor.get("name") or "")[:200],
            "resource_type": str(resource.get("type") or "")[:50],
            "resource_id": str(resource.get("id") or "")[:100],
            "resource_name": str(resource.get("name") or "")[:255],
            "correlation_id": str(correlation_id or "")[:100],
            "deduplication_key": dedup_key,
            "data": payload,
            "metadata": dict(metadata or {}),
            "template": template,
            "title": title,
            "body": body,
            "action_url": str(url)[:500],
            "criticality": criticality,
            "channels_requested": candidates,
            "scheduled_for": scheduled_at,
            "expires_at": expires,
            "processed_at": now,
            "channel_options": options,
        }
        # Routes come back in recipient order: members first, then subscribers, then bare addresses.
        overrides: list[RecipientOverride | None] = [None] * len(members) + subscriber_overrides + bare_overrides
        fast = None
        if not any(overrides):
            from .fanout import fanout_plan, inapp_contents

            fast = fanout_plan(ctx=ctx, recipients=all_recipients)
            if fast is not None and not inapp_contents(fast, common=common):
                fast = None
        if fast is not None:
            results = _emit_fanout(fast, common=common, audit_actor=audit_actor, source=source)
        else:
            results = emit_routed(
                ctx=ctx, recipients=all_recipients, overrides=overrides, common=common, resource=resource,
                action_url=action_url, event_type=event_type, audit_actor=audit_actor, source=source,
            )
        if source != "invitations" and not fanout_chunk:  # an invitation send records its own job
            from batchjobs.services import batch_job_for_event

            batch_job_for_event(organization=organization, event_id=event_id, recipients=len(results), source=source)

    record_event(source=source, notifications=len(results))
    return EmitResult(event_id=str(event_id), notifications=results)


def _emit_fanout(plan, *, common: Mapping[str, Any], audit_actor: AuditActor, source: str) -> list[tuple[int, str | None, str]]:
    """The set-based path (engine.fanout): one situation routed once, rows written by the server."""
    from .fanout import fanout_result, fanout_write
    from .webhooks_outgoing import intake_events, webhooks_enqueue

    written = fanout_write(plan, common=common, audit_actor=audit_actor, source=source)
    event_type = plan.ctx.event_type.key
    if event_type in RESOLVING_EVENT_TYPES and common["resource_id"]:
        from .escalation import escalation_resolve_for

        escalation_resolve_for(organization_id=common["organization"].pk, resource_type=common["resource_type"],
                               resource_id=common["resource_id"])
    elif plan.ctx.criticality in ESCALATION_CRITICALITIES:
        from .escalation import escalation_start_for

        started = [pk for pk, status in zip(written.notification_ids, written.statuses, strict=True)
                   if status not in (NotificationStatus.SKIPPED, NotificationStatus.SCHEDULED)]
        if started:
            escalation_start_for(notification_ids=started)
    if written.pending_delivery_ids:
        from .delivery import deliveries_enqueue

        deliveries_enqueue(delivery_ids=written.pending_delivery_ids)
    webhooks_enqueue(events=intake_events(zip(written.notification_ids, written.statuses, strict=True)),
                     organization_ids=[common["organization"].pk])
    return fanout_result(written, plan.recipients)

