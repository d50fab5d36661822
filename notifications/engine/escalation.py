"""Escalation chains: a critical notification nobody acknowledges reaches more people.

A notification whose criticality and event type match an active chain (the organization's
own first, then platform-wide ones) starts at level 0: the notification as routed, plus the
chain's level-0 row when there is one. ``escalations_advance`` (beat, every minute) then
moves it to the next level once that level's delay has passed since the previous one and
the level's condition holds:

- NOT_ACKNOWLEDGED: nobody acknowledged it (any acknowledgement stops the chain anyway);
- NOT_RESOLVED: no ``incident.resolved`` event for the same resource since it was created;
- ALWAYS: escalate regardless of resolution.

A level's recipients are the original recipient (new deliveries on the same notification at
that escalation level), members of the organization with a role, one user, or whoever is on
call now (``accounts.OnCallShift``). People other than the original recipient get their own
notification row (so it is in their inbox), linked to the original through
``metadata.escalation_root_id``; acknowledging any of them acknowledges the whole chain.
Escalation deliveries go out as they are: a critical page does not wait for quiet hours.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Membership, OnCallRotation, User
from accounts.oncall import oncall_users_at
from notifications.engine.delivery import deliveries_enqueue
from notifications.engine.routing import notification_address
from common.exceptions import Conflict, NotFound, ValidationError
from notifications.enums import (
    CRITICALITY_RANK,
    AuditAction,
    AuditActorType,
    DeliveryStatus,
    EscalationCondition,
    EscalationRecipientType,
    NotificationStatus,
)
from notifications.models import (
    EscalationChain,
    EscalationLevel,
    Notification,
    NotificationAuditLog,
    NotificationDelivery,
)

logger = logging.getLogger(__name__)

# Event types that resolve an earlier event about the same resource.
RESOLVING_EVENT_TYPES = ("incident.resolved",)
ADVANCE_BATCH = 200
# The beat scan for notifications the intake hook did not start (created in this window).
START_SCAN_WINDOW = timedelta(minutes=15)


def _chains_for(organization_ids: Iterable[int]) -> list[EscalationChain]:
    return list(
        EscalationChain.objects.filter(is_active=True)
        .filter(Q(organization_id__in=set(organization_ids)) | Q(organization__isnull=True))
        .prefetch_related("levels")
        .order_by("organization_id", "pk")
    )


def _chain_matches(chain: EscalationChain, notification: Notification) -> bool:
    if chain.organization_id not in (None, notification.organization_id):
        return False
    if CRITICALITY_RANK.get(notification.criticality, 0) < CRITICALITY_RANK.get(chain.trigger_criticality, 99):
        return False
    types = chain.trigger_event_types or []
    return not types or notification.event_type in types


def _pick_chain(chains: list[EscalationChain], notification: Notification) -> EscalationChain | None:
    # The organization's own chains win over platform-wide ones.
    matching = [c for c in chains if _chain_matches(c, notification)]
    matching.sort(key=lambda c: (c.organization_id is None, c.pk))
    return matching[0] if matching else None


def _levels(chain: EscalationChain) -> list[EscalationLevel]:
    return sorted(chain.levels.all(), key=lambda lvl: lvl.level)


def _next_level(chain: EscalationChain, after: int) -> EscalationLevel | None:
    return next((lvl for lvl in _levels(chain) if lvl.level > after), None)


# --- start ---------------------------------------------------------------------------------


def escalation_start_for(*, notification_ids: Iterable[int], now: datetime | None = None) -> int:
    """Attach matching chains to these notifications and run their level 0; returns how many started.

    Idempotent: notifications already on a chain, acknowledged, or escalation copies are
    left alone. Call it after the notifications are committed or inside their transaction.
    """
    ids = sorted({int(pk) for pk in notification_ids})
    if not ids:
        return 0
    now = now or timezone.now()
    with transaction.atomic():
        notifications = list(
            Notification.objects.select_for_update(of=("self",))
            .select_related("recipient", "organization")
            .filter(pk__in=ids, escalation_chain__isnull=True, acknowledged_at__isnull=True)
            .exclude(metadata__has_key="escalation_root_id")
            .exclude(status__in=[NotificationStatus.CANCELLED, NotificationStatus.EXPIRED])
            .order_by("pk")
        )
        if not notifications:
            return 0
        chains = _chains_for(n.organization_id for n in notifications)
        if not chains:
            return 0
        started: list[Notification] = []
        level_zero: list[tuple[Notification, EscalationLevel]] = []
        for n in notifications:
            chain = _pick_chain(chains, n)
            if chain is None:
                continue
            n.escalation_chain = chain
            n.escalation_level = 0
            first = _levels(chain)
            zero = next((lvl for lvl in first if lvl.level == 0), None)
            if zero is not None:
                level_zero.append((n, zero))
            following = _next_level(chain, 0)
            n.next_escalation_at = now + timedelta(minutes=following.delay_minutes) if following else None
            started.append(n)
        if not started:
            return 0
        Notification.objects.bulk_update(started, ["escalation_chain", "escalation_level", "next_escalation_at"])
        if level_zero:
            _levels_execute(targets=level_zero, now=now)
    return len(started)


def escalation_start_recent(*, now: datetime | None = None) -> int:
    """Safety net for the intake hook: start chains for recent notifications that match one."""
    now = now or timezone.now()
    chains = list(EscalationChain.objects.filter(is_active=True).values_list("trigger_criticality", flat=True))
    if not chains:
        return 0
    lowest = min(CRITICALITY_RANK.get(c, 99) for c in chains)
    criticalities = [c for c, rank in CRITICALITY_RANK.items() if rank >= lowest]
    ids = list(
        Notification.objects.filter(
            created_at__gte=now - START_SCAN_WINDOW, criticality__in=criticalities,
            escalation_chain__isnull=True, acknowledged_at__isnull=True,
        )
        .exclude(metadata__has_key="escalation_root_id")
        .values_list("pk", flat=True)[:5000]
    )
    return escalation_start_for(notification_ids=ids, now=now) if ids else 0


# --- advance -----------------------------------------------------------------------------------


@dataclass
class AdvanceReport:
    escalated: int = 0
    stopped: int = 0
    deliveries: int = 0


def _resolved_resources(notifications: list[Notification]) -> set[tuple[int, str, str]]:
    """(organization, resource type, resource id) of the notifications whose source was resolved since."""
    keyed = [n for n in notifications if n.resource_id]
    if not keyed:
        return set()
    condition = Q()
    for n in keyed:
        condition |= Q(organization_id=n.organization_id, resource_type=n.resource_type, resource_id=n.resource_id,
                       created_at__gte=n.created_at)
    rows = (
        Notification.objects.filter(event_type__in=RESOLVING_EVENT_TYPES)
        .filter(condition)
        .values_list("organization_id", "resource_type", "resource_id")
        .distinct()
    )
    return set(rows)


def escalations_advance(*, now: datetime | None = None, limit: int = 2000) -> AdvanceReport:
    """Move every notification whose next escalation is due to its next level (beat)."""
    now = now or timezone.now()
    report = AdvanceReport()
    while report.escalated + report.stopped < limit:
        done = _advance_batch(now=now, report=report)
        if done < ADVANCE_BATCH:
            break
    if report.escalated or report.stopped:
        logger.info("escalation: %s escalated (%s deliveries), %s chains stopped",
                    report.escalated, report.deliveries, report.stopped)
    return report


def _advance_batch(*, now: datetime, report: AdvanceReport) -> int:
    with transaction.atomic():
        due = list(
            Notification.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("recipient", "organization")
            .filter(next_escalation_at__lte=now, escalation_chain__isnull=False)
            .order_by("next_escalation_at", "pk")[:ADVANCE_BATCH]
        )
        if not due:
            return 0
        chains: dict[int | None, EscalationChain] = {c.pk: c for c in EscalationChain.objects.filter(pk__in={n.escalation_chain_id for n in due})
                  .prefetch_related("levels")}
        resolved = _resolved_resources(due)
        targets: list[tuple[Notification, EscalationLevel]] = []
        stopped: list[Notification] = []
        for n in due:
            chain = chains.get(n.escalation_chain_id)
            level = _next_level(chain, n.escalation_level) if chain and chain.is_active else None
            if level is None or n.acknowledged_at is not None:
                n.next_escalation_at = None
                stopped.append(n)
                continue
            if level.condition == EscalationCondition.NOT_RESOLVED and (
                (n.organization_id, n.resource_type, n.resource_id) in resolved
            ):
                n.next_escalation_at = None
                _trace_note(n, {"at": now.isoformat(), "stopped": "source resolved", "level": level.level})
                stopped.append(n)
                continue
            n.escalation_level = level.level
            assert chain is not None  # a level was found in it
            following = _next_level(chain, level.level)
            n.next_escalation_at = now + timedelta(minutes=following.delay_minutes) if following else None
            targets.append((n, level))
        Notification.objects.bulk_update(due, ["escalation_level", "next_escalation_at", "trace"])
        if targets:
            report.deliveries += _levels_execute(targets=targets, now=now)
        report.escalated += len(targets)
        report.stopped += len(stopped)
    return len(due)


def _trace_note(n: Notification, note: dict[str, Any]) -> None:
    trace = dict(n.trace or {})
    trace.setdefault("escalation", []).append(note)
    n.trace = trace


# --- executing a level -------------------------------------------------------------------------


NOT_A_MEMBER = "no longer a member of the organization"


def _recipients(
    targets: list[tuple[Notification, EscalationLevel]], now: datetime
) -> tuple[dict[tuple[int, int], list[User]], dict[tuple[int, int], list[int]]]:
    """(notification, level) → users it reaches, and → user ids it skipped because they left the
    organization since the chain (or the rotation) named them. A fixed number of queries."""
    role_keys = {(n.organization_id, lvl.recipient_role) for n, lvl in targets if lvl.recipient_type == EscalationRecipientType.ROLE}
    by_role: dict[tuple[int, str], list[int]] = defaultdict(list)
    if role_keys:
        condition = Q()
        for org_id, role in role_keys:
            condition |= Q(organization_id=org_id, role=role)
        for org_id, role, user_id in Membership.objects.filter(condition).values_list("organization_id", "role", "user_id"):
            by_role[(org_id, role)].append(user_id)
    oncall_orgs = {n.organization_id for n, lvl in targets if lvl.recipient_type == EscalationRecipientType.ON_CALL}
    oncall_by_org: dict[int, list[int]] = defaultdict(list)
    if oncall_orgs:
        rotations = dict(OnCallRotation.objects.filter(organization_id__in=oncall_orgs).values_list("pk", "organization_id"))
        for rotation_id, user_id in oncall_users_at(rotation_ids=rotations, at=now).items():
            oncall_by_org[rotations[rotation_id]].append(user_id)
    wanted: dict[tuple[int, int], list[int]] = {}
    for n, lvl in targets:
        if lvl.recipient_type == EscalationRecipientType.ROLE:
            user_ids = by_role.get((n.organization_id, lvl.recipient_role), [])
        elif lvl.recipient_type == EscalationRecipientType.USER:
            user_ids = [lvl.recipient_user_id] if lvl.recipient_user_id else []
        elif lvl.recipient_type == EscalationRecipientType.ON_CALL:
            user_ids = oncall_by_org.get(n.organization_id, [])
        else:
            user_ids = []
        wanted[(n.pk, lvl.pk)] = sorted(set(user_ids))
    # USER and ON_CALL levels name people directly, and ORIGINAL pages the first recipient
    # again: membership is re-checked when the level fires, so someone removed from the
    # organization is never paged for it again.
    for n, lvl in targets:
        if lvl.recipient_type == EscalationRecipientType.ORIGINAL and n.recipient_id:
            wanted[(n.pk, lvl.pk)] = [n.recipient_id]
    direct = [(n, lvl) for n, lvl in targets if lvl.recipient_type in (
        EscalationRecipientType.USER, EscalationRecipientType.ON_CALL, EscalationRecipientType.ORIGINAL)]
    skipped: dict[tuple[int, int], list[int]] = {}
    if direct:
        named = {uid for n, lvl in direct for uid in wanted[(n.pk, lvl.pk)]}
        members = set(
            Membership.objects.filter(organization_id__in={n.organization_id for n, _ in direct}, user_id__in=named)
            .values_list("organization_id", "user_id")
        ) if named else set()
        for n, lvl in direct:
            key = (n.pk, lvl.pk)
            gone = [uid for uid in wanted[key] if (n.organization_id, uid) not in members]
            if gone:
                skipped[key] = gone
                wanted[key] = [uid for uid in wanted[key] if uid not in gone]
    all_ids = {uid for ids in wanted.values() for uid in ids}
    users = {u.pk: u for u in User.objects.filter(pk__in=all_ids, is_active=True)} if all_ids else {}
    return {key: [users[uid] for uid in ids if uid in users] for key, ids in wanted.items()}, skipped


def _copy_for(original: Notification, user: User, level: EscalationLevel, root_id: int) -> Notification:
    return Notification(
        organization_id=original.organization_id, team_id=original.team_id, project_id=original.project_id,
        recipient=user, recipient_email=user.email, recipient_phone=user.phone, recipient_locale=user.locale,
        recipient_timezone=user.timezone, event_id=original.event_id, event_type=original.event_type,
        category=original.category, source_module=original.source_module, actor_type=original.actor_type,
        actor_id=original.actor_id, actor_name=original.actor_name, resource_type=original.resource_type,
        resource_id=original.resource_id, resource_name=original.resource_name,
        correlation_id=original.correlation_id, data=original.data,
        metadata={**(original.metadata or {}), "escalation_root_id": root_id, "escalation_level": level.level},
        template_id=original.template_id, title=original.title, body=original.body, body_html=original.body_html,
        action_url=original.action_url, action_label=original.action_label, criticality=original.criticality,
        channels_requested=list(level.channels or []), status=NotificationStatus.PROCESSING,
        expires_at=original.expires_at, escalation_chain_id=original.escalation_chain_id,
        escalation_level=level.level,
        trace={"escalation": [{"from_notification_id": root_id, "level": level.level,
                               "reason": f"escalated: {level.get_condition_display().lower()}"}]},
    )


def _levels_execute(*, targets: list[tuple[Notification, EscalationLevel]], now: datetime) -> int:
    """Create the deliveries (and recipients' notification rows) of each (notification, level)."""
    recipients, departed = _recipients(targets, now)
    copies: list[Notification] = []
    copy_levels: list[EscalationLevel] = []
    for n, lvl in targets:
        for user in recipients.get((n.pk, lvl.pk), []):
            if user.pk == n.recipient_id:
                continue  # the original recipient is reached through the original notification
            copies.append(_copy_for(n, user, lvl, n.pk))
            copy_levels.append(lvl)
    if copies:
        Notification.objects.bulk_create(copies)

    new: list[NotificationDelivery] = []
    skipped: list[NotificationDelivery] = []

    def add(notification: Notification, lvl: EscalationLevel) -> None:
        for channel in lvl.channels or []:
            address = notification_address(notification, channel)
            row = NotificationDelivery(
                notification_id=notification.pk, organization_id=notification.organization_id, channel=channel,
                recipient_address=address, locale=notification.recipient_locale, escalation_level=lvl.level,
                status=DeliveryStatus.PENDING if address else DeliveryStatus.SKIPPED,
                skip_reason="" if address else "no address for this channel",
            )
            (new if address else skipped).append(row)

    for n, lvl in targets:
        original_included = (
            lvl.recipient_type == EscalationRecipientType.ORIGINAL and n.recipient_id not in departed.get((n.pk, lvl.pk), [])
        ) or any(u.pk == n.recipient_id for u in recipients.get((n.pk, lvl.pk), []))
        if original_included:
            add(n, lvl)
    for copy, lvl in zip(copies, copy_levels):
        add(copy, lvl)

    # A level re-run (or level 0 adding a channel routing already used) must not send twice:
    # the (notification, channel, level) unique constraint turns repeats into no-ops.
    existing = set()
    if new or skipped:
        existing = set(
            NotificationDelivery.objects.filter(notification_id__in={d.notification_id for d in new + skipped})
            .values_list("notification_id", "channel", "escalation_level")
        )
    fresh = [d for d in new if (d.notification_id, d.channel, d.escalation_level) not in existing]
    fresh_skipped = [d for d in skipped if (d.notification_id, d.channel, d.escalation_level) not in existing]
    created = NotificationDelivery.objects.bulk_create(fresh) if fresh else []
    if fresh_skipped:
        NotificationDelivery.objects.bulk_create(fresh_skipped, ignore_conflicts=True)

    audits = []
    for n, lvl in targets:
        reached = [u.pk for u in recipients.get((n.pk, lvl.pk), [])]
        if lvl.recipient_type == EscalationRecipientType.ORIGINAL and n.recipient_id:
            reached = [] if (n.pk, lvl.pk) in departed else [n.recipient_id]
        left = [{"user_id": uid, "reason": NOT_A_MEMBER} for uid in departed.get((n.pk, lvl.pk), [])]
        audits.append(NotificationAuditLog(
            organization_id=n.organization_id, notification_id=n.pk, action=AuditAction.ESCALATED,
            details={"chain_id": n.escalation_chain_id, "level": lvl.level, "condition": lvl.condition,
                     "recipient_type": lvl.recipient_type, "user_ids": reached, "channels": list(lvl.channels or []),
                     **({"skipped": left} if left else {})},
        ))
        if lvl.level > 0 or left:
            _trace_note(n, {"at": now.isoformat(), "level": lvl.level, "recipient_type": lvl.recipient_type,
                            "user_ids": reached, "channels": list(lvl.channels or []), **({"skipped": left} if left else {})})
    NotificationAuditLog.objects.bulk_create(audits)
    traced = [n for n, lvl in targets if lvl.level > 0 or departed.get((n.pk, lvl.pk))]
    if traced:
        Notification.objects.bulk_update(traced, ["trace"])
    if created:
        deliveries_enqueue(delivery_ids=[d.pk for d in created])
    return len(created)


# --- stopping --------------------------------------------------------------------------------------


def escalation_resolve_for(*, organization_id: int, resource_type: str, resource_id: str) -> int:
    """An ``incident.resolved`` arrived: stop the NOT_RESOLVED chains about that resource now.

    The beat task checks resolution by itself before every NOT_RESOLVED level, so this
    only makes the stop immediate (and visible in the trace); returns how many stopped.
    """
    if not resource_id:
        return 0
    now = timezone.now()
    with transaction.atomic():
        candidates = list(
            Notification.objects.select_for_update(of=("self",))
            .filter(organization_id=organization_id, resource_type=resource_type, resource_id=resource_id,
                    next_escalation_at__isnull=False, escalation_chain__isnull=False)
            .order_by("pk")
        )
        if not candidates:
            return 0
        chains: dict[int | None, EscalationChain] = {c.pk: c for c in EscalationChain.objects.filter(pk__in={n.escalation_chain_id for n in candidates})
                  .prefetch_related("levels")}
        stopped = []
        for n in candidates:
            level = _next_level(chains[n.escalation_chain_id], n.escalation_level)
            if level is not None and level.condition == EscalationCondition.NOT_RESOLVED:
                n.next_escalation_at = None
                _trace_note(n, {"at": now.isoformat(), "stopped": "source resolved", "level": level.level})
                stopped.append(n)
        if stopped:
            Notification.objects.bulk_update(stopped, ["next_escalation_at", "trace"])
    return len(stopped)


def escalation_after_intake(*, notifications: list[Notification], event_type: str) -> None:
    """Intake hook (inside its transaction): start matching chains now, or stop the chains an
    ``incident.resolved`` settles. The beat tasks do the same a minute later if this is skipped."""
    if event_type in RESOLVING_EVENT_TYPES:
        resources = {(n.organization_id, n.resource_type, n.resource_id) for n in notifications if n.resource_id}
        for organization_id, resource_type, resource_id in resources:
            escalation_resolve_for(organization_id=organization_id, resource_type=resource_type, resource_id=resource_id)
        return
    ids = [n.pk for n in notifications if n.status not in (NotificationStatus.SKIPPED, NotificationStatus.SCHEDULED)]
    if ids:
        escalation_start_for(notification_ids=ids)


# --- administration (the /api/v1/admin/escalation-chains/ API) -----------------------------------


def _chain_audit(*, chain: EscalationChain, user_id: int | None, change: str) -> None:
    # Chains are part of an organization's routing configuration: audited as such.
    NotificationAuditLog.objects.create(
        organization_id=chain.organization_id, action=AuditAction.CHANNEL_CONFIGURATION_CHANGED,
        actor_type=AuditActorType.USER if user_id else AuditActorType.SYSTEM, actor_id=str(user_id or ""),
        user_id=user_id,
        details={"kind": "escalation_chain", "change": change, "escalation_chain_id": chain.pk, "name": chain.name,
                 "levels": [{"level": lvl.level, "delay_minutes": lvl.delay_minutes, "channels": lvl.channels,
                             "recipient_type": lvl.recipient_type, "condition": lvl.condition}
                            for lvl in chain.levels.all()]},
    )


def _levels_check(*, organization_id: int | None, levels: list[dict[str, Any]]) -> None:
    numbers = [item["level"] for item in levels]
    if len(set(numbers)) != len(numbers):
        raise ValidationError({"levels": ["Each level number may appear once."]})
    user_ids = {item["recipient_user_id"] for item in levels if item.get("recipient_user_id")}
    if user_ids:
        members = Membership.objects.filter(user_id__in=user_ids)
        if organization_id is not None:
            members = members.filter(organization_id=organization_id)
        unknown = user_ids - set(members.values_list("user_id", flat=True))
        if unknown:
            raise ValidationError({"levels": [f"Not a member of the organization: user {sorted(unknown)[0]}."]})


@transaction.atomic
def escalation_chain_save(
    *, organization_id: int | None, data: dict[str, Any], user_id: int | None, chain_id: int | None = None
) -> EscalationChain:
    """Create a chain, or update one of ``organization_id`` (None: a platform-wide one).

    ``data`` is validated input; ``levels``, when present, replaces every level of the chain.
    """
    chain: EscalationChain | None
    if chain_id is None:
        chain = EscalationChain(organization_id=organization_id)
    else:
        chain = EscalationChain.objects.select_for_update().filter(pk=chain_id, organization_id=organization_id).first()  # type: ignore[misc]  # None selects the platform-wide chains (organization IS NULL)
        if chain is None:
            raise NotFound("Escalation chain not found.")
    for attr in ("name", "description", "trigger_criticality", "trigger_event_types", "is_active"):
        if attr in data:
            setattr(chain, attr, data[attr])
    duplicate = EscalationChain.objects.filter(organization_id=organization_id, name=chain.name).exclude(pk=chain.pk)  # type: ignore[misc]  # None selects the platform-wide chains (organization IS NULL)
    if duplicate.exists():
        raise Conflict({"name": ["A chain with this name already exists."]})
    levels = data.get("levels")
    if levels is not None:
        _levels_check(organization_id=organization_id, levels=levels)
    chain.save()
    if levels is not None:
        chain.levels.all().delete()
        EscalationLevel.objects.bulk_create(
            EscalationLevel(
                chain=chain, level=item["level"], delay_minutes=item["delay_minutes"], channels=item["channels"],
                recipient_type=item.get("recipient_type", EscalationRecipientType.ORIGINAL),
                recipient_role=item.get("recipient_role") or "", recipient_user_id=item.get("recipient_user_id"),
                condition=item.get("condition", EscalationCondition.NOT_ACKNOWLEDGED),
            )
            for item in sorted(levels, key=lambda i: i["level"])
        )
    _chain_audit(chain=chain, user_id=user_id, change="created" if chain_id is None else "changed")
    return chain


@transaction.atomic
def escalation_chain_delete(*, organization_id: int | None, chain_id: int, user_id: int | None) -> None:
    """Delete a chain; notifications on it stop escalating (their chain is set to NULL)."""
    chain = EscalationChain.objects.select_for_update().filter(pk=chain_id, organization_id=organization_id).first()  # type: ignore[misc]  # None selects the platform-wide chains (organization IS NULL)
    if chain is None:
        raise NotFound("Escalation chain not found.")
    Notification.objects.filter(escalation_chain=chain, next_escalation_at__isnull=False).update(next_escalation_at=None)
    _chain_audit(chain=chain, user_id=user_id, change="deleted")
    chain.delete()
