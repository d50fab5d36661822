"""Set-based fan-out: one event to N recipients without a model instance per recipient.

Recipients that share a *situation* — the same preference rows, the same quiet-hours
configuration read in the same time zone, the same presence, the same kinds of address, the
same locale — get the same routing decision, so each distinct situation is routed once
(engine.routing's own rules, on a representative recipient) and its decision is written for
all of its recipients at once:

* notifications and deliveries with one ``INSERT … SELECT … FROM unnest(…)`` each
  (engine.setwrite), in the caller's transaction;
* IN_APP deliveries are the send itself: rendered once per situation, recorded SENT at intake
  and handed to the in-app bus (exchange ``notification.inapp.deliver``) after commit, in
  messages of ``INAPP_PUBLISH_CHUNK`` items — no deliver_batch task is involved;
* the audit trail of an event above ``FANOUT_AUDIT_THRESHOLD`` recipients is ONE
  ``notification.created`` row for the event (``details.event_id``, counts per situation)
  plus one row per exception (a held notification); the audit API answers per notification by
  joining that event row (notifications.api.history). Smaller events keep one row per
  notification.

What still takes the per-recipient path (engine.intake): a per-recipient data override,
scheduled or escalating (HIGH/CRITICAL) events, digest preferences, rate-limited channels,
sealed values, in-app templates that name the recipient, and databases other than PostgreSQL
(the embedded SQLite run). `fanout_plan` returns None for those.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction

from common import sealing
from notifications.enums import (
    AuditAction,
    Channel,
    Criticality,
    DeliveryStatus,
    NotificationStatus,
)
from notifications.models import Notification, NotificationAuditLog, NotificationDelivery

from common import query as _query  # noqa: F401  (registers the field__any lookup)

from . import setwrite
from .preferences import preferences_load
from .presence import presence_online_user_ids
from .quiet_hours import quiet_hours_load, quiet_state_at
from .routing import (
    SUPPRESSIBLE_CHANNELS,
    ChannelRules,
    Recipient,
    RecipientRoute,
    RoutingContext,
    _has_limits,
    _route_channel,
    channel_rules_load,
    suppressions_load,
)
from .status import notification_status_derive

logger = logging.getLogger(__name__)

FANOUT_AUDIT_THRESHOLD = 100
INAPP_INLINE_TARGETS = 100
INAPP_TASK_CHUNK = 2000
IN_APP_PROVIDER = "in_app"


@dataclass
class Situation:
    route: RecipientRoute  # the representative recipient's route: the decision for all of them
    rows: list[int] = field(default_factory=list)  # indexes into the recipients
    status: str = ""
    content: dict[str, Any] | None = None  # IN_APP content rendered for this situation


@dataclass
class FanoutPlan:
    ctx: RoutingContext
    recipients: list[Recipient]
    situations: list[Situation]
    group_of_row: list[int]  # 1-based situation index per recipient


def _address_kind(channel: str) -> str:
    from notifications.enums import CHANNEL_ADDRESS_FIELD

    return CHANNEL_ADDRESS_FIELD.get(channel) or "user"


def fanout_plan(*, ctx: RoutingContext, recipients: list[Recipient]) -> FanoutPlan | None:
    """Route every distinct situation once; None when the event needs the per-recipient path."""
    if connection.vendor != "postgresql" or ctx.scheduled or not recipients:
        return None
    user_ids = [r.user_id for r in recipients if r.user_id]
    rules = channel_rules_load(organization_id=ctx.organization_id)
    default_rules = ChannelRules.default()
    if ctx.criticality != Criticality.CRITICAL and any(_has_limits(rules.get(c)) for c in ctx.channels):
        return None  # per-user rate-limit counters are per recipient by nature
    prefs = preferences_load(
        organization_id=ctx.organization_id, user_ids=user_ids, event_type=ctx.event_type.key,
        category=ctx.category, team_id=ctx.team_id, project_id=ctx.project_id,
    )
    quiet_set = quiet_hours_load(organization_id=ctx.organization_id, user_ids=user_ids)
    # Presence matters only where a preference row sends a channel "only when offline": the
    # others are not looked up at all (their trace says presence was not needed).
    def needs_presence(rows) -> bool:
        return any((row.channels.get(c) or {}).get("only_when_offline") for row in rows for c in ctx.channels)

    if needs_presence(prefs.shared):
        presence_users = user_ids
    else:
        presence_users = [uid for uid, rows in prefs.by_user.items() if needs_presence(rows)]
    checked = set(presence_users)
    online = presence_online_user_ids(user_ids=presence_users, now=ctx.now) if presence_users else set()
    suppressed = suppressions_load(organization_id=ctx.organization_id, channels=list(ctx.channels), recipients=recipients)
    suppressible = [c for c in ctx.channels if c in SUPPRESSIBLE_CHANNELS]
    kinds = {_address_kind(c) for c in ctx.channels}
    by_user = prefs.by_user
    index: dict[tuple, int] = {}
    situations: list[Situation] = []
    group_of_row: list[int] = []
    for i, r in enumerate(recipients):
        uid = r.user_id
        config = quiet_set.for_user(uid)
        tz = None if config is None or not config.enabled or config.owner == "user" else r.timezone
        key = (
            uid is None,
            tuple(row.id for row in by_user.get(uid, ())) if uid else (),
            id(config), tz, (uid in online if uid in checked else None) if uid else False,
            bool(r.email) if "email" in kinds else None, bool(r.phone) if "phone" in kinds else None,
            r.locale,
            tuple((c, (r.address(c) or "").strip().lower()) in suppressed for c in suppressible) if suppressed else (),
        )
        g = index.get(key)
        if g is None:
            situations.append(Situation(route=_route_one(ctx, r, rules, default_rules, prefs, config, tz, uid in online,
                                                         suppressed, checked=uid in checked)))
            g = index[key] = len(situations)
        situations[g - 1].rows.append(i)
        group_of_row.append(g)
    for s in situations:
        if any(c.used and c.digest_frequency and c.digest_frequency != "NONE" for c in s.route.channels):
            return None  # digests collect per recipient (engine.digest)
    return FanoutPlan(ctx=ctx, recipients=recipients, situations=situations, group_of_row=group_of_row)


def _route_one(ctx, recipient, rules, default_rules, prefs, config, tz, is_online, suppressed, *,
               checked: bool = True) -> RecipientRoute:
    at = ctx.send_at if ctx.scheduled else ctx.now
    quiet = quiet_state_at(config, now=at, timezone_name=tz)
    channels = [
        _route_channel(ctx=ctx, recipient=recipient, channel=channel, rules=rules.get(channel, default_rules),
                       prefs=prefs, quiet=quiet, online=is_online, suppressed=suppressed)
        for channel in ctx.channels
    ]
    presence = ("ONLINE" if is_online else "OFFLINE") if checked else "NOT_NEEDED"
    return RecipientRoute(recipient=recipient, channels=channels, quiet=quiet.describe(),
                          presence=presence if recipient.user_id else None)


# --- in-app content, once per situation --------------------------------------------------------


PERSONAL_MARKERS = ("recipient", "ack_url")


def inapp_contents(plan: FanoutPlan, *, common: Mapping[str, Any]) -> bool:
    """Render the IN_APP content of every situation that sends it. False when the template
    names the recipient (or a per-notification link): that event takes the per-recipient path."""
    wanted = [s for s in plan.situations
              if any(c.channel == Channel.IN_APP and c.status == DeliveryStatus.PENDING for c in s.route.channels)]
    if not wanted:
        return True
    from common.exceptions import ProviderTransientError, ValidationError

    from .delivery_content import Templates, delivery_render, notification_context
    from .payload import PayloadError, delivery_payload_prepare, inbox_fields, organization_channel_settings

    probe = Notification(**{k: v for k, v in common.items() if k != "template"}, template=common.get("template"))
    if sealing.has_sealed(probe.data):
        return False
    templates = Templates.load([probe])
    template = templates.template_for(probe)
    block = templates.channels.get(template.pk, {}).get(Channel.IN_APP) if template else None
    if block is not None:
        sources = repr([getattr(block, f.attname) for f in block._meta.concrete_fields])
        if any(marker in sources for marker in PERSONAL_MARKERS):
            return False
    if "ack_url" in repr(probe.channel_options or {}):
        return False
    org_id = common["organization"].pk
    channel_settings = organization_channel_settings([org_id])
    if "ack_url" in repr(channel_settings):
        return False
    probe.pk = 0  # the context's per-notification link is not used (checked above)
    context = notification_context(probe, variable_mapping=templates.mapping_for(probe), data=probe.data,
                                   with_ack_url=False)
    rendered: dict[str, dict[str, Any]] = {}
    for s in wanted:
        locale = s.route.recipient.locale
        if locale not in rendered:
            try:
                content: dict[str, Any] = delivery_render(notification=probe, channel=Channel.IN_APP, locale=locale,
                                                          templates=templates, context=context)
                delivery_payload_prepare(content, channel=Channel.IN_APP, organization_id=org_id,
                                         event_options=(probe.channel_options or {}).get(Channel.IN_APP),
                                         all_settings=channel_settings, context=context)
            except (ValidationError, PayloadError, ProviderTransientError):
                return False  # the per-recipient path records the failure per delivery, as a worker would
            content["inbox"] = inbox_fields(probe, content.get("options") or {})
            rendered[locale] = content
        s.content = rendered[locale]
    return True


# --- the writes ----------------------------------------------------------------------------------


def _situation_status(s: Situation) -> tuple[str, list[str]]:
    statuses = []
    for c in s.route.channels:
        if c.status is None:
            continue
        statuses.append(DeliveryStatus.SENT if c.channel == Channel.IN_APP and c.status == DeliveryStatus.PENDING
                        else c.status)
    status: str
    if any(c.status == DeliveryStatus.PENDING and c.channel != Channel.IN_APP for c in s.route.channels):
        status = NotificationStatus.PENDING
    elif DeliveryStatus.SENT in statuses:
        status = notification_status_derive(statuses, current=NotificationStatus.PENDING)
    elif DeliveryStatus.HELD in statuses:
        status = NotificationStatus.HELD
    else:
        status = NotificationStatus.SKIPPED
    delivered: list[str] = [Channel.IN_APP] if DeliveryStatus.SENT in statuses else []
    return status, delivered


@dataclass
class FanoutWritten:
    notification_ids: list[int]
    statuses: list[str]  # per recipient
    pending_delivery_ids: list[int]
    inapp_sent: int


def fanout_write(plan: FanoutPlan, *, common: Mapping[str, Any], audit_actor: Any, source: str) -> FanoutWritten:
    """Write the notifications, deliveries and audit rows of a planned event (inside the caller's transaction)."""
    ctx, recipients, situations = plan.ctx, plan.recipients, plan.situations
    now = ctx.now
    n = len(recipients)
    ids = setwrite.sequence_ids(Notification, n)
    per_status, per_delivered, per_trace, titles, bodies, htmls, urls, labels, completed = [], [], [], [], [], [], [], [], []
    options, groups, inbox_expiry, images = [], [], [], []
    for s in situations:
        status, delivered = _situation_status(s)
        s.status = status
        per_status.append(status)
        per_delivered.append(delivered)
        per_trace.append(s.route.trace(ctx))
        content = s.content or {}
        titles.append((content.get("title") or common["title"])[:255])
        bodies.append(content.get("body") or common["body"])
        htmls.append(content.get("body_html") or "")
        urls.append((content.get("action_url") if s.content else common["action_url"]) or "")
        labels.append((content.get("action_label") or "")[:100])
        inbox = content.get("inbox") or {}
        options.append(inbox.get("channel_options", common.get("channel_options") or {}))
        groups.append(inbox.get("group_key", ""))
        inbox_expiry.append(inbox.get("inbox_expires_at"))
        images.append(inbox.get("image_url", ""))
        final = status not in (NotificationStatus.PENDING, NotificationStatus.PROCESSING, NotificationStatus.HELD)
        completed.append(now if final else None)
    constants = {k: v for k, v in common.items() if k not in ("organization", "template", "title", "body", "action_url")}
    constants.update(organization_id=common["organization"].pk,
                     template_id=common["template"].pk if common.get("template") else None, created_at=now, updated_at=now)
    setwrite.rows_insert(
        Notification,
        per_row={"id": ids, "recipient_id": [r.user_id for r in recipients],
                 "recipient_email": [r.email for r in recipients], "recipient_phone": [r.phone for r in recipients],
                 "recipient_locale": [r.locale for r in recipients], "recipient_timezone": [r.timezone for r in recipients]},
        per_group={"status": per_status, "channels_delivered": per_delivered, "trace": per_trace, "title": titles,
                   "body": bodies, "body_html": htmls, "action_url": urls, "action_label": labels,
                   "completed_at": completed, "channel_options": options, "group_key": groups,
                   "inbox_expires_at": inbox_expiry, "image_url": images},
        group_of_row=plan.group_of_row, constants=constants,
    )

    plan_rows: dict[str, list[Any]] = {k: [] for k in (
        "g", "channel", "status", "kind", "skip_reason", "next_retry_at", "rendered", "provider", "sent", "attempts")}
    inapp_groups: set[int] = set()
    for g, s in enumerate(situations, start=1):
        for c in s.route.channels:
            if c.status is None:
                continue
            inapp = c.channel == Channel.IN_APP and c.status == DeliveryStatus.PENDING
            if inapp:
                inapp_groups.add(g)
            plan_rows["g"].append(g)
            plan_rows["channel"].append(c.channel)
            plan_rows["status"].append(DeliveryStatus.SENT if inapp else c.status)
            plan_rows["kind"].append(_address_kind(c.channel))
            plan_rows["skip_reason"].append(
                "" if c.status == DeliveryStatus.PENDING else
                ((c.detail if c.status == DeliveryStatus.SKIPPED else c.reason) or "")[:255])
            plan_rows["next_retry_at"].append(c.hold_until if c.status == DeliveryStatus.HELD else None)
            plan_rows["rendered"].append({k: v for k, v in (s.content or {}).items() if k not in ("extra", "inbox")}
                                         if inapp else {})
            plan_rows["provider"].append(IN_APP_PROVIDER if inapp else "")
            plan_rows["sent"].append(inapp)
            plan_rows["attempts"].append(1 if inapp else 0)
    pending: list[int] = []
    if plan_rows["g"]:
        returned = setwrite.rows_insert(
            NotificationDelivery,
            per_row={"notification_id": ids, "locale": [r.locale for r in recipients],
                     "r_user_id": [r.user_id for r in recipients], "r_email": [r.email[:320] for r in recipients],
                     "r_phone": [r.phone for r in recipients]},
            group_of_row=plan.group_of_row, plan=plan_rows,
            constants={
                "organization_id": common["organization"].pk, "channel": "plan:channel", "status": "plan:status",
                "skip_reason": "plan:skip_reason", "next_retry_at": "plan:next_retry_at", "rendered": "plan:rendered",
                "provider": "plan:provider", "attempts": "plan:attempts",
                "recipient_address": "sql:CASE p.kind WHEN 'email' THEN r.r_email WHEN 'phone' THEN r.r_phone "
                                     "ELSE coalesce(r.r_user_id::text, '') END",
                "provider_message_id": "sql:CASE WHEN p.sent THEN 'inapp-' || md5(random()::text || r.notification_id::text) "
                                       "ELSE '' END",
                "sent_at": "sql:CASE WHEN p.sent THEN now() END", "created_at": now, "updated_at": now,
            },
            returning=("id", "status"),
        )
        pending = [pk for pk, status in returned if status == DeliveryStatus.PENDING]
    _audit_write(plan, ids=ids, common=common, audit_actor=audit_actor, source=source)
    inapp_sent = sum(len(situations[g - 1].rows) for g in inapp_groups)
    if inapp_groups:
        _publish_after_commit(plan, ids=ids, common=common, groups=inapp_groups)
    return FanoutWritten(notification_ids=ids, statuses=[situations[g - 1].status for g in plan.group_of_row],
                         pending_delivery_ids=pending, inapp_sent=inapp_sent)


def _audit_write(plan: FanoutPlan, *, ids: list[int], common: Mapping[str, Any], audit_actor: Any, source: str) -> None:
    ctx, situations = plan.ctx, plan.situations
    org_id = common["organization"].pk
    actor = {"organization_id": org_id, "actor_type": audit_actor.type, "actor_id": audit_actor.id[:100],
             "actor_label": audit_actor.label[:200]}
    event = {"event_id": str(common["event_id"]), "event_type": ctx.event_type.key, "source": source,
             "correlation_id": common["correlation_id"]}
    summaries = [{c.channel: c.trace()["decision"] for c in s.route.channels} for s in situations]
    recipients = plan.recipients
    if len(recipients) > FANOUT_AUDIT_THRESHOLD:
        NotificationAuditLog.objects.create(
            **actor, action=AuditAction.NOTIFICATION_CREATED,
            details={**event, "fanout": True, "recipients": len(recipients),
                     "notification_ids": [min(ids), max(ids)],
                     "situations": [{"recipients": len(s.rows), "status": s.status, "channels": summaries[g]}
                                    for g, s in enumerate(situations)]},
        )
    else:
        setwrite.rows_insert(
            NotificationAuditLog,
            per_row={"notification_id": ids, "user_id": [r.user_id for r in recipients]},
            per_group={"details": [{**event, "status": s.status, "channels": summaries[g]} for g, s in enumerate(situations)]},
            group_of_row=plan.group_of_row, constants={**actor, "action": AuditAction.NOTIFICATION_CREATED},
        )
    held = [g for g, s in enumerate(situations, start=1) if s.status == NotificationStatus.HELD]
    if held:  # the exceptions: one row per held notification
        rows = [i for g in held for i in situations[g - 1].rows]
        setwrite.rows_insert(
            NotificationAuditLog,
            per_row={"notification_id": [ids[i] for i in rows], "user_id": [recipients[i].user_id for i in rows]},
            per_group={"details": [
                {c.channel: {"reason": c.reason, "until": c.hold_until.isoformat() if c.hold_until else None}
                 for c in situations[g - 1].route.channels if c.status == DeliveryStatus.HELD} for g in held]},
            group_of_row=[held.index(plan.group_of_row[i]) + 1 for i in rows],
            constants={**actor, "action": AuditAction.NOTIFICATION_HELD},
        )


# --- the in-app bus -------------------------------------------------------------------------------


def _publish_after_commit(plan: FanoutPlan, *, ids: list[int], common: Mapping[str, Any], groups: set[int]) -> None:
    """After commit: the inbox items of every IN_APP delivery recorded at intake, in chunks."""
    from notifications.serializers_inbox import InboxNotificationSerializer

    items_by_group: dict[int, dict[str, Any]] = {}
    for g in groups:
        s = plan.situations[g - 1]
        content = s.content or {}
        probe = Notification(
            **{k: v for k, v in common.items() if k not in ("title", "body", "action_url")},
            title=content.get("title") or common["title"], body=content.get("body") or common["body"],
            action_url=content.get("action_url") or "", action_label=content.get("action_label") or "",
            created_at=plan.ctx.now,
        )
        for name, value in (content.get("inbox") or {}).items():
            setattr(probe, name, value)
        items_by_group[g] = dict(InboxNotificationSerializer(probe).data)
    targets = [(ids[i], r.user_id, plan.group_of_row[i]) for i, r in enumerate(plan.recipients)
               if plan.group_of_row[i] in groups and r.user_id]
    if len(targets) <= INAPP_INLINE_TARGETS:
        # A few recipients: published by this process's publisher thread once the rows are
        # committed, batched with other events' (engine.inapp_publisher); the answer does not wait.
        from .inapp_publisher import inapp_publish_soon

        transaction.on_commit(lambda: inapp_publish_soon(items_by_group=items_by_group, targets=targets))
        return
    # A big fan-out hands its items to a worker (a task per INAPP_TASK_CHUNK recipients): the
    # caller's answer does not wait for thousands of unread counts and bus messages.
    from common.publish import tasks_publish_on_commit

    groups_payload = [[g, dict(item)] for g, item in items_by_group.items()]
    tasks_publish_on_commit("notifications.inapp_publish", calls=(
        [groups_payload, [list(t) for t in targets[start:start + INAPP_TASK_CHUNK]]]
        for start in range(0, len(targets), INAPP_TASK_CHUNK)))


def inapp_targets_publish(*, items_by_group: Mapping[int, Mapping[str, Any]], targets: Sequence[Sequence[int]]) -> None:
    """Publish the inbox items of (notification id, user id, situation) targets to the in-app bus,
    INAPP_PUBLISH_CHUNK items per message, with each recipient's unread count. A bus that cannot
    take them gives these deliveries back (PENDING, due now): the retry path sends them again."""
    from .inapp_publisher import entries_publish

    entries_publish([(nid, uid, items_by_group[g]) for nid, uid, g in targets])


def fanout_result(written: FanoutWritten, recipients: Sequence[Recipient]) -> list[tuple[int, str | None, str]]:
    return [(nid, str(r.user_id) if r.user_id else None, status)
            for nid, r, status in zip(written.notification_ids, recipients, written.statuses, strict=True)]


def audit_for_notification_q(notification_id: int):
    """Audit rows of one notification: its own, and the one row of the fan-out that created it.

    A fan-out above FANOUT_AUDIT_THRESHOLD records ``notification.created`` once per event (or
    per chunk of an audience) with the range of notification ids it wrote; this finds it through
    the notification's event id, so the audit API still answers per notification.
    """
    from django.db.models import Q

    row = Notification.objects.filter(pk=notification_id).values("event_id", "organization_id").first()
    own = Q(notification_id=notification_id)
    if row is None:
        return own
    event_rows = [
        pk for pk, details in NotificationAuditLog.objects.filter(
            organization_id=row["organization_id"], action=AuditAction.NOTIFICATION_CREATED, notification__isnull=True,
            details__event_id=str(row["event_id"]),
        ).values_list("pk", "details")
        if isinstance(details, dict) and len(details.get("notification_ids") or []) == 2
        and details["notification_ids"][0] <= notification_id <= details["notification_ids"][1]
    ]
    return own | Q(pk__in=event_rows) if event_rows else own
