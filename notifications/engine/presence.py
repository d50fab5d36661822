"""Presence for presence-aware delivery: heartbeats and live connections in, "who is online" out.

Two sources, read together in bulk:
- the web tier's open WebSocket connections, kept in Redis (one sorted set per user, each
  connection scored with the moment it expires, refreshed while it is open): shared by every
  web process, and a crashed process cannot leave anybody online past PRESENCE_TTL_SECONDS;
- ``UserPresence`` rows (the heartbeat API, and the web tier's mirror of its connections),
  counted only while their last heartbeat is fresh.
"""
from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from common.query import id_array
from common.exceptions import ValidationError
from notifications.enums import PresenceStatus
from notifications.models import UserPresence

DEFAULT_TTL_SECONDS = 90
CONNECTIONS_KEY = "troubadour:presence:conns:{user_id}"
STATUS_KEY = "troubadour:presence:status:{user_id}"


def presence_ttl() -> timedelta:
    return timedelta(seconds=int(getattr(settings, "PRESENCE_TTL_SECONDS", DEFAULT_TTL_SECONDS)))


def connections_key(user_id: int) -> str:
    return CONNECTIONS_KEY.format(user_id=user_id)


def status_key(user_id: int) -> str:
    return STATUS_KEY.format(user_id=user_id)


def presence_heartbeat(
    *, user, status: str = PresenceStatus.ONLINE, device_type: str = "", connection_id: str = ""
) -> UserPresence:
    if status not in PresenceStatus.values:
        raise ValidationError({"status": [f"Expected one of {', '.join(PresenceStatus.values)}."]})
    return presence_record(user_id=user.pk, status=status, device_type=device_type, connection_id=connection_id)


def presence_record(*, user_id: int, status: str, device_type: str = "", connection_id: str = "") -> UserPresence:
    now = timezone.now()
    defaults = {"status": status, "last_seen_at": now, "device_type": device_type[:20], "connection_id": connection_id[:100]}
    if status == PresenceStatus.ONLINE:
        defaults["last_active_at"] = now
    presence, _ = UserPresence.objects.update_or_create(user_id=user_id, defaults=defaults)
    return presence


def presence_touch(*, user_ids: Iterable[int]) -> int:
    """Keep the mirrored rows of users with open connections fresh: one query."""
    user_ids = list(user_ids)
    if not user_ids:
        return 0
    return UserPresence.objects.filter(user_id__in=user_ids).exclude(status=PresenceStatus.OFFLINE).update(
        last_seen_at=timezone.now()
    )


def presence_effective_status(presence: UserPresence | None, *, now=None) -> str:
    if presence is None:
        return PresenceStatus.OFFLINE
    now = now or timezone.now()
    if presence.last_seen_at < now - presence_ttl():
        return PresenceStatus.OFFLINE
    return presence.status


def presence_live_statuses(*, user_ids: Iterable[int]) -> dict[int, str]:
    """Users with at least one open (or just closed, within the grace period) connection, with
    the status their client set (ONLINE unless it said AWAY/DND): one Redis round trip."""
    from notifications.engine.live import redis_client

    user_ids = list(user_ids)
    client = redis_client()
    if client is None or not user_ids:
        return {}
    now = time.time()
    pipe = client.pipeline(transaction=False)
    for user_id in user_ids:
        pipe.zcount(connections_key(user_id), now, "+inf")
        pipe.get(status_key(user_id))
    replies = pipe.execute()
    result: dict[int, str] = {}
    for index, user_id in enumerate(user_ids):
        count, status = replies[2 * index], replies[2 * index + 1]
        if count:
            status = status.decode() if isinstance(status, bytes) else status
            result[user_id] = status if status in PresenceStatus.values else PresenceStatus.ONLINE
    return result


def presence_online_user_ids(*, user_ids: Iterable[int], now=None) -> set[int]:
    """Users ONLINE now (live connection in Redis, or a fresh heartbeat): a fixed number of
    round trips for any number of users."""
    user_ids = list(user_ids)
    if not user_ids:
        return set()
    now = now or timezone.now()
    live = presence_live_statuses(user_ids=user_ids)
    online = {uid for uid, status in live.items() if status == PresenceStatus.ONLINE}
    rest = [uid for uid in user_ids if uid not in live]
    if rest:
        online |= set(
            UserPresence.objects.filter(
                user_id__any=id_array(rest), status=PresenceStatus.ONLINE, last_seen_at__gte=now - presence_ttl()
            ).values_list("user_id", flat=True)
        )
    return online
