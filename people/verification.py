"""Email address verification: a signed, expiring link per user and address (no table)."""
from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.urls import reverse

from accounts.models import User

from .emails import account_email_send

SALT = "people.verify-email"
MAX_AGE_SECONDS = 3 * 86400


def verification_mode() -> str:
    """none | optional (the default: signed in at once, a link is sent) | mandatory (no sign-in before the link)."""
    mode = getattr(settings, "ACCOUNT_EMAIL_VERIFICATION", "optional")
    return mode if mode in ("none", "optional", "mandatory") else "optional"


def verification_link(user: User) -> str:
    token = signing.dumps({"u": user.pk, "e": user.email.lower()}, salt=SALT, compress=True)
    return settings.SITE_URL + reverse("verify-email", args=[token])


def verification_send(*, user: User) -> bool:
    return account_email_send(user=user, template="verify_email", context={"link": verification_link(user)})


def verification_read(token: str) -> tuple[int, str] | None:
    try:
        data = signing.loads(token, salt=SALT, max_age=MAX_AGE_SECONDS)
    except signing.BadSignature:  # includes SignatureExpired
        return None
    if not isinstance(data, dict) or not isinstance(data.get("u"), int) or not isinstance(data.get("e"), str):
        return None
    return data["u"], data["e"]
