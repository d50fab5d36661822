"""`log` providers: record what would be sent in ProviderOutbox (and a log line without the
body). The environment default for every non-email channel, so the embedded run and the
tests deliver end to end without accounts.

Config `simulate_outage: true` makes a record fail every send (a transient error) and every
health check, as an unreachable provider would: the demo data uses it to show failover, the
circuit breaker and dead letters without a real account."""
from __future__ import annotations

import logging
import uuid
from typing import Any

from common.channels import Channel

from common.exceptions import ProviderTransientError

from .base import BaseProvider, HealthResult, OutboundMessage, SendResult, SendStatus
from .registry import register

logger = logging.getLogger(__name__)


class LogProvider(BaseProvider):
    def send(self, message: OutboundMessage) -> SendResult:
        from .models import ProviderOutbox

        if self.config.get("simulate_outage"):
            raise ProviderTransientError(f"{self.code}: simulated outage (config simulate_outage)", code="simulated_outage")
        payload: dict[str, Any] = {
            "title": message.title,
            "html": bool(message.html),
            "criticality": message.criticality,
            "locale": message.locale,
            "data": message.data,
            "action_url": message.action_url,
            "template": {"name": message.template_name, "language": message.template_language,
                         "components": message.template_components} if message.template_name else None,
            "voice": {"audio_url": message.audio_url, "language": message.voice_language,
                      "require_acknowledgment": message.require_acknowledgment} if self.channel == Channel.VOICE else None,
        }
        row = ProviderOutbox.objects.create(
            channel=self.channel, provider_code=self.code, to=message.to[:320], subject=(message.subject or message.title)[:300],
            text=message.text, payload=payload, idempotency_key=str(message.idempotency_key or "")[:100],
        )
        logger.info("%s would send delivery %s to %s (outbox #%s)", self.code, message.idempotency_key or "-", message.to, row.pk)
        return SendResult(provider_message_id=f"log-{row.pk}-{uuid.uuid4().hex[:8]}", status=SendStatus.DELIVERED,
                          raw={"outbox_id": row.pk})

    def health_check(self) -> HealthResult:
        if self.config.get("simulate_outage"):
            return HealthResult(ok=False, response_time_ms=0, detail="simulated outage")
        return HealthResult(ok=True, response_time_ms=0, detail="log provider")


@register
class LogSmsProvider(LogProvider):
    code = "log_sms"
    channel = Channel.SMS
    name = "Log (SMS)"


@register
class LogPushProvider(LogProvider):
    code = "log_push"
    channel = Channel.PUSH
    name = "Log (push)"


@register
class LogWhatsAppProvider(LogProvider):
    code = "log_whatsapp"
    channel = Channel.WHATSAPP
    name = "Log (WhatsApp)"


@register
class LogVoiceProvider(LogProvider):
    code = "log_voice"
    channel = Channel.VOICE
    name = "Log (voice)"


@register
class LogEmailProvider(LogProvider):
    """Email into the outbox table; the embedded default stays the Django email backend."""

    code = "log_email"
    channel = Channel.EMAIL
    name = "Log (email)"
