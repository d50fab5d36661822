"""Account emails (password reset, address verification) through the platform's own email delivery.

They go out through the email providers of the person's organization (then the global ones,
then the environment default), with failover, circuit breakers and the suppression list, like
every other email — but not as notifications: their links are credentials, and a
notification's data is kept at rest and shown in the history. The message lives only in
memory for the time of the send.
"""
from __future__ import annotations

import logging
import uuid

from django.template.loader import render_to_string

from accounts.models import User
from accounts.selectors import user_primary_organization
from common.exceptions import ProviderError
from notifications.engine.failover import send_with_failover_audit
from notifications.enums import Channel
from providers.base import OutboundMessage

logger = logging.getLogger(__name__)


def account_email_send(*, user: User, template: str, context: dict, to: str | None = None) -> bool:
    """Render `people/emails/<template>.{subject,txt,html}` and send it; True if a provider took it.

    A failure is logged (never the link) and reported as False: the pages answer the same
    either way, so nobody learns from them whether an address has an account.
    """
    address = to or user.email
    if not address:
        return False
    context = {"user": user, **context}
    subject = " ".join(render_to_string(f"people/emails/{template}.subject.txt", context).split())
    message = OutboundMessage(
        channel=Channel.EMAIL,
        to=address,
        subject=subject,
        title=subject,
        text=render_to_string(f"people/emails/{template}.txt", context),
        html=render_to_string(f"people/emails/{template}.html", context),
        locale=user.locale or "en",
        criticality="HIGH",
        idempotency_key=f"account-{template}-{uuid.uuid4()}",
        metadata={"kind": f"account.{template}"},
    )
    organization = user_primary_organization(user=user)
    try:
        send_with_failover_audit(
            organization_id=organization.pk if organization else None, channel=Channel.EMAIL, message=message
        )
    except ProviderError as exc:
        logger.warning("account email %s to user %s not sent: %s", template, user.pk, exc.code or exc.__class__.__name__)
        return False
    return True
