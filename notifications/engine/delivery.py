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

import gc
import logging
import secrets
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from common import sealing
from common.exceptions import ProviderTransientError, ValidationError
from common.links import link_safe_or_empty
from common.publish import tasks_publish_on_commit
from common.queues import Queue
from notifications.engine.delivery_content import (  # noqa: F401 - re-exported for callers
    Templates,
    _recipient_name,
    absolute_url,
    ack_link_url,
    delivery_render,
    notification_context,
    notification_secrets,
)
from notifications.engine.delivery_record import (  # noqa: F401 - re-exported for callers
    RETRY_BACKOFF,
    RETRY_JITTER,
    BatchReport,
    Outcome,
    _record,
    _safe_response,
    retry_at,
)
from notifications.engine.payload import (
    PayloadError,
    delivery_payload_prepare,
    message_options_apply,
    organization_channel_settings,
)
from notifications.enums import Channel, DeliveryStatus
from notifications.models import Notification, NotificationDelivery

logger = logging.getLogger(__name__)

BATCH_SIZE = 100
IN_APP_PROVIDER = "in_app"


def inapp_message_id() -> str:
    """An in-app delivery's message id: random, so that no one can name another's delivery."""
    return f"inapp-{secrets.token_hex(16)}"


# --- enqueue ---------------------------------------------------------------------------


def _chunks(ids: list[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


# Ids per deliver_batch task and channel: as many as the provider takes in one call or keeps
# in flight (SendGrid/Mailgun merge 1,000 recipients per request, FCM 500 messages per batch).
BATCH_SIZES = {
    Channel.EMAIL: 1000,
    Channel.PUSH: 500,
    Channel.SMS: 250,
    Channel.WHATSAPP: 250,
    Channel.VOICE: 100,
    Channel.IN_APP: 500,
}


def batch_size_for(channel: str) -> int:
    """Ids per task for ``channel`` (``DELIVERY_BATCH_SIZES`` in settings overrides the defaults)."""
    from django.conf import settings

    sizes = {**BATCH_SIZES, **(getattr(settings, "DELIVERY_BATCH_SIZES", None) or {})}
    return int(sizes.get(channel, BATCH_SIZE))


def deliveries_enqueue(*, delivery_ids: Iterable[int]) -> None:
    """Queue ``notifications.deliver_batch`` tasks, one organization per task, after commit.

    A task holds up to ``batch_size_for(channel)`` ids of the smallest channel among the
    organization's rows (ids whose row is not found: BATCH_SIZE), sorted by channel.
    Its queue is the organization's fair share (``engine/fairness``): beyond its burst within
    the window an organization's batches go to ``delivery_bulk``, so they do not hold up the
    other organizations' notifications. Safe inside or outside a transaction: ``on_commit``
    runs at once when no transaction is open, and never if the surrounding transaction rolls back.
    """
    from notifications.engine.fairness import delivery_queue_for, organization_volume_add

    ids = sorted({int(pk) for pk in delivery_ids})
    if not ids:
        return
    groups: dict[tuple[int, bool], list[tuple[str, int]]] = defaultdict(list)
    found: set[int] = set()
    for pk, organization_id, channel, criticality in NotificationDelivery.objects.filter(pk__in=ids).values_list(
        "pk", "organization_id", "channel", "notification__criticality"
    ):
        found.add(pk)
        groups[(organization_id, criticality in ("HIGH", "CRITICAL"))].append((channel, pk))
    unknown = [pk for pk in ids if pk not in found]
    volumes: dict[int | None, int] = {}
    for organization_id in {org for org, _ in groups}:
        count = sum(len(v) for (org, _), v in groups.items() if org == organization_id)
        volumes[organization_id] = organization_volume_add(organization_id, count)
    by_queue: dict[str, list[list[int]]] = defaultdict(list)
    for (organization_id, urgent), rows in sorted(groups.items(), key=lambda item: (not item[0][1], min(pk for _, pk in item[1]))):
        queue = delivery_queue_for(organization_id=organization_id, volume=volumes[organization_id],
                                   criticality="CRITICAL" if urgent else "")
        # One organization's rows, channel by channel; a task holds as many as its smallest
        # channel takes (a mixed small batch stays one task).
        size = min(batch_size_for(channel) for channel, _ in rows)
        by_queue[queue].extend(_chunks([pk for _, pk in sorted(rows)], size))
    if unknown:
        by_queue[Queue.DELIVERY.value].extend(_chunks(unknown, BATCH_SIZE))
    # Robust: the rows are committed whatever happens to the publish. If the broker is down
    # the caller still gets its answer, and the sweeper queues the rows again later.
    for queue, chunks in by_queue.items():
        tasks_publish_on_commit("notifications.deliver_batch", calls=([chunk] for chunk in chunks), queue=queue)


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
    if connection.vendor == "postgresql":
        return _claim_returning(ids, now=now)
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


def _claim_returning(ids: list[int], *, now) -> list[int]:
    """The claim as one statement (PostgreSQL): lock the due PENDING rows, skipping those
    another worker holds, move them to SENDING and return their ids — one round trip, no
    explicit transaction around it."""
    table = connection.ops.quote_name(NotificationDelivery._meta.db_table)
    sql = (
        f"UPDATE {table} SET status = %s, claimed_at = %s, attempts = attempts + 1, updated_at = %s "
        f"WHERE id IN (SELECT id FROM {table} WHERE id = ANY(%s) AND status = %s "
        f"AND (next_retry_at IS NULL OR next_retry_at <= %s) ORDER BY id FOR UPDATE SKIP LOCKED) RETURNING id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [DeliveryStatus.SENDING.value, now, now, ids, DeliveryStatus.PENDING.value, now])
        return sorted(row[0] for row in cursor.fetchall())


# --- sending -------------------------------------------------------------------------------


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


def _outcome_from_result(delivery: NotificationDelivery, result: Any, content: dict[str, Any]) -> Outcome:
    """Map what the provider layer answered (a SendOutcome or an exception) to an outcome."""
    raw_attempts = getattr(result, "attempts", None) or []
    attempts = _safe_response(raw_attempts) or None
    selection = getattr(result, "selection", "") or ""
    if isinstance(result, ProviderTransientError):
        error = str(result.detail)
        last = next((a.error for a in reversed(raw_attempts) if getattr(a, "error", "")), "")
        if last and last not in error:
            error = f"{error} Last error: {last}"
        tried = next((a.provider_id for a in reversed(raw_attempts) if a.outcome in ("transient_error", "credentials_refused")), None)
        return Outcome(delivery, DeliveryStatus.PENDING, error=error, error_code=result.code or "transient",
                       transient=True, retry_after=getattr(result, "retry_after", None), provider_id=tried,
                       provider_response=_with_selection({"attempts": attempts} if attempts else {}, selection), rendered=content,
                       attempts=list(raw_attempts))
    if isinstance(result, Exception):
        detail = getattr(result, "detail", None) or str(result) or result.__class__.__name__
        code = getattr(result, "code", None) or "permanent"
        refused_by = next((a.provider_id for a in reversed(raw_attempts) if a.outcome == "permanent_error"), None)
        return Outcome(delivery, DeliveryStatus.FAILED, error=str(detail), error_code=code, provider_id=refused_by,
                       provider_response=_with_selection({"attempts": attempts} if attempts else {}, selection), rendered=content,
                       attempts=list(raw_attempts))
    sent = result.result
    response: dict[str, Any] = {"result": _safe_response(sent.raw)} if sent.raw else {}
    if attempts:
        response["attempts"] = attempts
    return Outcome(
        delivery,
        DeliveryStatus.DELIVERED if sent.status == "delivered" else DeliveryStatus.SENT,
        provider=result.provider_code,
        provider_id=result.provider_id,
        provider_message_id=sent.provider_message_id or "",
        provider_response=_with_selection(response, selection),
        cost_amount=sent.cost_amount,
        cost_currency=sent.cost_currency or "",
        rendered=content,
        attempts=list(raw_attempts),
    )


def _with_selection(response: dict[str, Any], selection: str) -> dict[str, Any] | None:
    """The provider choice, in words, beside the provider's answer (the delivery's trace)."""
    if selection:
        response["selection"] = selection
    return response or None


def _journaled_outcomes(to_send: list[tuple[NotificationDelivery, Notification, dict[str, Any]]]) -> list[Outcome]:
    """Rows a killed worker already sent (per the send journal) are recorded, not sent again.

    Removes them from ``to_send`` in place.
    """
    from providers.journal import journal_lookup

    journal = journal_lookup(keys=[str(d.pk) for d, _, _ in to_send])
    if not journal:
        return []
    outcomes: list[Outcome] = []
    remaining = []
    for delivery, notification, content in to_send:
        entry = journal.get(str(delivery.pk))
        if entry is None:
            remaining.append((delivery, notification, content))
            continue
        outcomes.append(Outcome(
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


def _send_groups(pending: list[tuple[NotificationDelivery, Notification, dict[str, Any]]]) -> list[Outcome]:
    """Send through the provider registry: one batch call per (organization, channel)."""
    from notifications.engine.provider_choice import selection_policies
    from providers.services import provider_send_batch_with_failover

    groups: dict[tuple[int, str], list[tuple[NotificationDelivery, Notification, dict[str, Any]]]] = defaultdict(list)
    outcomes: list[Outcome] = []
    for delivery, notification, content in pending:
        if delivery.channel != Channel.PUSH and not delivery.recipient_address:
            outcomes.append(Outcome(delivery, DeliveryStatus.FAILED, error="No address for this channel.",
                                     error_code="no_address", rendered=content))
            continue
        groups[(notification.organization_id, delivery.channel)].append((delivery, notification, content))
    policies = selection_policies(groups.keys())
    for (organization_id, channel), items in groups.items():
        messages = [_outbound_message(d, n, c) for d, n, c in items]
        try:
            results = provider_send_batch_with_failover(organization_id=organization_id, channel=channel, messages=messages,
                                                        policy=policies.get((organization_id, channel)))
        except Exception as exc:  # noqa: BLE001 - a bug in one provider must not strand the batch in SENDING
            logger.exception("deliveries %s: unexpected error while sending", [d.pk for d, _, _ in items])
            error = ProviderTransientError(f"Unexpected error: {exc.__class__.__name__}", code="unexpected")
            results = [error] * len(items)
        for (delivery, _notification, content), result in zip(items, results, strict=True):
            outcomes.append(_outcome_from_result(delivery, result, content))
    return outcomes


# --- the batch -------------------------------------------------------------------------------


def deliver_batch(*, delivery_ids: Iterable[int]) -> BatchReport:
    """Claim, render, send and record a batch of deliveries (see the module docstring)."""
    report = BatchReport()
    claimed = delivery_claim_batch(delivery_ids=delivery_ids)
    report.claimed = len(claimed)
    if not claimed:
        return report
    try:
        with _collector_paused():
            _deliver_claimed(claimed, report)
    except Exception as exc:
        # Nothing was recorded: give the claim back so a retry (not the sweeper's timeout) picks it up.
        _claims_release(claimed, error=f"{exc.__class__.__name__}: {exc}"[:500])
        raise
    return report


_frozen = False


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while a batch runs.

    A batch allocates thousands of short-lived objects (rows, messages, audit entries), which
    triggered a collection every few milliseconds, each walking every object the process holds:
    about a fifth of a 1,000-email batch. Reference counting still frees them as usual; cycles
    wait for the next collection after the batch. The objects alive after the process's first
    batch (modules, settings, caches) are moved out of the collector's sight once (gc.freeze).
    """
    global _frozen
    if not _frozen:
        _frozen = True
        gc.collect()
        gc.freeze()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


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
    templates = Templates.load(notifications.values())
    channel_settings = organization_channel_settings(n.organization_id for n in notifications.values())
    # The signed acknowledgement link costs a signature per notification: made only when read.
    with_ack_url = templates.reads_ack_url or "ack_url" in repr(channel_settings) or any(
        "ack_url" in repr(n.channel_options) for n in notifications.values() if n.channel_options)
    contexts: dict[int, dict[str, Any]] = {}
    context_cache: dict[str, dict[str, Any]] = {}
    secrets: dict[int, list[str]] = {}
    for pk, n in notifications.items():
        data, secrets[pk] = notification_secrets(n)
        contexts[pk] = notification_context(n, variable_mapping=templates.mapping_for(n), data=data,
                                            with_ack_url=with_ack_url, cache=context_cache)
    render_cache: dict[tuple, dict[str, Any]] = {}

    now = timezone.now()
    outcomes: list[Outcome] = []
    in_app_content: dict[int, dict[str, str]] = {}
    in_app_deliveries: dict[int, int] = {}
    to_send: list[tuple[NotificationDelivery, Notification, dict[str, Any]]] = []
    for delivery in deliveries:
        notification = delivery.notification
        if notification.expires_at and notification.expires_at <= now:
            outcomes.append(Outcome(delivery, DeliveryStatus.EXPIRED, error="Expired before delivery.", error_code="expired"))
            continue
        locale = delivery.locale or notification.recipient_locale or (
            notification.recipient.locale if notification.recipient else ""
        )
        try:
            content = delivery_render(
                notification=notification, channel=delivery.channel, locale=locale,
                templates=templates, context=contexts[notification.pk], cache=render_cache,
            )
        except ValidationError as exc:
            # A template that no longer compiles: no retry will fix it.
            outcomes.append(Outcome(delivery, DeliveryStatus.FAILED, error=f"Template error: {exc.detail}",
                                     error_code="template"))
            continue
        try:
            delivery_payload_prepare(content, channel=delivery.channel, organization_id=notification.organization_id,
                                     event_options=(notification.channel_options or {}).get(delivery.channel),
                                     all_settings=channel_settings, context=contexts[notification.pk],
                                     private_links=sealing.has_sealed(notification.data))
        except PayloadError as exc:
            outcomes.append(Outcome(delivery, DeliveryStatus.FAILED, error=str(exc.detail), error_code=exc.code or "payload",
                                    rendered=content))
            continue
        except ProviderTransientError as exc:
            outcomes.append(Outcome(delivery, DeliveryStatus.PENDING, error=str(exc.detail), error_code=exc.code or "transient",
                                    transient=True, rendered=content))
            continue
        if delivery.channel == Channel.IN_APP:
            if notification.recipient_id is None:
                outcomes.append(Outcome(delivery, DeliveryStatus.FAILED, error="In-app needs a user recipient.",
                                         error_code="no_address", rendered=content))
                continue
            # The notification row is the inbox item: storing its content and handing it to the
            # in-app bus (after commit) is the send; the client's ack makes it DELIVERED.
            in_app_content[notification.pk] = content
            in_app_deliveries[notification.pk] = delivery.pk
            outcomes.append(Outcome(delivery, DeliveryStatus.SENT, provider=IN_APP_PROVIDER,
                                     provider_message_id=inapp_message_id(), rendered=content))
            continue
        to_send.append((delivery, notification, content))

    outcomes.extend(_journaled_outcomes(to_send))
    outcomes.extend(_send_groups(to_send))
    _record(outcomes=outcomes, notifications=notifications, in_app_content=in_app_content, report=report,
            secrets=secrets, in_app_deliveries=in_app_deliveries)
