"""Following an unsubscribe link: the channel goes off in the user's own preferences."""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction

from common.exceptions import ValidationError
from notifications.enums import AuditAction, AuditActorType, PreferenceLevel, PreferenceScope
from notifications.models import ChannelPreference, NotificationAuditLog, NotificationPreference
from providers.unsubscribe import unsubscribe_token_read


@transaction.atomic(durable=True)
def unsubscribe_apply(*, token: str) -> dict:
    """Turn the channel off in the user's own preferences (for one category, or all).
    Idempotent; writes a PREFERENCE_CHANGED audit row the first time."""
    data = unsubscribe_token_read(token)
    user_id, channel, category = data["u"], data["c"], data["k"]
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
