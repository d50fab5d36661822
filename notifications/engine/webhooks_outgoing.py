"""Outgoing webhooks and the signature scheme both directions share.

Signatures follow one scheme, checked by `webhook_signature_verify`:
``X-Troubadour-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, f"{t}.{raw body}")>``;
a timestamp more than five minutes away from now is refused, so a captured call cannot be
replayed later (incoming calls: `notifications.engine.webhooks`).

Outgoing webhooks hear about notifications: intake and the delivery engine call
`webhooks_enqueue` inside their transaction; after commit one `notifications.webhooks_dispatch`
task per batch (ids only) posts a signed JSON event to every active outgoing webhook of the
organization whose filters match. A failed post is retried by `notifications.webhook_send`
with a growing countdown (short waits, at most ``max_retries`` times); the last failure is
audited. ``X-Troubadour-Delivery`` is derived from (webhook, notification, event type), so a
redelivered task or a retry carries the same id and the receiver can drop duplicates.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import logging
import secrets
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests
from django.conf import settings
from django.db.models import F
from django.utils import timezone

from common import outbound
from common.exceptions import ValidationError
from common.publish import task_publish, tasks_publish_on_commit
from notifications.enums import (
    AuditAction,
    AuditActorType,
    AuditOutcome,
    NotificationStatus,
    WebhookAuthType,
    WebhookDirection,
)
from notifications.models import Notification, NotificationAuditLog, NotificationDelivery, Webhook

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Troubadour-Signature"
EVENT_HEADER = "X-Troubadour-Event"
DELIVERY_HEADER = "X-Troubadour-Delivery"
SIGNATURE_TOLERANCE_SECONDS = 300
SEND_TIMEOUT_SECONDS = 5
USER_AGENT = "Troubadour-Webhooks/1.0"
# Outgoing event types (the `type` of the JSON body and the X-Troubadour-Event header).
EVENT_CREATED = "notification.created"
STATUS_EVENTS: dict[str, str] = {
    NotificationStatus.DELIVERED: "notification.delivered",
    NotificationStatus.PARTIALLY_DELIVERED: "notification.partially_delivered",
    NotificationStatus.FAILED: "notification.failed",
}
TEST_EVENT = "webhook.test"
# A custom in-app action chosen by the recipient: queued as "notification.action:<action id>".
ACTION_EVENT = "notification.action"
DISPATCH_CHUNK = 500
MAX_RETRY_DELAY_SECONDS = 300
_DELIVERY_NAMESPACE = uuid.UUID("5b0f1c52-8f5e-4a55-9d0e-6f1f8e2f7a10")


# --- signatures -------------------------------------------------------------------------------------


def _raw(body: bytes | str) -> bytes:
    return body.encode() if isinstance(body, str) else bytes(body)


def webhook_signature(secret: str, body: bytes | str, *, timestamp: int | None = None) -> str:
    """The ``X-Troubadour-Signature`` value for this body, signed now (or at ``timestamp``)."""
    t = str(int(time.time()) if timestamp is None else int(timestamp))
    digest = hmac.new(secret.encode(), t.encode() + b"." + _raw(body), hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def webhook_signature_verify(
    secret: str, header: str | None, body: bytes | str, *, tolerance: int = SIGNATURE_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """True when ``header`` signs exactly ``body`` with ``secret`` within ``tolerance`` seconds of now.

    Several ``v1=`` values may be given (a sender rotating its secret signs with both).
    Comparison is constant-time; a missing, malformed, stale or forged header is False.
    """
    return bool(webhook_signature_match(secret, header, body, tolerance=tolerance, now=now))


def webhook_signature_match(secret: str, header: str | None, body: bytes | str, *, tolerance: int = SIGNATURE_TOLERANCE_SECONDS,
                     now: float | None = None) -> str:
    """The signature digest that ``header`` carries validly for ``body`` ("" when none does)."""
    if not secret or not header:
        return ""
    timestamp = ""
    candidates: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            timestamp = value.strip()
        elif key == "v1":
            candidates.append(value.strip().lower())
    if not timestamp.isdigit() or not candidates:
        return ""
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > tolerance:
        return ""
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + _raw(body), hashlib.sha256).hexdigest()
    return expected if any(hmac.compare_digest(expected, candidate) for candidate in candidates) else ""


def webhook_secret_generate() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def webhook_secret_of(webhook: Webhook) -> str:
    from providers.secrets import secrets_decrypt

    if not webhook.secret:
        return ""
    return str(secrets_decrypt(webhook.secret).get("secret") or "")


# --- outgoing -----------------------------------------------------------------------------------------


def intake_events(rows: Iterable[tuple[int, str]]) -> Iterator[tuple[int, str]]:
    """Events of notifications written at intake, from (id, status): ``notification.created``,
    then the final status of those an in-app send completed right there (what a worker's send
    would have reported). Lazy: nothing is built for an organization without outgoing webhooks."""
    rows = list(rows)
    final = (NotificationStatus.DELIVERED, NotificationStatus.PARTIALLY_DELIVERED)
    yield from ((pk, EVENT_CREATED) for pk, _ in rows)
    yield from ((pk, STATUS_EVENTS[NotificationStatus(s)]) for pk, s in rows if s in final)


def webhooks_enqueue(*, events: Iterable[tuple[int, str]], organization_ids: Iterable[int]) -> None:
    """Queue the outgoing webhooks of these (notification id, event type) pairs, after commit.

    Called inside the writer's transaction. One cheap query decides whether any of these
    organizations has an active outgoing webhook at all, so the common case publishes nothing.
    """
    orgs = {int(pk) for pk in organization_ids if pk is not None}
    pending = iter(events)
    first = next(pending, None)
    if first is None or not orgs:
        return
    from .config_memo import config_read

    key = frozenset(orgs)
    if not config_read(("outgoing_webhooks", key), lambda: Webhook.objects.filter(
        organization_id__in=key, direction=WebhookDirection.OUTGOING, is_active=True
    ).exists()):
        return  # decided before an item is built per notification: a fan-out to thousands builds nothing
    items = [[int(pk), str(kind)] for pk, kind in itertools.chain([first], pending)]

    # Robust (in tasks_publish_on_commit): the notifications are committed whatever happens to this publish.
    tasks_publish_on_commit("notifications.webhooks_dispatch",
                            calls=([items[start : start + DISPATCH_CHUNK]] for start in range(0, len(items), DISPATCH_CHUNK)))


@dataclass
class SendResult:
    ok: bool
    status_code: int | None = None
    error: str = ""
    transport_error: bool = False
    permanent: bool = False  # retrying cannot help (the target is refused)


def _post(webhook: Webhook, *, secret: str, body: bytes, event: str, delivery_id: str,
          session: requests.Session) -> SendResult:
    headers = {
        "Content-Type": "application/json", "User-Agent": USER_AGENT, EVENT_HEADER: event, DELIVERY_HEADER: delivery_id,
    }
    if secret:
        headers[SIGNATURE_HEADER] = webhook_signature(secret, body)
        if webhook.auth_type == WebhookAuthType.BEARER:
            headers["Authorization"] = f"Bearer {secret}"
        elif webhook.auth_type == WebhookAuthType.API_KEY:
            headers["X-Api-Key"] = secret
        elif webhook.auth_type == WebhookAuthType.BASIC:
            headers["Authorization"] = "Basic " + base64.b64encode(secret.encode()).decode()
    try:
        # The session connects only to the address checked for this batch and follows no redirect.
        response = session.post(webhook.url, data=body, headers=headers, timeout=SEND_TIMEOUT_SECONDS)
    except (requests.RequestException, ValueError, OSError) as exc:
        # Timeout, refused, reset: one answer for all, or /test/ would map the network's ports.
        logger.info("webhook %s: %s", webhook.pk, exc.__class__.__name__)
        return SendResult(False, error=outbound.PUBLIC_ERROR, transport_error=True)
    if 200 <= response.status_code < 300:
        return SendResult(True, status_code=response.status_code)
    return SendResult(False, status_code=response.status_code, error=f"HTTP {response.status_code}")


def _body_bytes(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), default=str).encode()


def _delivery_id(webhook_id: int, notification_id: int, event: str) -> str:
    return str(uuid.uuid5(_DELIVERY_NAMESPACE, f"{webhook_id}:{notification_id}:{event}"))


def _retry_delay(attempt: int) -> int:
    base = int(getattr(settings, "WEBHOOK_RETRY_BASE_SECONDS", 10))
    return min(base * 3 ** max(attempt - 1, 0), MAX_RETRY_DELAY_SECONDS)


def _matches(webhook: Webhook, *, event_type: str, category: str) -> bool:
    return (not webhook.event_types or event_type in webhook.event_types) and (
        not webhook.event_categories or category in webhook.event_categories
    )


@dataclass
class DispatchReport:
    sent: int = 0
    failed: int = 0
    retrying: int = 0
    skipped: int = 0
    results: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Message:
    notification_id: int | None
    event: str
    delivery_id: str
    body: dict[str, Any]

    def as_task_args(self) -> dict[str, Any]:
        return {"notification_id": self.notification_id, "event": self.event, "delivery_id": self.delivery_id,
                "body": self.body}


def _record_outcomes(webhook: Webhook, outcomes: list[tuple[_Message, SendResult]], *, attempt: int,
                     report: DispatchReport, now: datetime, retry: bool = True) -> None:
    """Counters, audit rows and retries of one webhook's sends: a fixed number of queries."""
    audits: list[NotificationAuditLog] = []
    retries: list[_Message] = []
    last_error = ""
    failures = 0
    for message, result in outcomes:
        base = {"organization_id": webhook.organization_id, "webhook_id": webhook.pk,
                "notification_id": message.notification_id, "actor_type": AuditActorType.SYSTEM,
                "actor_label": webhook.name[:200]}
        details = {"type": message.event, "delivery": message.delivery_id, "status_code": result.status_code,
                   "attempt": attempt + 1}
        report.results.append({"webhook_id": webhook.pk, "delivery": message.delivery_id, "ok": result.ok,
                               "status_code": result.status_code})
        if result.ok:
            report.sent += 1
            audits.append(NotificationAuditLog(**base, action=AuditAction.WEBHOOK_SENT, details=details))
            continue
        failures += 1
        last_error = result.error
        retryable = retry and webhook.retry_enabled and attempt < webhook.max_retries and not result.permanent
        if retryable:
            report.retrying += 1
            retries.append(message)
        else:
            report.failed += 1
            audits.append(NotificationAuditLog(**base, action=AuditAction.WEBHOOK_FAILED, outcome=AuditOutcome.FAILURE,
                                               details=details, error_message=result.error[:1000]))
    update: dict[str, Any] = {"last_triggered_at": now, "updated_at": now}
    if failures:
        update.update(last_failure_at=now, failure_count=F("failure_count") + failures, last_error=last_error[:1000])
    if failures < len(outcomes):
        update["last_success_at"] = now
        if not failures:
            # failure_count counts consecutive failed attempts: a clean round resets it.
            update.update(failure_count=0, last_error="")
    Webhook.objects.filter(pk=webhook.pk).update(**update)
    if audits:
        NotificationAuditLog.objects.bulk_create(audits)
    for message in retries:
        task_publish("notifications.webhook_send", args=[webhook.pk, message.as_task_args(), attempt + 1],
                     countdown=_retry_delay(attempt + 1))


def _send_all(webhook: Webhook, messages: list[_Message]) -> list[tuple[_Message, SendResult]]:
    try:
        # One lookup per batch, and every post of the batch goes to the address it checked.
        target = outbound.url_resolve_public(webhook.url)
    except outbound.OutboundRefused as exc:
        # Unresolvable, slow to resolve or non-public: the same answer (and the same retries) as
        # an unreachable endpoint, so the outcome says nothing about the platform's network.
        logger.info("webhook %s refused: %s", webhook.pk, exc.reason)
        return [(message, SendResult(False, error=outbound.PUBLIC_ERROR, transport_error=True)) for message in messages]
    secret = webhook_secret_of(webhook)
    outcomes: list[tuple[_Message, SendResult]] = []
    unreachable: SendResult | None = None
    with outbound.pinned_session(target) as session:
        for message in messages:
            if unreachable is not None:
                # One timeout per batch is enough: the rest wait for their retry instead of
                # holding a worker for SEND_TIMEOUT_SECONDS each.
                outcomes.append((message, SendResult(False, error=unreachable.error, transport_error=True)))
                continue
            result = _post(webhook, secret=secret, body=_body_bytes(message.body), event=message.event,
                           delivery_id=message.delivery_id, session=session)
            if result.transport_error:
                unreachable = result
            if not result.ok:
                logger.info("webhook %s: %s for %s (%s)", webhook.pk, result.error, message.event, message.delivery_id)
            outcomes.append((message, result))
    return outcomes


def _send_isolated(hook: Webhook, batch: list[_Message], *, attempt: int, report: DispatchReport) -> None:
    """Send one webhook's batch; whatever goes wrong stays with that webhook — the others of the
    dispatch (other organizations' included) are still sent."""
    try:
        outcomes = _send_all(hook, batch)
    except Exception:  # noqa: BLE001 — e.g. an undecryptable secret: this webhook only
        logger.exception("webhook %s: sending failed", hook.pk)
        outcomes = [(message, SendResult(False, error=outbound.PUBLIC_ERROR, transport_error=True)) for message in batch]
    _record_outcomes(hook, outcomes, attempt=attempt, report=report, now=timezone.now())


def _action_body(row: Mapping[str, Any], kind: str, body: dict[str, Any]) -> dict[str, Any]:
    """A custom in-app action's callback: type `notification.action`, with the action's id and data."""
    if not kind.startswith(ACTION_EVENT + ":"):
        return body
    action_id = kind.split(":", 1)[1]
    actions = ((row.get("channel_options") or {}).get("IN_APP") or {}).get("actions") or []
    action: dict[str, Any] = next((a for a in actions if str(a.get("id")) == action_id), {})
    body["type"] = ACTION_EVENT
    body["data"]["action"] = {"id": action_id, "label": action.get("label", ""), "data": action.get("data") or {}}
    return body


def webhooks_dispatch(*, events: Sequence[Sequence[Any]]) -> DispatchReport:
    """Post these (notification id, event type) pairs to the matching outgoing webhooks.

    Reads with three queries whatever the batch size (notifications, webhooks, deliveries);
    notifications deleted meanwhile are skipped.
    """
    report = DispatchReport()
    wanted = [(int(pk), str(kind)) for pk, kind in events]
    fields = ["id", "organization_id", "event_type", "category", "criticality", "status", "recipient_id"]
    if any(kind.startswith(ACTION_EVENT + ":") for _, kind in wanted):
        fields.append("channel_options")  # only an action's callback reads it (it may hold attachments)
    rows = {row["id"]: row for row in Notification.objects.filter(pk__in={pk for pk, _ in wanted}).values(*fields)}
    if not rows:
        return report
    hooks_by_org: dict[int, list[Webhook]] = defaultdict(list)
    for hook in Webhook.objects.filter(
        organization_id__in={row["organization_id"] for row in rows.values()},
        direction=WebhookDirection.OUTGOING, is_active=True,
    ).order_by("pk"):
        hooks_by_org[hook.organization_id].append(hook)
    if not hooks_by_org:
        return report
    channels: dict[int, dict[str, str]] = defaultdict(dict)
    for notification_id, channel, status in NotificationDelivery.objects.filter(notification_id__in=rows).order_by(
        "pk"
    ).values_list("notification_id", "channel", "status"):
        channels[notification_id][channel] = status  # the latest row of a channel (fallback, escalation) wins

    now = timezone.now()
    messages: dict[int, list[_Message]] = defaultdict(list)
    hooks: dict[int, Webhook] = {}
    for pk, kind in wanted:
        row = rows.get(pk)
        if row is None:
            report.skipped += 1
            continue
        for hook in hooks_by_org.get(row["organization_id"], []):
            if not _matches(hook, event_type=row["event_type"], category=row["category"]):
                continue
            hooks[hook.pk] = hook
            messages[hook.pk].append(_Message(
                notification_id=pk, event=ACTION_EVENT if kind.startswith(ACTION_EVENT + ":") else kind,
                delivery_id=_delivery_id(hook.pk, pk, kind),
                body=_action_body(row, kind, {
                    "id": str(uuid.uuid5(_DELIVERY_NAMESPACE, f"{pk}:{kind}")),
                    "type": kind,
                    "created_at": now.isoformat(),
                    "data": {
                        "notification_id": pk, "event_type": row["event_type"], "category": row["category"],
                        "criticality": row["criticality"], "status": row["status"],
                        "recipient_id": str(row["recipient_id"]) if row["recipient_id"] else None,
                        "channels": channels.get(pk, {}),
                    },
                }),
            ))
    for hook_id, batch in messages.items():
        _send_isolated(hooks[hook_id], batch, attempt=0, report=report)
    return report


def webhook_send_retry(*, webhook_id: int, message: Mapping[str, Any], attempt: int) -> DispatchReport:
    """One more attempt at one message; a webhook deleted or deactivated meanwhile drops it."""
    report = DispatchReport()
    hook = Webhook.objects.filter(pk=webhook_id, direction=WebhookDirection.OUTGOING, is_active=True).first()
    if hook is None:
        report.skipped += 1
        return report
    item = _Message(notification_id=message.get("notification_id"), event=str(message["event"]),
                    delivery_id=str(message["delivery_id"]), body=dict(message["body"]))
    _send_isolated(hook, [item], attempt=int(attempt), report=report)
    return report


def webhook_send_test(*, webhook: Webhook) -> dict[str, Any]:
    """Post a signed ``webhook.test`` event now (no retry) and say how the endpoint answered."""
    if webhook.direction != WebhookDirection.OUTGOING:
        raise ValidationError({"direction": ["Only outgoing webhooks can be tested; post to an incoming one instead."]})
    delivery_id = str(uuid.uuid4())
    message = _Message(notification_id=None, event=TEST_EVENT, delivery_id=delivery_id, body={
        "id": delivery_id, "type": TEST_EVENT, "created_at": timezone.now().isoformat(),
        "data": {"webhook_id": webhook.pk, "organization_id": webhook.organization_id,
                 "message": "Test event: your endpoint and signature check work."},
    })
    try:
        [(_, result)] = _send_all(webhook, [message])
    except Exception:  # noqa: BLE001 — the caller gets the same generic answer as for a dead endpoint
        logger.exception("webhook %s: test send failed", webhook.pk)
        result = SendResult(False, error=outbound.PUBLIC_ERROR, transport_error=True)
    _record_outcomes(webhook, [(message, result)], attempt=0, report=DispatchReport(), now=timezone.now(), retry=False)
    return {"delivered": result.ok, "status_code": result.status_code, "error": result.error, "delivery_id": delivery_id}
