"""Presence for presence-aware delivery: heartbeats in, "who is online" out, in bulk.

A user counts as ONLINE only while their last heartbeat is fresh (PRESENCE_TTL_SECONDS,
90 s by default): a browser that closed without saying goodbye goes offline by itself.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from common.exceptions import ValidationError
from notifications.enums import PresenceStatus
from notifications.models import UserPresence

DEFAULT_TTL_SECONDS = 90


def presence_ttl() -> timedelta:
    return timedelta(seconds=int(getattr(settings, "PRESENCE_TTL_SECONDS", DEFAULT_TTL_SECONDS)))


def presence_heartbeat(
    *, user, status: str = PresenceStatus.ONLINE, device_type: str = "", connection_id: str = ""
) -> UserPresence:
    if status not in PresenceStatus.values:
        raise ValidationError({"status": [f"Expected one of {', '.join(PresenceStatus.values)}."]})
    now = timezone.now()
    defaults = {"status": status, "last_seen_at": now, "device_type": device_type[:20], "connection_id": connection_id[:100]}
    if status == PresenceStatus.ONLINE:
        defaults["last_active_at"] = now
    presence, _ = UserPresence.objects.update_or_create(user=user, defaults=defaults)
    return presence


def presence_effective_status(presence: UserPresence | None, *, now=None) -> str:
    if presence is None:
        return PresenceStatus.OFFLINE
    now = now or timezone.now()
    if presence.last_seen_at < now - presence_ttl():
        return PresenceStatus.OFFLINE
    return presence.status


def presence_online_user_ids(*, user_ids: Iterable[int], now=None) -> set[int]:
    """Users ONLINE with a fresh heartbeat: one query for any number of users."""
    user_ids = list(user_ids)
    if not user_ids:
        return set()
    now = now or timezone.now()
    return set(
        UserPresence.objects.filter(
            user_id__in=user_ids, status=PresenceStatus.ONLINE, last_seen_at__gte=now - presence_ttl()
        ).values_list("user_id", flat=True)
    )
