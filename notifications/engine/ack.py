"""Acknowledgement: "I've got it" from any channel stops the escalation chain.

Sources: the inbox API, the signed link in an email or push (``/n/<signed>/ack/``), a voice
call's digit (Twilio gather webhook) and an SMS reply ("ACK" or "1"). Every one ends in
``notification_acknowledge``; who may acknowledge is the caller's check (the inbox checks
the recipient, the link is its own credential, webhooks are signature-verified).
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.html import escape

from accounts.selectors import user_is_member
from common.exceptions import NotFound, PermissionDenied
from notifications.enums import AuditAction, AuditActorType, Channel, DeliveryStatus
from notifications.models import Notification, NotificationAuditLog, NotificationDelivery

logger = logging.getLogger(__name__)

ACK_LINK_SALT = "notifications.ack-link"
ACK_LINK_MAX_AGE = timedelta(days=7)
SMS_ACK_KEYWORDS = frozenset({"ACK", "1", "ACKNOWLEDGE", "OK"})
SMS_ACK_WINDOW = timedelta(hours=24)


class AckSource:
    INBOX = "inbox"
    LINK = "link"
    VOICE = "voice"
    SMS = "sms"
    ADMIN = "admin"


# Where the notification's own recipient is the one acknowledging: they must still be a member
# of its organization (acknowledging stops the organization's escalation).
RECIPIENT_SOURCES = frozenset({AckSource.INBOX, AckSource.LINK, AckSource.VOICE, AckSource.SMS})


def _root_id(notification: Notification) -> int:
    root = (notification.metadata or {}).get("escalation_root_id")
    return int(root) if root else notification.pk


def notification_acknowledge(
    *, notification_id: int, source: str, user_id: int | None = None, detail: str = ""
) -> Notification:
    """Acknowledge a notification and every escalation copy of it; stops the chain. Idempotent.

    Returns the notification that was asked for (with ``acknowledged_at`` set).
    """
    now = timezone.now()
    with transaction.atomic():
        asked = Notification.objects.filter(pk=notification_id).only("pk", "metadata", "organization_id", "recipient_id").first()
        if asked is None:
            raise NotFound("Notification not found.")
        if (source in RECIPIENT_SOURCES and asked.recipient_id and asked.organization_id
                and not user_is_member(user_id=asked.recipient_id, organization_id=asked.organization_id)):
            raise PermissionDenied("The recipient is no longer a member of this notification's organization.")
        root_id = _root_id(asked)
        family = list(
            Notification.objects.select_for_update(of=("self",))
            .filter(Q(pk=root_id) | Q(metadata__escalation_root_id=root_id))
            .order_by("pk")
        )
        changed = [n for n in family if n.acknowledged_at is None or n.next_escalation_at is not None]
        for n in changed:
            n.acknowledged_at = n.acknowledged_at or now
            n.next_escalation_at = None
        if changed:
            Notification.objects.bulk_update(changed, ["acknowledged_at", "next_escalation_at"])
            root = next((n for n in family if n.pk == root_id), family[0])
            NotificationAuditLog.objects.create(
                organization_id=root.organization_id, notification_id=root.pk, action=AuditAction.ACKNOWLEDGED,
                actor_type=AuditActorType.USER if user_id else AuditActorType.SYSTEM,
                actor_id=str(user_id or ""), user_id=user_id,
                details={"source": source, "acknowledged_via_notification_id": notification_id,
                         "chain_id": root.escalation_chain_id, "level": root.escalation_level,
                         **({"detail": detail} if detail else {})},
            )
    by_pk = {n.pk: n for n in family}
    return by_pk.get(notification_id) or Notification.objects.get(pk=notification_id)


# --- signed links -------------------------------------------------------------------------------------


def ack_link_token(*, notification_id: int) -> str:
    return signing.dumps({"n": int(notification_id)}, salt=ACK_LINK_SALT, compress=True)


def ack_link_url(*, notification_id: int) -> str:
    """Absolute URL of the one-click acknowledgement link for emails and push actions."""
    from django.urls import reverse

    return settings.SITE_URL + reverse("notification-ack-link", kwargs={"signed": ack_link_token(notification_id=notification_id)})


def ack_link_notification_id(*, signed: str) -> int:
    """The notification id a link stands for; NotFound when forged, Gone-like NotFound when stale."""
    try:
        data = signing.loads(signed, salt=ACK_LINK_SALT, max_age=ACK_LINK_MAX_AGE)
    except signing.SignatureExpired:
        from common.exceptions import Gone

        raise Gone("This acknowledgement link has expired.") from None
    except signing.BadSignature:
        raise NotFound("Unknown acknowledgement link.") from None
    return int(data["n"])


def ack_prompt_attach(message: Any, *, notification: Notification) -> None:
    """Make an outbound message of an escalating notification acknowledgeable from where it lands.

    Templates may place ``{{ ack_url }}`` themselves; when they do not (a custom template, a
    notification without one, an escalation copy), an email still ends with the one-click
    link, a push carries it in its data (``ack_url``) for the client's action button, and a
    voice call asks for the acknowledgement digit. Acknowledged notifications get nothing.
    """
    if notification.escalation_chain_id is None or notification.acknowledged_at is not None:
        return
    url = ack_link_url(notification_id=notification.pk)
    prefix = settings.SITE_URL + "/n/"
    if message.channel == Channel.EMAIL:
        if prefix not in (message.text or ""):
            message.text = f"{message.text}\n\nAcknowledge: {url}".lstrip()
        if message.html and prefix not in message.html:
            message.html += f'<p><a href="{escape(url)}">Acknowledge</a></p>'
    elif message.channel == Channel.PUSH:
        message.data = {**(message.data or {}), "ack_url": url}
    elif message.channel == Channel.VOICE:
        message.require_acknowledgment = True


# --- SMS replies ---------------------------------------------------------------------------------------


def sms_reply_is_ack(body: str) -> bool:
    return body.strip().upper().rstrip(".!") in SMS_ACK_KEYWORDS


def sms_deliveries_to(*, from_number: str):
    """SMS deliveries to this phone in the acknowledgement window."""
    return NotificationDelivery.objects.filter(
        channel=Channel.SMS, recipient_address=from_number, created_at__gte=timezone.now() - SMS_ACK_WINDOW,
    ) if from_number else NotificationDelivery.objects.none()


def notification_acknowledge_by_sms(
    *, from_number: str, body: str, provider_ids: Iterable[int] = (), unbound_codes: Iterable[str] = ()
) -> Notification | None:
    """An inbound SMS: "ACK"/"1" acknowledges the newest unacknowledged escalating
    notification sent by SMS to that number in the last 24 hours **by the provider accounts
    that authenticated the reply** (`provider_ids` records, or the environment's
    `unbound_codes`). None when nothing matched."""
    from providers.selectors import deliveries_sent_by_q

    if not sms_reply_is_ack(body):
        return None
    notification_id = (
        sms_deliveries_to(from_number=from_number)
        .filter(deliveries_sent_by_q(provider_ids=provider_ids, unbound_codes=unbound_codes), notification__acknowledged_at__isnull=True)
        .exclude(status__in=[DeliveryStatus.SKIPPED, DeliveryStatus.CANCELLED])
        .order_by(F("notification__next_escalation_at").desc(nulls_last=True), "-created_at")
        .values_list("notification_id", flat=True)
        .first()
    )
    if notification_id is None:
        logger.info("SMS acknowledgement from a number with nothing to acknowledge")
        return None
    try:
        return notification_acknowledge(notification_id=notification_id, source=AckSource.SMS)
    except PermissionDenied:
        logger.info("SMS acknowledgement from a recipient no longer in the organization: ignored")
        return None
