"""Batched delivery: enqueue, claim, render, send, record.

Deliveries are created PENDING by intake/routing. A ``deliver_batch`` task claims up to
100 of them (PENDING → SENDING, in its own short transaction), renders each one for its
channel and locale, sends it through the provider registry, then records every outcome
in a second short transaction: SENT/DELIVERED, back to PENDING with ``next_retry_at``
(transient failure) or FAILED (permanent failure, or attempts exhausted). The claim is what
makes a redelivered task harmless: rows that are no longer PENDING are skipped, so a batch
run twice sends nothing twice.

Every step is set-based: the number of queries of a batch does not depend on its size.
"""
from __future__ import annotations

import logging
import random
import secrets
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from common import sealing
from common.exceptions import ProviderTransientError, ValidationError
from common.links import html_links_sanitize, link_safe_or_empty
from common.publish import tasks_publish_on_commit
from notifications.engine import rendering
from notifications.enums import (
    DELIVERY_SUCCESS_STATUSES,
    AuditAction,
    AuditOutcome,
    Channel,
    DeliveryStatus,
    NotificationStatus,
)
from notifications.models import (
    DeadLetter,
    EventType,
    Notification,
    NotificationAuditLog,
    NotificationDelivery,
    NotificationTemplate,
    TemplateChannel,
)
from notifications.engine.bulk import bulk_update_rows
from notifications.engine.payload import (
    NOT_STORED,
    PayloadError,
    delivery_payload_prepare,
    inbox_fields,
    message_options_apply,
    organization_channel_settings,
)
from notifications.engine.status import notifications_status_refresh

logger = logging.getLogger(__name__)

BATCH_SIZE = 100
# Waits before the 2nd, 3rd and 4th attempt; later attempts reuse the last one.
RETRY_BACKOFF = (timedelta(minutes=5), timedelta(minutes=15), timedelta(hours=1))
RETRY_JITTER = 0.1  # ±10 %, so a burst of failures does not come back as a burst
IN_APP_PROVIDER = "in_app"


def inapp_message_id() -> str:
    """An in-app delivery's message id: random, so that no one can name another's delivery."""
    return f"inapp-{secrets.token_hex(16)}"


# --- enqueue ---------------------------------------------------------------------------


def _chunks(ids: list[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def deliveries_enqueue(*, delivery_ids: Iterable[int]) -> None:
    """Queue ``notifications.deliver_batch`` tasks of at most BATCH_SIZE ids, after commit.

    Safe inside or outside a transaction: ``on_commit`` runs at once when no transaction
    is open, and never if the surrounding transaction rolls back.
    """
    ids = sorted({int(pk) for pk in delivery_ids})
    # Robust: the rows are committed whatever happens to the publish. If the broker is down
    # the caller still gets its answer, and the sweeper queues the rows again later.
    tasks_publish_on_commit("notifications.deliver_batch", calls=([chunk] for chunk in _chunks(ids, BATCH_SIZE)))


# --- claim -------------------------------------------------------------------------------


def delivery_claim_batch(*, delivery_ids: Iterable[int]) -> list[int]:
    """Claim the due PENDING rows among ``delivery_ids``: PENDING → SENDING, attempts + 1.

    Rows locked by another worker are skipped (SKIP LOCKED), as are rows that are not
    PENDING any more (already sent, failed, held, claimed by a previous run of the task)
    and rows whose ``next_retry_at`` is still in the future. Returns the claimed ids.
    """
    ids = sorted({int(pk) for pk in delivery_ids})
    if not ids:
        return []
    now = timezone.now()
    with transaction.atomic():
        claimed = list(
            NotificationDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(pk__in=ids, status=DeliveryStatus.PENDING)
            .filter(Q(next_retry_at__isnull=True) | Q(next_retry_at__lte=now))
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        if claimed:
            NotificationDelivery.objects.filter(pk__in=claimed).update(
                status=DeliveryStatus.SENDING, claimed_at=now, attempts=F("attempts") + 1, updated_at=now
            )
    return claimed


# --- rendering inputs --------------------------------------------------------------------


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
    notification: Notification, *, variable_mapping: Mapping[str, str] | None, data: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Render context of one notification: mapped event variables + the standard ones."""
    standard = {
        "recipient.name": _recipient_name(notification),
        "actor.name": notification.actor_name,
        "action_url": absolute_url(link_safe_or_empty(notification.action_url)),
        "ack_url": ack_link_url(notification_id=notification.pk),
        "organization.name": notification.organization.name,
        "resource.type": notification.resource_type,
        "resource.id": notification.resource_id,
        "resource.name": notification.resource_name,
        "event.type": notification.event_type,
    }
    return rendering.template_context_build(
        variable_mapping=variable_mapping, source=_event_source(notification, data=data), standard=standard
    )


@dataclass
class _Templates:
    """Templates and event types for a set of notifications, loaded in three queries."""

    event_types: dict[str, EventType] = field(default_factory=dict)
    # (organization_id or None, key) -> template
    by_key: dict[tuple[int | None, str], NotificationTemplate] = field(default_factory=dict)
    by_id: dict[int, NotificationTemplate] = field(default_factory=dict)
    # template id -> channel -> TemplateChannel
    channels: dict[int, dict[str, TemplateChannel]] = field(default_factory=dict)

    @classmethod
    def load(cls, notifications: Iterable[Notification]) -> _Templates:
        notifications = list(notifications)
        loaded = cls()
        type_keys = {n.event_type for n in notifications}
        loaded.event_types = {et.key: et for et in EventType.objects.filter(key__in=type_keys)}
        template_keys = {loaded.event_types[k].template_key if k in loaded.event_types else k for k in type_keys}
        org_ids = {n.organization_id for n in notifications}
        explicit = {n.template_id for n in notifications if n.template_id}
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

    def mapping_for(self, notification: Notification) -> dict[str, str]:
        event_type = self.event_types.get(notification.event_type)
        return dict(event_type.variable_mapping or {}) if event_type else {}


def delivery_render(
    *, notification: Notification, channel: str, locale: str, templates: _Templates, context: Mapping[str, Any]
) -> dict[str, str]:
    """Content of one delivery: the template's channel block in ``locale`` (English fallback)."""
    template = templates.template_for(notification)
    block = templates.channels.get(template.pk, {}).get(channel) if template else None
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


# --- sending -------------------------------------------------------------------------------


@dataclass
class _Outcome:
    delivery: NotificationDelivery
    status: str  # a DeliveryStatus
    provider: str = ""
    provider_message_id: str = ""
    provider_response: Any = None
    cost_amount: Decimal | None = None
    cost_currency: str = ""
    error: str = ""
    error_code: str = ""
    transient: bool = False
    retry_after: float | None = None
    rendered: dict[str, Any] = field(default_factory=dict)


def _outbound_message(delivery: NotificationDelivery, notification: Notification, content: Mapping[str, Any]):
    from providers.base import OutboundMessage

    extra = dict(content.get("extra") or {})
    metadata: dict[str, Any] = {
        "notification_id": notification.pk, "delivery_id": delivery.pk, "organization_id": notification.organization_id,
        "category": notification.category,
    }
    if notification.recipient_id:
        metadata["user_id"] = notification.recipient_id
    message = OutboundMessage(
        channel=delivery.channel,
        to=delivery.recipient_address or (str(notification.recipient_id) if notification.recipient_id else ""),
        text=content.get("body", ""),
        subject=content.get("subject", ""),
        html=content.get("body_html", ""),
        title=content.get("title", ""),
        data={
            "notification_id": str(notification.pk),
            "delivery_id": str(delivery.pk),
            "event_type": notification.event_type,
            "event_id": str(notification.event_id),
        },
        locale=delivery.locale or notification.recipient_locale or "en",
        criticality=notification.criticality,
        idempotency_key=str(delivery.pk),
        action_url=absolute_url(link_safe_or_empty(content.get("action_url") or "")),
        metadata=metadata,
    )
    if not notification.recipient_id and isinstance(notification.data, dict) and notification.data.get("unsubscribeUrl"):
        # A bare address has no preferences to turn off: the sender gives its own one-click link
        # (an invitee's "stop invitations"), used for List-Unsubscribe.
        message.unsubscribe_url = absolute_url(str(notification.data["unsubscribeUrl"]))
    message_options_apply(message, content.get("options") or extra, attachments=content.get("attachments"))
    if notification.escalation_chain_id:
        from notifications.engine.ack import ack_prompt_attach

        ack_prompt_attach(message, notification=notification)
    return message


def _outcome_from_result(delivery: NotificationDelivery, result: Any, content: dict[str, Any]) -> _Outcome:
    """Map what the provider layer answered (a SendOutcome or an exception) to an outcome."""
    raw_attempts = getattr(result, "attempts", None) or []
    attempts = _safe_response(raw_attempts) or None
    if isinstance(result, ProviderTransientError):
        error = str(result.detail)
        last = next((a.error for a in reversed(raw_attempts) if getattr(a, "error", "")), "")
        if last and last not in error:
            error = f"{error} Last error: {last}"
        return _Outcome(delivery, DeliveryStatus.PENDING, error=error, error_code=result.code or "transient",
                        transient=True, retry_after=getattr(result, "retry_after", None),
                        provider_response={"attempts": attempts} if attempts else None, rendered=content)
    if isinstance(result, Exception):
        detail = getattr(result, "detail", None) or str(result) or result.__class__.__name__
        code = getattr(result, "code", None) or "permanent"
        return _Outcome(delivery, DeliveryStatus.FAILED, error=str(detail), error_code=code,
                        provider_response={"attempts": attempts} if attempts else None, rendered=content)
    sent = result.result
    response: dict[str, Any] = {"result": _safe_response(sent.raw)} if sent.raw else {}
    if attempts:
        response["attempts"] = attempts
    return _Outcome(
        delivery,
        DeliveryStatus.DELIVERED if sent.status == "delivered" else DeliveryStatus.SENT,
        provider=result.provider_code,
        provider_message_id=sent.provider_message_id or "",
        provider_response=response or None,
        cost_amount=sent.cost_amount,
        cost_currency=sent.cost_currency or "",
        rendered=content,
    )


def _journaled_outcomes(to_send: list[tuple[NotificationDelivery, Notification, dict[str, Any]]]) -> list[_Outcome]:
    """Rows a killed worker already sent (per the send journal) are recorded, not sent again.

    Removes them from ``to_send`` in place.
    """
    from providers.journal import journal_lookup

    journal = journal_lookup(keys=[str(d.pk) for d, _, _ in to_send])
    if not journal:
        return []
    outcomes: list[_Outcome] = []
    remaining = []
    for delivery, notification, content in to_send:
        entry = journal.get(str(delivery.pk))
        if entry is None:
            remaining.append((delivery, notification, content))
            continue
        outcomes.append(_Outcome(
            delivery,
            DeliveryStatus.DELIVERED if entry.get("status") == "delivered" else DeliveryStatus.SENT,
            provider=entry.get("provider", ""),
            provider_message_id=entry.get("provider_message_id", ""),
            provider_response={"recovered_from_send_journal": True},
            cost_amount=Decimal(entry["cost_amount"]) if entry.get("cost_amount") else None,
            cost_currency=entry.get("cost_currency", ""),
            rendered=content,
        ))
    to_send[:] = remaining
    return outcomes


def _send_groups(pending: list[tuple[NotificationDelivery, Notification, dict[str, Any]]]) -> list[_Outcome]:
    """Send through the provider registry: one batch call per (organization, channel)."""
    from providers.services import provider_send_batch_with_failover

    groups: dict[tuple[int, str], list[tuple[NotificationDelivery, Notification, dict[str, Any]]]] = defaultdict(list)
    outcomes: list[_Outcome] = []
    for delivery, notification, content in pending:
        if delivery.channel != Channel.PUSH and not delivery.recipient_address:
            outcomes.append(_Outcome(delivery, DeliveryStatus.FAILED, error="No address for this channel.",
                                     error_code="no_address", rendered=content))
            continue
        groups[(notification.organization_id, delivery.channel)].append((delivery, notification, content))
    for (organization_id, channel), items in groups.items():
        messages = [_outbound_message(d, n, c) for d, n, c in items]
        try:
            results = provider_send_batch_with_failover(organization_id=organization_id, channel=channel, messages=messages)
        except Exception as exc:  # noqa: BLE001 - a bug in one provider must not strand the batch in SENDING
            logger.exception("deliveries %s: unexpected error while sending", [d.pk for d, _, _ in items])
            error = ProviderTransientError(f"Unexpected error: {exc.__class__.__name__}", code="unexpected")
            results = [error] * len(items)
        for (delivery, _notification, content), result in zip(items, results, strict=True):
            outcomes.append(_outcome_from_result(delivery, result, content))
    return outcomes


def _safe_response(value: Any) -> Any:
    """JSON-safe copy of a provider answer (providers already strip secrets from it)."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, Mapping):
        return {str(k): _safe_response(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_safe_response(v) for v in value]
    if hasattr(value, "as_dict"):
        return _safe_response(value.as_dict())
    if hasattr(value, "__dataclass_fields__"):
        from dataclasses import asdict

        return _safe_response(asdict(value))
    return str(value)


def retry_at(*, attempts: int, now: datetime, retry_after: float | None = None) -> datetime:
    """When attempt ``attempts + 1`` may run: 5 min, 15 min, 1 h (±10 %), or later if the provider asked."""
    base = RETRY_BACKOFF[min(max(attempts, 1), len(RETRY_BACKOFF)) - 1]
    wait = base.total_seconds() * random.uniform(1 - RETRY_JITTER, 1 + RETRY_JITTER)
    if retry_after:
        wait = max(wait, float(retry_after))
    return now + timedelta(seconds=wait)


# --- the batch -------------------------------------------------------------------------------


@dataclass
class BatchReport:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    expired: int = 0


def deliver_batch(*, delivery_ids: Iterable[int]) -> BatchReport:
    """Claim, render, send and record a batch of deliveries (see the module docstring)."""
    report = BatchReport()
    claimed = delivery_claim_batch(delivery_ids=delivery_ids)
    report.claimed = len(claimed)
    if not claimed:
        return report
    try:
        _deliver_claimed(claimed, report)
    except Exception as exc:
        # Nothing was recorded: give the claim back so a retry (not the sweeper's timeout) picks it up.
        _claims_release(claimed, error=f"{exc.__class__.__name__}: {exc}"[:500])
        raise
    return report


def _claims_release(delivery_ids: list[int], *, error: str) -> None:
    now = timezone.now()
    NotificationDelivery.objects.filter(pk__in=delivery_ids, status=DeliveryStatus.SENDING).update(
        status=DeliveryStatus.PENDING, next_retry_at=retry_at(attempts=1, now=now), error=error, updated_at=now
    )


def _deliver_claimed(claimed: list[int], report: BatchReport) -> None:
    deliveries = list(
        NotificationDelivery.objects.filter(pk__in=claimed)
        .select_related("notification", "notification__organization", "notification__recipient")
        .order_by("pk")
    )
    notifications = {d.notification_id: d.notification for d in deliveries}
    templates = _Templates.load(notifications.values())
    contexts: dict[int, dict[str, Any]] = {}
    secrets: dict[int, list[str]] = {}
    for pk, n in notifications.items():
        data, secrets[pk] = notification_secrets(n)
        contexts[pk] = notification_context(n, variable_mapping=templates.mapping_for(n), data=data)

    channel_settings = organization_channel_settings(n.organization_id for n in notifications.values())
    now = timezone.now()
    outcomes: list[_Outcome] = []
    in_app_content: dict[int, dict[str, str]] = {}
    in_app_deliveries: dict[int, int] = {}
    to_send: list[tuple[NotificationDelivery, Notification, dict[str, Any]]] = []
    for delivery in deliveries:
        notification = delivery.notification
        if notification.expires_at and notification.expires_at <= now:
            outcomes.append(_Outcome(delivery, DeliveryStatus.EXPIRED, error="Expired before delivery.", error_code="expired"))
            continue
        locale = delivery.locale or notification.recipient_locale or (
            notification.recipient.locale if notification.recipient else ""
        )
        try:
            content = delivery_render(
                notification=notification, channel=delivery.channel, locale=locale,
                templates=templates, context=contexts[notification.pk],
            )
        except ValidationError as exc:
            # A template that no longer compiles: no retry will fix it.
            outcomes.append(_Outcome(delivery, DeliveryStatus.FAILED, error=f"Template error: {exc.detail}",
                                     error_code="template"))
            continue
        try:
            delivery_payload_prepare(content, channel=delivery.channel, organization_id=notification.organization_id,
                                     event_options=(notification.channel_options or {}).get(delivery.channel),
                                     all_settings=channel_settings, context=contexts[notification.pk])
        except PayloadError as exc:
            outcomes.append(_Outcome(delivery, DeliveryStatus.FAILED, error=str(exc.detail), error_code=exc.code or "payload",
                                     rendered=content))
            continue
        except ProviderTransientError as exc:
            outcomes.append(_Outcome(delivery, DeliveryStatus.PENDING, error=str(exc.detail), error_code=exc.code or "transient",
                                     transient=True, rendered=content))
            continue
        if delivery.channel == Channel.IN_APP:
            if notification.recipient_id is None:
                outcomes.append(_Outcome(delivery, DeliveryStatus.FAILED, error="In-app needs a user recipient.",
                                         error_code="no_address", rendered=content))
                continue
            # The notification row is the inbox item: storing its content and handing it to the
            # in-app bus (after commit) is the send; the client's ack makes it DELIVERED.
            in_app_content[notification.pk] = content
            in_app_deliveries[notification.pk] = delivery.pk
            outcomes.append(_Outcome(delivery, DeliveryStatus.SENT, provider=IN_APP_PROVIDER,
                                     provider_message_id=inapp_message_id(), rendered=content))
            continue
        to_send.append((delivery, notification, content))

    outcomes.extend(_journaled_outcomes(to_send))
    outcomes.extend(_send_groups(to_send))
    _record(outcomes=outcomes, notifications=notifications, in_app_content=in_app_content, report=report,
            secrets=secrets, in_app_deliveries=in_app_deliveries)


def _outcomes_scrub(outcomes: list[_Outcome], in_app_content: dict[int, dict[str, str]],
                    secrets: Mapping[int, list[str]]) -> None:
    """Nothing stored after a send holds a sealed value in clear: content, answers, errors."""
    for outcome in outcomes:
        found = secrets.get(outcome.delivery.notification_id)
        if found:
            outcome.rendered = sealing.scrub(outcome.rendered, found)
            outcome.provider_response = sealing.scrub(outcome.provider_response, found)
            outcome.error = sealing.scrub(outcome.error, found)
    for pk, content in in_app_content.items():
        if secrets.get(pk):
            in_app_content[pk] = sealing.scrub(content, secrets[pk])


def _record(
    *, outcomes: list[_Outcome], notifications: dict[int, Notification], in_app_content: dict[int, dict[str, str]],
    report: BatchReport, secrets: Mapping[int, list[str]] | None = None,
    in_app_deliveries: dict[int, int] | None = None,
) -> None:
    """Store every outcome, the notifications' derived status and the audit trail: one short transaction."""
    _outcomes_scrub(outcomes, in_app_content, secrets or {})
    now = timezone.now()
    updated: list[NotificationDelivery] = []
    audits: list[NotificationAuditLog] = []
    dead_letters: list[DeadLetter] = []
    for outcome in outcomes:
        d = outcome.delivery
        d.updated_at = now
        if outcome.rendered:
            d.rendered = {k: v for k, v in outcome.rendered.items() if k not in NOT_STORED}
        if outcome.provider:
            d.provider = outcome.provider
        if outcome.provider_response is not None:
            d.provider_response = outcome.provider_response
        audit = NotificationAuditLog(
            organization_id=d.organization_id, notification_id=d.notification_id, delivery_id=d.pk,
            actor_label=outcome.provider or d.provider, details={"channel": d.channel, "attempt": d.attempts},
        )
        if outcome.status in DELIVERY_SUCCESS_STATUSES:
            d.status = outcome.status
            d.provider_message_id = outcome.provider_message_id
            d.sent_at = now
            if outcome.status == DeliveryStatus.DELIVERED:
                d.delivered_at = now
            d.cost_amount = outcome.cost_amount
            d.cost_currency = outcome.cost_currency
            d.next_retry_at = None
            d.error = ""
            audit.action = AuditAction.DELIVERY_SENT
            audit.details.update(provider=d.provider, provider_message_id=d.provider_message_id)
            report.sent += 1
        else:
            d.error = outcome.error
            d.error_history = [
                *(d.error_history or []),
                {"at": now.isoformat(), "attempt": d.attempts, "error": outcome.error, "code": outcome.error_code,
                 "transient": outcome.transient, "provider": outcome.provider or d.provider},
            ]
            audit.error_message = outcome.error
            audit.outcome = AuditOutcome.FAILURE
            if outcome.status == DeliveryStatus.EXPIRED:
                d.status = DeliveryStatus.EXPIRED
                audit.action = AuditAction.DELIVERY_SKIPPED
                report.expired += 1
            elif outcome.transient and outcome.error_code == "rate_limited":
                # Every provider was at its rate limit: nothing was tried, so the attempt is
                # given back — waiting for a slot never exhausts the retries.
                d.attempts = max(d.attempts - 1, 0)
                d.status = DeliveryStatus.PENDING
                d.next_retry_at = now + timedelta(seconds=float(outcome.retry_after or 60) * random.uniform(1, 1 + RETRY_JITTER))
                audit.action = AuditAction.DELIVERY_RETRY_SCHEDULED
                audit.details["next_retry_at"] = d.next_retry_at.isoformat()
                report.retried += 1
            elif outcome.transient and d.attempts < d.max_attempts:
                d.status = DeliveryStatus.PENDING
                d.next_retry_at = retry_at(attempts=d.attempts, now=now, retry_after=outcome.retry_after)
                audit.action = AuditAction.DELIVERY_RETRY_SCHEDULED
                audit.details["next_retry_at"] = d.next_retry_at.isoformat()
                report.retried += 1
            else:
                d.status = DeliveryStatus.FAILED
                d.failed_at = now
                d.next_retry_at = None
                audit.action = AuditAction.DELIVERY_FAILED
                report.failed += 1
                if outcome.transient:
                    # Every attempt failed transiently: park it where an operator can replay it.
                    dead_letters.append(DeadLetter(
                        organization_id=d.organization_id, delivery_id=d.pk, channel=d.channel,
                        reason=f"{d.attempts} attempts failed: {outcome.error}", error_history=d.error_history,
                        payload={"notification_id": d.notification_id, "channel": d.channel,
                                 "recipient_address": d.recipient_address},
                    ))
        updated.append(d)
        audits.append(audit)

    in_app_rows: list[Notification] = []
    for pk, content in in_app_content.items():
        n = notifications[pk]
        n.title = content.get("title") or n.title
        n.body = content.get("body") or n.body
        n.body_html = content.get("body_html") or n.body_html
        n.action_url = content.get("action_url") or ""  # already the safe one (delivery_render)
        n.action_label = content.get("action_label") or n.action_label
        for name, value in inbox_fields(n, content.get("options") or {}).items():
            setattr(n, name, value)
        in_app_rows.append(n)

    with transaction.atomic():
        bulk_update_rows(
            NotificationDelivery,
            updated,
            ["status", "provider", "provider_message_id", "provider_response", "rendered", "sent_at", "delivered_at",
             "failed_at", "next_retry_at", "error", "error_history", "cost_amount", "cost_currency",
             "attempts", "updated_at"],
        )
        bulk_update_rows(Notification, in_app_rows, ["title", "body", "body_html", "action_url", "action_label",
                                                     "channel_options", "group_key", "inbox_expires_at", "image_url"])
        statuses = notifications_status_refresh(notification_ids=notifications.keys(), now=now)
        # Sealed values (invitation links) are kept only until every delivery went out.
        unsealed = [n for pk, n in notifications.items()
                    if statuses.get(pk) == NotificationStatus.DELIVERED and sealing.has_sealed(n.data)]
        for n in unsealed:
            n.data = sealing.data_drop_sealed(n.data)
        bulk_update_rows(Notification, unsealed, ["data"])
        for pk, status in statuses.items():
            if status in (NotificationStatus.DELIVERED, NotificationStatus.PARTIALLY_DELIVERED, NotificationStatus.FAILED):
                if notifications[pk].status != status:
                    audits.append(NotificationAuditLog(
                        organization_id=notifications[pk].organization_id, notification_id=pk,
                        action=AuditAction.NOTIFICATION_FAILED if status == NotificationStatus.FAILED
                        else AuditAction.NOTIFICATION_DELIVERED,
                        outcome={NotificationStatus.DELIVERED: AuditOutcome.SUCCESS,
                                 NotificationStatus.PARTIALLY_DELIVERED: AuditOutcome.PARTIAL}.get(status, AuditOutcome.FAILURE),
                        details={"status": status},
                    ))
        NotificationAuditLog.objects.bulk_create(audits)
        if dead_letters:
            DeadLetter.objects.bulk_create(dead_letters, ignore_conflicts=True)
        from notifications.engine.webhooks_outgoing import STATUS_EVENTS, webhooks_enqueue

        # Organizations' outgoing webhooks hear about final statuses, after commit.
        webhooks_enqueue(
            events=[(pk, STATUS_EVENTS[s]) for pk, s in statuses.items()
                    if s in STATUS_EVENTS and notifications[pk].status != s],
            organization_ids={n.organization_id for n in notifications.values()},
        )
        if in_app_rows:
            from notifications.engine.realtime import inapp_publish_after_commit

            inapp_publish_after_commit(notifications=in_app_rows, delivery_ids=in_app_deliveries or {})
