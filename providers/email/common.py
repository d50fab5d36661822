"""Building Django email messages from an OutboundMessage, shared by every email provider."""
from __future__ import annotations

import smtplib
import socket
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives

from common.exceptions import ProviderPermanentError, ProviderTransientError

from ..base import OutboundMessage, transient_or_permanent_for_status


def unsubscribe_headers(message: OutboundMessage) -> dict[str, str]:
    """RFC 2369 + RFC 8058 one-click unsubscribe headers, when the message has a link."""
    url = message.unsubscribe_url
    if not url and message.metadata.get("user_id"):
        from ..unsubscribe import unsubscribe_url_for

        url = unsubscribe_url_for(
            user_id=int(message.metadata["user_id"]), channel=message.channel, category=message.metadata.get("category", "")
        )
    if not url:
        return {}
    return {"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


def build_email(message: OutboundMessage, *, message_class: type[EmailMultiAlternatives] = EmailMultiAlternatives,
                from_email: str | None = None, connection: Any = None, per_recipient_headers: bool = True) -> EmailMultiAlternatives:
    if not message.to or "@" not in message.to:
        raise ProviderPermanentError(f"Invalid email address {message.to!r}.", code="invalid_recipient")
    # A line break in a header would let content forge headers (Bcc:…); Django refuses the whole
    # send with BadHeaderError, which no retry fixes: fail this one message, permanently.
    for label, value in (("subject", message.subject or message.title), ("recipient", message.to),
                         ("reply-to", message.reply_to), ("from", message.from_address),
                         *(("copy", address) for address in (*message.cc, *message.bcc)),
                         *(("header", f"{name}: {text}") for name, text in message.headers.items())):
        if value and ("\r" in value or "\n" in value):
            raise ProviderPermanentError(f"The email {label} contains a line break.", code="bad_header")
    headers = dict(message.headers)
    if per_recipient_headers:
        headers.update(unsubscribe_headers(message))
    if message.idempotency_key:
        headers.setdefault("X-Troubadour-Delivery", str(message.idempotency_key))
    email = message_class(
        subject=message.subject or message.title,
        body=message.text,
        from_email=message.from_address or from_email or settings.DEFAULT_FROM_EMAIL,
        to=[message.to],
        cc=list(message.cc) or None,
        bcc=list(message.bcc) or None,
        reply_to=[message.reply_to] if message.reply_to else None,
        headers=headers,
        connection=connection,
    )
    if message.html:
        email.attach_alternative(message.html, "text/html")
    for attachment in message.attachments:
        if attachment.content_id:
            # An inline image the HTML names by cid:…
            from email.mime.image import MIMEImage

            if attachment.mimetype.startswith("image/"):
                part = MIMEImage(attachment.content, _subtype=attachment.mimetype.split("/", 1)[1])
                part.add_header("Content-ID", f"<{attachment.content_id}>")
                part.add_header("Content-Disposition", "inline", filename=attachment.filename)
                email.attach(part)
                continue
        email.attach(attachment.filename, attachment.content, attachment.mimetype)
    return email


def smtp_error(exc: Exception) -> Exception:
    """SMTP reply codes: 4xx temporary, 5xx permanent (RFC 5321); network trouble is transient."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        if codes and all(400 <= c < 500 for c in codes):
            return ProviderTransientError("Recipient temporarily refused.", code="smtp_4xx")
        return ProviderPermanentError("Recipient refused by the SMTP server.", code="invalid_recipient")
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return ProviderPermanentError("SMTP authentication failed.", code="auth")
    if isinstance(exc, smtplib.SMTPResponseException):
        if 400 <= exc.smtp_code < 500:
            return ProviderTransientError(f"SMTP {exc.smtp_code}.", code="smtp_4xx")
        return ProviderPermanentError(f"SMTP {exc.smtp_code}.", code="smtp_5xx")
    if isinstance(exc, (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, socket.timeout, TimeoutError, ConnectionError, OSError)):
        return ProviderTransientError(f"SMTP connection failed: {exc.__class__.__name__}.", code="connection")
    return transient_or_permanent_for_status(None, f"SMTP error: {exc.__class__.__name__}.")
