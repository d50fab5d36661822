"""Whatever `settings.EMAIL_BACKEND` is: the embedded default (file or console backend,
visible in the outbox page) and the fallback when no email provider record exists."""
from __future__ import annotations

import smtplib

from django.conf import settings
from django.core.mail import get_connection
from django.core.mail.message import make_msgid
from django.core.mail.utils import DNS_NAME

from common.channels import Channel

from ..base import BaseProvider, HealthResult, OutboundMessage, SendResult, SendStatus
from ..registry import register
from .common import build_email, smtp_error


@register
class DjangoEmailProvider(BaseProvider):
    """Config: backend (dotted path, default settings.EMAIL_BACKEND), from_email."""

    code = "django_email"
    channel = Channel.EMAIL
    name = "Django email backend"
    # `backend` is imported by dotted path: only email backends, never any importable callable.
    allowed_backend_prefixes = ("django.core.mail.backends.", "anymail.backends.")

    @classmethod
    def config_errors(cls, config: dict) -> list[str]:
        backend = config.get("backend")
        if backend not in (None, "") and (not isinstance(backend, str) or not backend.startswith(cls.allowed_backend_prefixes)):
            return [f"backend must be a Django or anymail email backend ({', '.join(p + '…' for p in cls.allowed_backend_prefixes)})."]
        return []

    def send(self, message: OutboundMessage) -> SendResult:
        connection = get_connection(self.config.get("backend") or settings.EMAIL_BACKEND, fail_silently=False)
        email = build_email(message, from_email=self.setting("from_email"), connection=connection)
        email.extra_headers["Message-ID"] = message_id = make_msgid(domain=DNS_NAME)
        try:
            sent = email.send()
        except (smtplib.SMTPException, OSError) as exc:
            raise smtp_error(exc) from None
        if not sent:
            raise smtp_error(smtplib.SMTPException("backend reported nothing sent"))
        return SendResult(provider_message_id=message_id, status=SendStatus.SENT, raw={"backend": connection.__class__.__module__})

    def health_check(self) -> HealthResult:
        return HealthResult(ok=True, response_time_ms=0, detail=f"local backend {settings.EMAIL_BACKEND}")
