"""WhatsApp opt-out keywords: a customer's "STOP" (or any other carrier opt-out keyword the SMS
inbound webhook honours, `providers.phone.STOP_KEYWORDS`) to one of our WhatsApp senders
suppresses the number on WhatsApp for the organization that owns that sender (None: a platform
sender, so every organization); "START" (or "UNSTOP", …) lifts what such a reply did, and only
that. Routing then skips WhatsApp to the number with reason `suppressed`, before any provider call.

Neither Twilio's nor Meta's signature carries a time: a message id counts once, so a replayed
STOP cannot silence again a number that has since said START.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.core.cache import cache
from django.db import transaction

from common.channels import Channel
from common.exceptions import ProviderPermanentError

from ..phone import normalize_e164, optout_keyword

if TYPE_CHECKING:
    from ..models import NotificationProvider

DETAIL = "WhatsApp STOP reply"
SEEN_SECONDS = 30 * 86400


def whatsapp_keyword_apply(*, provider_code: str, message_id: str, customer: str, body: str,
                           organization_ids: Iterable[int | None]) -> str:
    """Apply the keyword of one verified inbound message; "stop", "start" or "" (not a keyword,
    an unusable number, a message id already applied)."""
    from ..models import SuppressedAddress, SuppressionReason
    from ..services import suppression_add

    keyword = optout_keyword(body)
    if not keyword or not message_id:
        return ""
    raw = (customer or "").strip().removeprefix("whatsapp:")
    try:
        number = normalize_e164(raw if raw.startswith("+") else f"+{raw}")  # Meta's wa_id has no "+"
    except ProviderPermanentError:
        return ""
    if not cache.add(f"prov:wa-keyword:{provider_code}:{message_id}", 1, SEEN_SECONDS):
        return ""  # a replay
    owners = list(dict.fromkeys(organization_ids)) or [None]
    with transaction.atomic():
        if keyword == "stop":
            for owner in owners:
                suppression_add(address=number, channel=Channel.WHATSAPP, reason=SuppressionReason.UNSUBSCRIBE,
                                organization_id=owner, provider_code=provider_code, detail=DETAIL)
        else:
            for owner in owners:
                rows = SuppressedAddress.objects.filter(address__iexact=number, channel=Channel.WHATSAPP,
                                                        reason=SuppressionReason.UNSUBSCRIBE, detail=DETAIL)
                (rows.filter(organization__isnull=True) if owner is None else rows.filter(organization_id=owner)).delete()
    return keyword


def _number_id(record: NotificationProvider) -> str:
    return str((record.config or {}).get("phone_number_id") or "")


def meta_receivers(number_ids: set[str]) -> list[NotificationProvider]:
    """The active Meta records whose business number is one of these."""
    from ..models import NotificationProvider

    if not number_ids:
        return []
    return [r for r in NotificationProvider.objects.filter(code="meta_whatsapp", is_active=True).order_by("pk") if _number_id(r) in number_ids]


def meta_keywords_apply(payload: dict[str, Any], *, records: Iterable[NotificationProvider | None]) -> int:
    """The keywords of a verified Meta webhook; `records` are the accounts whose app secret
    signed it (None: the platform's environment account). A message to a business number counts
    for the owners of that number among them only."""
    import time

    senders = [(r.organization_id, _number_id(r)) if r is not None else (None, "") for r in records]
    applied = 0
    for entry in payload.get("entry", []) or []:
        for change in entry.get("changes", []) or []:
            value = change.get("value") or {}
            number_id = str((value.get("metadata") or {}).get("phone_number_id") or "")
            owners = [org for org, own in senders if own in (number_id, "")]
            for message in (value.get("messages") or []) if number_id and owners else []:
                ts = str(message.get("timestamp") or "")
                if message.get("type") != "text" or not ts.isdigit() or time.time() - int(ts) > SEEN_SECONDS:
                    continue  # older than the replay memory: never applied
                applied += bool(whatsapp_keyword_apply(
                    provider_code="meta_whatsapp", message_id=str(message.get("id") or ""), customer=str(message.get("from") or ""),
                    body=str((message.get("text") or {}).get("body") or ""), organization_ids=owners))
    return applied
