"""In-app "delivery": the Notification row is the inbox entry, so there is nothing to call."""
from __future__ import annotations

import secrets

from notifications.enums import Channel

from .base import BaseProvider, HealthResult, OutboundMessage, SendResult, SendStatus
from .registry import register


def inapp_message_id() -> str:
    """An in-app delivery's message id: random, so that no one can name another's delivery."""
    return f"inapp-{secrets.token_hex(16)}"


@register
class InAppProvider(BaseProvider):
    code = "inapp"
    channel = Channel.IN_APP
    name = "In-app inbox"

    def send(self, message: OutboundMessage) -> SendResult:
        return SendResult(provider_message_id=inapp_message_id(), status=SendStatus.DELIVERED)

    def health_check(self) -> HealthResult:
        return HealthResult(ok=True, response_time_ms=0, detail="in-process")
