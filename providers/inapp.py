"""In-app "delivery": the Notification row is the inbox entry, so there is nothing to call."""
from __future__ import annotations

from notifications.enums import Channel

from .base import BaseProvider, HealthResult, OutboundMessage, SendResult, SendStatus
from .registry import register


@register
class InAppProvider(BaseProvider):
    code = "inapp"
    channel = Channel.IN_APP
    name = "In-app inbox"

    def send(self, message: OutboundMessage) -> SendResult:
        return SendResult(provider_message_id=f"inapp-{message.idempotency_key or message.to}", status=SendStatus.DELIVERED)

    def health_check(self) -> HealthResult:
        return HealthResult(ok=True, response_time_ms=0, detail="in-process")
