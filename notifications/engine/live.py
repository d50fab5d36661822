"""Live updates to a user's open connections (WebSocket and SSE) through the channel layer.

Best effort: the inbox in the database is the truth and clients resynchronise when they
reconnect, so a failure here is logged, never raised into the change that caused it.
"""
from __future__ import annotations

import logging
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)

_redis = None


def redis_client():
    """A process-wide synchronous Redis client, or None when REDIS_URL is not configured."""
    global _redis
    if not settings.REDIS_URL:
        return None
    if _redis is None:
        import redis

        _redis = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=2,
                                      health_check_interval=30)
    return _redis


def user_group(user_id: int) -> str:
    """The channel layer group every live connection of a user joins."""
    return f"inbox.user.{int(user_id)}"


def live_send(*, user_id: int, message: dict[str, Any]) -> None:
    """Send a channel layer message to every live connection of a user."""
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(user_group(user_id), message)
    except Exception:  # noqa: BLE001
        logger.warning("live update for user %s not sent", user_id, exc_info=True)
