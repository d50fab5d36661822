"""One-click unsubscribe (RFC 8058): a signed link per user, channel and category."""
from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.urls import reverse

from common.exceptions import ValidationError
from notifications.enums import Channel, EventCategory, PreferenceLevel, PreferenceScope

SALT = "providers.unsubscribe"
# Links stay valid long enough for old emails in an inbox.
MAX_AGE_SECONDS = 180 * 86400


def unsubscribe_token(*, user_id: int, channel: str, category: str = "") -> str:
    return signing.dumps({"u": int(user_id), "c": channel, "k": category or ""}, salt=SALT, compress=True)


def unsubscribe_url_for(*, user_id: int, channel: str = Channel.EMAIL, category: str = "") -> str:
    token = unsubscribe_token(user_id=user_id, channel=channel, category=category)
    return f"{settings.SITE_URL}{reverse('providers-unsubscribe', args=[token])}"


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


@transaction.atomic(durable=True)
def unsubscribe_apply(*, token: str) -> dict:
    """Turn the channel off in the user's own preferences (for one category, or all).
    Idempotent; writes a PREFERENCE_CHANGED audit row the first time."""
    from notifications.enums import AuditAction, AuditActorType
    from notifications.models import (
        ChannelPreference,
        NotificationAuditLog,
        NotificationPreference,
    )

    data = unsubscribe_token_read(token)
    user_id, channel, category = data["u"], data["c"], data["k"]
    from django.contrib.auth import get_user_model

    if not get_user_model().objects.filter(pk=user_id).exists():
        raise ValidationError("This unsubscribe link is not valid.")
    preference, _ = NotificationPreference.objects.get_or_create(
        level=PreferenceLevel.USER, user_id=user_id, organization=None,
        scope=PreferenceScope.CATEGORY if category else PreferenceScope.ALL, category=category, event_type="",
    )
    channel_pref, created = ChannelPreference.objects.get_or_create(preference=preference, channel=channel, defaults={"enabled": False})
    changed = created or channel_pref.enabled
    if channel_pref.enabled:
        channel_pref.enabled = False
        channel_pref.save(update_fields=["enabled"])
    if changed:
        NotificationAuditLog.objects.create(
            action=AuditAction.PREFERENCE_CHANGED, actor_type=AuditActorType.USER, actor_id=str(user_id), user_id=user_id,
            details={"source": "list-unsubscribe", "channel": channel, "category": category or None, "enabled": False},
        )
    return {"user_id": user_id, "channel": channel, "category": category, "changed": changed}
