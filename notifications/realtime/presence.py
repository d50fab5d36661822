"""Presence kept by the web tier's live connections.

Each open connection is a member of the user's Redis sorted set, scored with the moment it
expires: refreshed every PRESENCE_REFRESH_SECONDS while open, set to now + grace when it closes
(a page reload reconnects within the grace and the user never looks offline), so a crashed
process leaves nobody online for longer than PRESENCE_TTL_SECONDS. ``UserPresence`` mirrors
it for the rest of the platform. Without Redis (one embedded process) the sets live in memory.
"""
from __future__ import annotations

import asyncio
import logging
import time

from django.conf import settings

from notifications.engine import presence as engine_presence
from notifications.enums import PresenceStatus
from notifications.realtime.db import db_async

logger = logging.getLogger(__name__)

PRESENCE_REFRESH_SECONDS = 30.0

# Adds a connection unless the user already holds `cap` live ones: returns 1 when added.
_OPEN_SCRIPT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""

# Refreshes a chunk of connections: KEYS = n connection sets then n status keys,
# ARGV = expires at, connection set TTL, status TTL, then the n connection names.
_REFRESH_SCRIPT = """
local n = #ARGV - 3
for i = 1, n do
  redis.call('ZADD', KEYS[i], 'XX', ARGV[1], ARGV[3 + i])
  redis.call('EXPIRE', KEYS[i], ARGV[2])
  redis.call('EXPIRE', KEYS[n + i], ARGV[3])
end
return n
"""
REFRESH_CHUNK = 200

_clients: dict[int, object] = {}
_memory: dict[int, dict[str, float]] = {}  # embedded: user id -> {connection: expires at}
_local: dict[str, int] = {}  # this process's open connections: connection -> user id
_refresher: asyncio.Task | None = None


def _ttl() -> int:
    return int(settings.PRESENCE_TTL_SECONDS)


def _client():
    if not settings.REDIS_URL:
        return None
    loop = asyncio.get_running_loop()
    client = _clients.get(id(loop))
    if client is None:
        import redis.asyncio as aioredis

        # A burst of closes must wait for a connection, not fail: a blocking, bounded pool.
        pool = aioredis.BlockingConnectionPool.from_url(settings.REDIS_URL, max_connections=64, timeout=10,
                                                        socket_timeout=5, socket_connect_timeout=2)
        client = aioredis.Redis(connection_pool=pool)
        _clients[id(loop)] = client
    return client


async def connection_open(*, user_id: int, connection: str, cap: int) -> bool:
    """Register a live connection; False when the user is at the cap."""
    now = time.time()
    client = _client()
    if client is None:
        conns = {c: t for c, t in _memory.get(user_id, {}).items() if t > now}
        if len(conns) >= cap:
            return False
        conns[connection] = now + _ttl()
        _memory[user_id] = conns
    else:
        added = await client.eval(_OPEN_SCRIPT, 1, engine_presence.connections_key(user_id), now, now + _ttl(),
                                  connection, cap, _ttl() * 2)
        if not added:
            return False
    _local[connection] = user_id
    _ensure_refresher()
    status = await current_status(user_id=user_id)
    await db_async(engine_presence.presence_record)(
        user_id=user_id, status=status, device_type="web", connection_id=connection
    )
    return True


async def current_status(*, user_id: int) -> str:
    client = _client()
    if client is None:
        return PresenceStatus.ONLINE
    raw = await client.get(engine_presence.status_key(user_id))
    status = raw.decode() if isinstance(raw, bytes) else raw
    return status if status in PresenceStatus.values else PresenceStatus.ONLINE


async def status_set(*, user_id: int, status: str) -> None:
    """The client said online/away/dnd: kept beside the connections, mirrored to UserPresence."""
    client = _client()
    if client is not None:
        await client.set(engine_presence.status_key(user_id), status, ex=_ttl())
    await db_async(engine_presence.presence_record)(user_id=user_id, status=status, device_type="web")


async def live_count(*, user_id: int) -> int:
    now = time.time()
    client = _client()
    if client is None:
        return sum(1 for t in _memory.get(user_id, {}).values() if t > now)
    return int(await client.zcount(engine_presence.connections_key(user_id), now, "+inf"))


async def live_user_ids(*, user_ids: list[int]) -> set[int]:
    """Which of these users hold a live connection on any web process: one round trip."""
    now = time.time()
    client = _client()
    if client is None:
        return {uid for uid in user_ids if any(t > now for t in _memory.get(uid, {}).values())}
    pipe = client.pipeline(transaction=False)
    for uid in user_ids:
        pipe.zcount(engine_presence.connections_key(uid), now, "+inf")
    counts = await pipe.execute()
    return {uid for uid, count in zip(user_ids, counts) if count}


async def connection_close(*, user_id: int, connection: str) -> None:
    """The connection closed: it lingers for the grace period, then the user may go OFFLINE."""
    _local.pop(connection, None)
    grace = float(settings.PRESENCE_GRACE_SECONDS)
    now = time.time()
    client = _client()
    try:
        if client is None:
            conns = _memory.get(user_id, {})
            if connection in conns:
                conns[connection] = now + grace
        else:
            await client.zadd(engine_presence.connections_key(user_id), {connection: now + grace}, xx=True)
    except Exception:  # noqa: BLE001 - the TTL ends it anyway
        logger.warning("presence: closing connection of user %s not recorded", user_id, exc_info=True)
    asyncio.get_running_loop().create_task(_offline_after_grace(user_id, grace))


async def _offline_after_grace(user_id: int, grace: float) -> None:
    await asyncio.sleep(grace + 0.05)
    try:
        if await live_count(user_id=user_id) == 0:
            await db_async(_mirror_offline)(user_id)
    except Exception:  # noqa: BLE001
        logger.warning("presence: user %s not marked offline", user_id, exc_info=True)


def _mirror_offline(user_id: int) -> None:
    from django.utils import timezone

    from notifications.models import UserPresence

    UserPresence.objects.filter(user_id=user_id).update(status=PresenceStatus.OFFLINE, last_seen_at=timezone.now())


def _ensure_refresher() -> None:
    global _refresher
    if _refresher is None or _refresher.done():
        _refresher = asyncio.get_running_loop().create_task(_refresh_forever())


async def _refresh_forever() -> None:
    """Keep this process's connections (Redis) and their users' mirrored rows fresh."""
    while True:
        await asyncio.sleep(PRESENCE_REFRESH_SECONDS)
        try:
            await refresh_local()
        except Exception:  # noqa: BLE001 - next round
            logger.warning("presence refresh failed", exc_info=True)


async def refresh_local() -> None:
    """Push this process's connections' expiry forward, REFRESH_CHUNK at a time: one script call
    per chunk (Redis does the per-key work), the loop free to serve frames between chunks. (One
    pipeline of three commands per connection held the loop for seconds with 2,000 sockets.)"""
    entries = list(_local.items())
    if not entries:
        return
    expires = time.time() + _ttl()
    client = _client()
    if client is None:
        for connection, user_id in entries:
            _memory.setdefault(user_id, {})[connection] = expires
    else:
        for start in range(0, len(entries), REFRESH_CHUNK):
            chunk = entries[start:start + REFRESH_CHUNK]
            keys = ([engine_presence.connections_key(u) for _, u in chunk]
                    + [engine_presence.status_key(u) for _, u in chunk])
            await client.eval(_REFRESH_SCRIPT, len(keys), *keys, expires, _ttl() * 2, _ttl(), *(c for c, _ in chunk))
            await asyncio.sleep(0)
    await db_async(engine_presence.presence_touch)(user_ids={u for _, u in entries})


def local_connection_count() -> int:
    return len(_local)
