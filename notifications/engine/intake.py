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
import zoneinfo
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import phonenumbers
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.models import Organization, Project, Team
from common.exceptions import ValidationError
from common.links import link_problem, link_validate
from common.logging import bind_correlation_id
from common.metrics import record_event
from common.sealing import is_sealed
from notifications.enums import (
    ActorType,
    AuditAction,
    AuditActorType,
    Channel,
    Criticality,
    DeliveryStatus,
    EventCategory,
    NotificationStatus,
)
from notifications.models import (
    EventType,
    Notification,
    NotificationAuditLog,
    NotificationDelivery,
    NotificationTemplate,
)

from .audit import AuditActor
from .bulk import bulk_insert
from .channel_options import channel_options_clean
from .routing import Recipient, RecipientRoute, RoutingContext, route_recipients

MAX_RECIPIENTS = 10_000
DEFAULT_DEDUP_WINDOW = 3600


@dataclass
class EmitResult:
    event_id: str
    notifications: list[tuple[int, str | None, str]] = field(default_factory=list)
    deduplicated: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "notifications": [{"id": nid, "recipient_id": rid, "status": status} for nid, rid, status in self.notifications],
        }


# --- validation helpers ------------------------------------------------------------------------


def _as_datetime(value: Any, *, field_name: str) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        parsed = parse_datetime(value)
        if parsed is None:
            raise ValidationError({field_name: [f"Expected an ISO 8601 date-time, got {value!r}."]})
    else:
        raise ValidationError({field_name: ["Expected an ISO 8601 date-time."]})
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, UTC)
    return parsed


def _as_id(value: Any) -> int | None:
    if value in (None, ""):
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _channels(value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, (list, tuple)):
        raise ValidationError({"channels": ["Expected a list of channels."]})
    unknown = [c for c in value if c not in Channel.values]
    if unknown:
        raise ValidationError({"channels": [f"Unknown channel(s): {', '.join(map(str, unknown))}. Valid: {', '.join(Channel.values)}."]})
    return list(dict.fromkeys(value))


@dataclass(frozen=True)
class RecipientOverride:
    """What one bare recipient brings on top of the event: its own `data` keys and `resource`.

    Lets one event carry what differs per recipient (an invitee's own link) without one event
    per recipient: `data` is merged over the event's data, `resource` over its resource.
    """

    data: dict[str, Any]
    resource: dict[str, Any]


def _link_errors(data: Mapping[str, Any], *, prefix: str) -> dict[str, Any]:
    """Field errors of the links in an event's data that end in an href (see common.links)."""
    errors: dict[str, Any] = {}
    for key, value in data.items():
        # action_url, actionUrl, inviteUrl, image_url…: whatever a template may put in an href.
        # A sealed value (common.sealing: an invitation link waiting for the worker) is opened only
        # at render time, where the rendered links are checked again.
        if isinstance(key, str) and key.lower().endswith("url") and not is_sealed(value):
            problem = link_problem(value)
            if problem:
                errors.setdefault(prefix, {})[key] = [problem]
    return errors


def _bare_recipients(items: Sequence[Mapping[str, Any]]) -> tuple[list[Recipient], list[RecipientOverride | None]]:
    """Validate bare addresses ({email?, phone?, locale?, timezone?, name?, data?, resource?}); all errors at once.

    Returns the recipients and, aligned with them, each one's override (None when it has none).
    """
    errors: dict[str, dict[str, list[str]]] = {}
    out: list[Recipient] = []
    overrides: list[RecipientOverride | None] = []
    seen: set[tuple[str, str]] = set()
    languages = {code for code, _ in settings.LANGUAGES}
    for index, item in enumerate(items):
        item_errors: dict[str, list[str]] = {}
        if not isinstance(item, Mapping):
            errors[str(index)] = {"non_field_errors": ["Expected an object with an email and/or a phone."]}
            continue
        email = str(item.get("email") or "").strip().lower()
        phone = str(item.get("phone") or "").strip()
        if not email and not phone:
            item_errors["non_field_errors"] = ["An email or a phone number is required."]
        if email:
            try:
                validate_email(email)
            except DjangoValidationError:
                item_errors["email"] = [f"Not a valid email address: {email!r}."]
        if phone:
            try:
                parsed = phonenumbers.parse(phone, None)
                if not phonenumbers.is_valid_number(parsed):
                    raise phonenumbers.NumberParseException(0, "invalid")
                phone = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
            except phonenumbers.NumberParseException:
                item_errors["phone"] = [f"Not a valid E.164 phone number: {phone!r}."]
        locale = str(item.get("locale") or "").strip()
        if locale and locale.split("-")[0].lower() not in languages:
            item_errors["locale"] = [f"Unsupported locale {locale!r}; use one of {', '.join(sorted(languages))}."]
        tz_name = str(item.get("timezone") or "").strip()
        if tz_name:
            try:
                zoneinfo.ZoneInfo(tz_name)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                item_errors["timezone"] = [f"Unknown time zone {tz_name!r}."]
        own_data, own_resource = item.get("data"), item.get("resource")
        if own_data is not None and not isinstance(own_data, Mapping):
            item_errors["data"] = ["Expected an object."]
        if own_resource is not None and not isinstance(own_resource, Mapping):
            item_errors["resource"] = ["Expected an object."]
        if isinstance(own_data, Mapping):
            item_errors.update(_link_errors(own_data, prefix="data"))
        if item_errors:
            errors[str(index)] = item_errors
            continue
        if (email, phone) in seen:
            continue
        seen.add((email, phone))
        out.append(
            Recipient(
                key=f"a:{email or phone}", email=email, phone=phone, locale=locale.split("-")[0].lower() if locale else "",
                timezone=tz_name, name=str(item.get("name") or "")[:200],
            )
        )
        overrides.append(
            RecipientOverride(data=dict(own_data or {}), resource=dict(own_resource or {})) if own_data or own_resource else None
        )
    if errors:
        raise ValidationError({"recipients": errors})
    return out, overrides


def _user_recipients(*, organization: Organization, recipient_ids: Sequence[Any]) -> list[Recipient]:
    """Members of the organization, in request order; unknown ids are a 400 listing them all."""
    wanted: list[int] = []
    unknown: list[str] = []
    for raw in recipient_ids:
        pk = _as_id(raw)
        if pk is None:
            unknown.append(str(raw))
        elif pk not in wanted:
            wanted.append(pk)
    rows = {}
    if wanted:
        User = get_user_model()
        rows = {
            row["id"]: row
            for row in User.objects.filter(pk__in=wanted, is_active=True, memberships__organization=organization).values(
                "id", "email", "phone", "locale", "timezone", "display_name", "username"
            )
        }
    unknown += [str(pk) for pk in wanted if pk not in rows]
    if unknown:
        raise ValidationError(
            {"recipient_ids": [f"Unknown recipient(s) in this organization: {', '.join(unknown)}."]}, code="unknown_recipients"
        )
    return [
        Recipient(
            key=f"u:{pk}", user_id=pk, email=rows[pk]["email"] or "", phone=rows[pk]["phone"] or "",
            locale=rows[pk]["locale"] or "", timezone=rows[pk]["timezone"] or "UTC",
            name=rows[pk]["display_name"] or rows[pk]["username"],
        )
        for pk in wanted
    ]


def _subscriber_recipients(
    *, organization: Organization, items: Sequence[Any], raw: Sequence[Mapping[str, Any]], members: Sequence[Recipient],
    audit_actor: AuditActor, source: str,
) -> tuple[list[Recipient], list[RecipientOverride | None]]:
    """Recipients named by external id (engine.subscribers, inline identify), minus members already named by id."""
    from .subscribers import subscriber_recipients

    resolved = subscriber_recipients(organization=organization, items=items, actor=audit_actor, source=source)
    overrides_by_id: dict[str, RecipientOverride] = {}
    for item in raw:
        own_data, own_resource = item.get("data"), item.get("resource")
        if isinstance(own_data, Mapping) and own_data or isinstance(own_resource, Mapping) and own_resource:
            overrides_by_id.setdefault(str(item["external_id"]), RecipientOverride(
                data=dict(own_data or {}) if isinstance(own_data, Mapping) else {},
                resource=dict(own_resource or {}) if isinstance(own_resource, Mapping) else {},
            ))
    taken = {m.user_id for m in members}
    recipients: list[Recipient] = []
    overrides: list[RecipientOverride | None] = []
    for sub in resolved:
        if sub.id in taken:
            continue
        taken.add(sub.id)
        recipients.append(Recipient(
            key=f"u:{sub.id}", user_id=sub.id, email=sub.email, phone=sub.phone, locale=sub.locale,
            timezone=sub.timezone or "UTC", name=sub.display_name or sub.external_id,
        ))
        overrides.append(overrides_by_id.get(sub.external_id))
    return recipients, overrides


def _context_ids(*, organization: Organization, team_id: Any, project_id: Any) -> tuple[int | None, int | None]:
    errors: dict[str, list[str]] = {}
    team_pk, project_pk = _as_id(team_id), _as_id(project_id)
    if team_id not in (None, "") and team_pk is None:
        errors["team_id"] = ["Expected a team id."]
    if project_id not in (None, "") and project_pk is None:
        errors["project_id"] = ["Expected a project id."]
    if errors:
        raise ValidationError(errors)
    if project_pk is not None:
        project = Project.objects.filter(pk=project_pk, organization=organization).values("team_id").first()
        if project is None:
            raise ValidationError({"project_id": [f"Unknown project {project_pk} in this organization."]})
        if team_pk is None:
            team_pk = project["team_id"]
        elif project["team_id"] and project["team_id"] != team_pk:
            raise ValidationError({"project_id": [f"Project {project_pk} does not belong to team {team_pk}."]})
    if team_pk is not None and _as_id(team_id) is not None and not Team.objects.filter(pk=team_pk, organization=organization).exists():
        raise ValidationError({"team_id": [f"Unknown team {team_pk} in this organization."]})
    return team_pk, project_pk


def _dedup_lock(organization_id: int, key: str) -> None:
    """Serialize emitters of one deduplication key until commit (PostgreSQL advisory lock)."""
    if connection.vendor != "postgresql":
        return  # SQLite serializes writers anyway
    digest = hashlib.blake2b(f"{organization_id}:{key}".encode(), digest_size=8).digest()
    lock_id = int.from_bytes(digest, "big", signed=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [lock_id])


def _template_for(*, organization: Organization, event_type: EventType) -> NotificationTemplate | None:
    templates = list(
        NotificationTemplate.objects.filter(key=event_type.template_key, is_active=True)
        .filter(Q(organization=organization) | Q(organization__isnull=True))
        .only("id", "organization_id")
    )
    templates.sort(key=lambda t: t.organization_id is None)
    return templates[0] if templates else None


# Events that may start an escalation chain or stop one (engine.escalation); others skip the hook.
ESCALATION_CRITICALITIES = ("HIGH", "CRITICAL")
RESOLVING_EVENT_TYPES = ("incident.resolved",)


def _notification_status(route: RecipientRoute, *, scheduled: bool) -> str:
    if route.any_pending:
        return NotificationStatus.SCHEDULED if scheduled else NotificationStatus.PENDING
    if route.any_held:
        return NotificationStatus.HELD
    return NotificationStatus.SKIPPED


def _result_recipient_id(n: Notification | Mapping[str, Any]) -> str | None:
    get = n.get if isinstance(n, Mapping) else lambda k: getattr(n, k)
    rid = get("recipient_id")
    return str(rid) if rid else None


def _with_override(
    common: Mapping[str, Any], override: RecipientOverride, *, resource: Mapping[str, Any], action_url: str | None,
    default_title: str,
) -> dict[str, Any]:
    """The notification fields of one recipient whose data or resource differ from the event's."""
    payload = {**common["data"], **override.data}
    own_resource = {**resource, **override.resource}
    url = action_url or payload.get("action_url") or payload.get("actionUrl") or ""
    return {
        **common,
        "data": payload,
        "resource_type": str(own_resource.get("type") or "")[:50],
        "resource_id": str(own_resource.get("id") or "")[:100],
        "resource_name": str(own_resource.get("name") or "")[:255],
        "title": str(payload.get("title") or own_resource.get("name") or default_title)[:255],
        "body": str(payload.get("body") or payload.get("message") or ""),
        "action_url": str(url)[:500],
    }


# --- the facade ------------------------------------------------------------------------------


def event_emit(
    *,
    organization: Organization,
    type: str,
    recipient_ids: Sequence[Any] = (),
    recipients: Sequence[Mapping[str, Any]] = (),
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
    event_type = EventType.objects.filter(key=type, is_active=True).first()
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
    if not recipient_ids and not recipients:
        raise ValidationError({"recipient_ids": ["At least one recipient is required."]})
    if len(recipient_ids) + len(recipients) > MAX_RECIPIENTS:
        raise ValidationError({"recipient_ids": [f"At most {MAX_RECIPIENTS} recipients per event."]})

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
        if dedup_key:
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
        routes = route_recipients(ctx=ctx, recipients=members + subscribers + bare)
        template = _template_for(organization=organization, event_type=event_type)
        event_id = uuid.uuid4()
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
        scheduled = ctx.scheduled
        # Routes come back in recipient order: members first, then subscribers, then bare addresses.
        overrides: list[RecipientOverride | None] = [None] * len(members) + subscriber_overrides + bare_overrides
        notifications = [
            Notification(
                **(common if override is None else _with_override(common, override, resource=resource, action_url=action_url,
                                                                  default_title=event_type.name)),
                recipient_id=route.recipient.user_id,
                recipient_email=route.recipient.email,
                recipient_phone=route.recipient.phone,
                recipient_locale=route.recipient.locale,
                recipient_timezone=route.recipient.timezone,
                status=_notification_status(route, scheduled=scheduled),
                trace=route.trace(ctx),
            )
            for route, override in zip(routes, overrides, strict=True)
        ]
        bulk_insert(Notification, notifications)

        deliveries: list[NotificationDelivery] = []
        for n, route in zip(notifications, routes):
            for ch in route.channels:
                if ch.status is None:
                    continue
                next_at = ch.hold_until if ch.status == DeliveryStatus.HELD else (scheduled_at if scheduled else None)
                deliveries.append(
                    NotificationDelivery(
                        notification=n, organization=organization, channel=ch.channel, status=ch.status,
                        recipient_address=ch.address[:320], locale=route.recipient.locale,
                        next_retry_at=next_at,
                        skip_reason=(ch.detail if ch.status == DeliveryStatus.SKIPPED else ch.reason)[:255]
                        if ch.status != DeliveryStatus.PENDING else "",
                    )
                )
        if not scheduled:
            from .digest import digest_items_for_routes

            digested_notifications = digest_items_for_routes(
                organization_id=organization.pk, notifications=notifications, routes=routes, deliveries=deliveries,
                criticality=criticality, now=now,
            )
        bulk_insert(NotificationDelivery, deliveries)

        audit: list[NotificationAuditLog] = []
        for n, route in zip(notifications, routes):
            summary = {c.channel: c.trace()["decision"] for c in route.channels}
            base = {"organization": organization, "notification": n, "actor_type": audit_actor.type,
                    "actor_id": audit_actor.id[:100], "actor_label": audit_actor.label[:200], "user_id": n.recipient_id}
            audit.append(NotificationAuditLog(
                **base, action=AuditAction.NOTIFICATION_CREATED,
                details={"event_id": str(event_id), "event_type": event_type.key, "source": source, "status": n.status,
                         "channels": summary, "correlation_id": n.correlation_id},
            ))
            if n.status == NotificationStatus.HELD:
                audit.append(NotificationAuditLog(
                    **base, action=AuditAction.NOTIFICATION_HELD,
                    details={c.channel: {"reason": c.reason, "until": c.hold_until.isoformat() if c.hold_until else None}
                             for c in route.channels if c.status == DeliveryStatus.HELD},
                ))
        bulk_insert(NotificationAuditLog, audit)

        if not scheduled and digested_notifications:
            Notification.objects.filter(pk__in=digested_notifications).update(status=NotificationStatus.DIGESTED)
        if criticality in ESCALATION_CRITICALITIES or event_type.key in RESOLVING_EVENT_TYPES:
            from .escalation import escalation_after_intake

            escalation_after_intake(notifications=notifications, event_type=event_type.key)

        if not scheduled:
            pending = [d.pk for d in deliveries if d.status == DeliveryStatus.PENDING]
            if pending:
                from .delivery import deliveries_enqueue

                deliveries_enqueue(delivery_ids=pending)
        from .webhooks_outgoing import EVENT_CREATED, webhooks_enqueue

        webhooks_enqueue(events=[(n.pk, EVENT_CREATED) for n in notifications], organization_ids=[organization.pk])
        if source != "invitations":  # an invitation send records its own job (invitations.services)
            from batchjobs.services import batch_job_for_event

            batch_job_for_event(organization=organization, event_id=event_id, recipients=len(notifications), source=source)

    record_event(source=source, notifications=len(notifications))
    return EmitResult(
        event_id=str(event_id),
        notifications=[(n.pk, _result_recipient_id(n), n.status) for n in notifications],
    )
