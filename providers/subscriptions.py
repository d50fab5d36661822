"""Push subscriptions: the devices a user's push messages go to."""
from __future__ import annotations

from common.exceptions import ValidationError

from .models import PushSubscription, PushSubscriptionKind


def push_subscription_save(*, user_id: int, endpoint: str, p256dh: str = "", auth: str = "", kind: str = PushSubscriptionKind.WEBPUSH,
                           device_id: str = "", user_agent: str = "") -> PushSubscription:
    if kind == PushSubscriptionKind.WEBPUSH:
        from common import outbound

        try:
            # The server will post to this URL: https, a valid port, no literal internal address
            # (each send resolves it again and refuses non-public answers).
            outbound.url_check_syntax(endpoint, schemes=("https", "http") if outbound.loopback_allowed() else ("https",))
        except outbound.OutboundRefused as exc:
            raise ValidationError({"endpoint": [f"Not a usable Web Push endpoint: {exc.reason}."]}) from None
        if not p256dh or not auth:
            raise ValidationError({"keys": ["Web Push subscriptions need keys.p256dh and keys.auth."]})
    subscription, _ = PushSubscription.objects.update_or_create(
        user_id=user_id, endpoint=endpoint,
        defaults={"kind": kind, "p256dh": p256dh, "auth": auth, "device_id": device_id[:128], "user_agent": user_agent[:300]},
    )
    return subscription


def push_subscription_delete(*, user_id: int, endpoint: str) -> int:
    deleted, _ = PushSubscription.objects.filter(user_id=user_id, endpoint=endpoint).delete()
    return deleted
