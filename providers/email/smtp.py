"""Any SMTP server, through Django's SMTP backend with per-record host and credentials."""
from __future__ import annotations

import smtplib
import time

from django.core.mail.backends.smtp import EmailBackend as SmtpBackend
from django.core.mail.message import make_msgid
from django.core.mail.utils import DNS_NAME

from common.channels import Channel

from ..base import BaseProvider, HealthResult, OutboundMessage, SendResult, SendStatus
from ..registry import register
from .common import build_email, smtp_error


@register
class SmtpEmailProvider(BaseProvider):
    """Config: host, port, use_tls, use_ssl, from_email, helo_name (EHLO name; default this
    machine's). Credentials: username, password."""

    code = "smtp"
    channel = Channel.EMAIL
    name = "SMTP"
    sensitive_params = ("password",)
    required_params = ("host",)
    env_credentials = {"username": "EMAIL_HOST_USER", "password": "EMAIL_HOST_PASSWORD"}

    def _backend(self) -> SmtpBackend:
        helo = self.setting("helo_name")
        backend = (_greeting_backend(str(helo)) if helo else SmtpBackend)(
            host=self.require("host"),
            port=int(self.setting("port", 25)),
            username=self.setting("username", ""),
            password=self.setting("password", ""),
            use_tls=bool(self.setting("use_tls", False)),
            use_ssl=bool(self.setting("use_ssl", False)),
            timeout=self.timeout,
            fail_silently=False,
        )
        return backend

    def send(self, message: OutboundMessage) -> SendResult:
        email = build_email(message, from_email=self.setting("from_email"))
        email.extra_headers["Message-ID"] = message_id = make_msgid(domain=DNS_NAME)
        backend = self._backend()
        try:
            backend.send_messages([email])
        except (smtplib.SMTPException, OSError) as exc:
            raise smtp_error(exc) from None
        return SendResult(provider_message_id=message_id, status=SendStatus.SENT, raw={"host": backend.host})

    def health_check(self) -> HealthResult:
        started = time.monotonic()
        backend = self._backend()
        try:
            backend.open()
            if backend.connection is not None:
                backend.connection.noop()
            backend.close()
        except (smtplib.SMTPException, OSError) as exc:
            return HealthResult(ok=False, response_time_ms=self._elapsed_ms(started), detail=str(smtp_error(exc)),
                                credentials_refused=isinstance(exc, smtplib.SMTPAuthenticationError))
        return HealthResult(ok=True, response_time_ms=self._elapsed_ms(started))


def _greeting_backend(name: str) -> type[SmtpBackend]:
    """Django's SMTP backend introducing itself (EHLO) as `name`: relays that accept mail by the
    sender's address or domain (Google Workspace's) check it, and a container's hostname is
    meaningless."""

    class GreetingSMTP(smtplib.SMTP):
        def __init__(self, host: str = "", port: int = 0, local_hostname: str | None = None, **kwargs) -> None:
            super().__init__(host, port, local_hostname=name, **kwargs)

    class GreetingSMTPSSL(smtplib.SMTP_SSL):
        def __init__(self, host: str = "", port: int = 0, local_hostname: str | None = None, **kwargs) -> None:
            super().__init__(host, port, local_hostname=name, **kwargs)

    class GreetingBackend(SmtpBackend):
        @property
        def connection_class(self):
            return GreetingSMTPSSL if self.use_ssl else GreetingSMTP

    return GreetingBackend
