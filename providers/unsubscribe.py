"""One-click unsubscribe (RFC 8058): the signed link per user, channel and category that
email providers put in `List-Unsubscribe`. Following it is the notification platform's
business (`notifications.engine.unsubscribe`)."""
from __future__ import annotations

import functools

from django.conf import settings
from django.core import signing
from django.urls import get_script_prefix, reverse

from common.exceptions import ValidationError
from notifications.enums import Channel, EventCategory

SALT = "providers.unsubscribe"
# Links stay valid long enough for old emails in an inbox.
MAX_AGE_SECONDS = 180 * 86400


def unsubscribe_token(*, user_id: int, channel: str, category: str = "") -> str:
    return signing.dumps({"u": int(user_id), "c": channel, "k": category or ""}, salt=SALT, compress=True)


_PLACEHOLDER = "TOKEN0PLACEHOLDER"


@functools.lru_cache(maxsize=8)
def _path_around_token(urlconf: str, script_prefix: str) -> tuple[str, str]:
    """The unsubscribe path before and after its token, resolved once (not once per recipient)."""
    path = reverse("unsubscribe", args=[_PLACEHOLDER])
    before, _, after = path.partition(_PLACEHOLDER)
    return before, after


def unsubscribe_url_for(*, user_id: int, channel: str = Channel.EMAIL, category: str = "") -> str:
    token = unsubscribe_token(user_id=user_id, channel=channel, category=category)
    before, after = _path_around_token(str(getattr(settings, "ROOT_URLCONF", "")), get_script_prefix())
    return f"{settings.SITE_URL}{before}{token}{after}"


def unsubscribe_token_read(token: str) -> dict:
    try:
        data = signing.loads(token, salt=SALT, max_age=MAX_AGE_SECONDS)
    except signing.SignatureExpired:
        raise ValidationError("This unsubscribe link has expired.") from None
    except signing.BadSignature:
        raise ValidationError("This unsubscribe link is not valid.") from None
    if data.get("c") not in Channel.values or (data.get("k") and data["k"] not in EventCategory.values):
        raise ValidationError("This unsubscribe link is not valid.")
    return data
