"""Confirming the person's phone number: a six-digit code texted through the platform's SMS
providers, typed back on the profile page.

The code lives only as a keyed digest in the shared cache, bound to the number it was sent to,
for ten minutes and five tries. Like the account emails it is sent as a bare message, not as a
notification, so it is never kept in the notification history nor logged.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import uuid

from django.conf import settings
from django.core.cache import cache

from accounts.models import User
from accounts.selectors import user_primary_organization
from common.exceptions import ProviderError, ValidationError
from notifications.enums import Channel
from providers.base import OutboundMessage
from providers.services import provider_send_with_failover

from .limits import Limit, limit_hit, wait_words

logger = logging.getLogger(__name__)

CODE_TTL_SECONDS = 600
MAX_TRIES = 5
SENDS_PER_USER = Limit("phone-code", "PHONE_CODE_LIMIT_PER_USER", 5)
MESSAGES = {
    "en": "Your Troubadour code is {code}. It confirms this number for your account; it expires in 10 minutes.",
    "fr": "Votre code Troubadour est {code}. Il confirme ce numéro pour votre compte ; il expire dans 10 minutes.",
}


def _key(user: User) -> str:
    return f"people:phone-code:{user.pk}"


def _digest(code: str, phone: str) -> str:
    return hmac.new(settings.SECRET_KEY.encode(), f"{phone}:{code}".encode(), hashlib.sha256).hexdigest()


def phone_code_pending(*, user: User) -> bool:
    pending = cache.get(_key(user))
    return bool(pending and pending.get("phone") == user.phone)


def phone_code_send(*, user: User) -> None:
    """Text a new code to the person's number. ValidationError when there is no number to confirm
    or too many codes were asked for; ProviderError when no SMS provider took it."""
    if not user.phone:
        raise ValidationError({"phone": ["Add your phone number first."]})
    if user.phone_verified_at is not None:
        raise ValidationError({"phone": ["This number is already confirmed."]})
    wait = limit_hit(SENDS_PER_USER, str(user.pk))
    if wait is not None:
        raise ValidationError({"code": [f"We sent several codes already. Please try again in {wait_words(wait)}."]})
    code = f"{secrets.randbelow(10**6):06d}"
    cache.set(_key(user), {"phone": user.phone, "digest": _digest(code, user.phone), "tries": 0}, timeout=CODE_TTL_SECONDS)
    message = OutboundMessage(
        channel=Channel.SMS, to=user.phone, text=MESSAGES.get(user.locale, MESSAGES["en"]).format(code=code),
        locale=user.locale or "en", criticality="HIGH", idempotency_key=f"account-phone-code-{uuid.uuid4()}",
        metadata={"kind": "account.phone_code"},
    )
    organization = user_primary_organization(user=user)
    try:
        provider_send_with_failover(organization_id=organization.pk if organization else None, channel=Channel.SMS, message=message)
    except ProviderError:
        cache.delete(_key(user))
        logger.warning("phone code for user %s not sent", user.pk)
        raise


def phone_code_check(*, user: User, code: str) -> bool:
    """True when `code` is the one texted to the person's current number (then it is used up)."""
    pending = cache.get(_key(user))
    if not pending or pending.get("phone") != user.phone:
        raise ValidationError({"code": ["No code is waiting for this number: ask for a new one."]})
    if pending["tries"] >= MAX_TRIES:
        cache.delete(_key(user))
        raise ValidationError({"code": ["Too many wrong codes: ask for a new one."]})
    if not hmac.compare_digest(pending["digest"], _digest(code.strip(), user.phone)):
        pending["tries"] += 1
        cache.set(_key(user), pending, timeout=CODE_TTL_SECONDS)
        raise ValidationError({"code": ["That is not the code we sent."]})
    cache.delete(_key(user))
    return True
