"""Fixed-window counters shared by every web process, worker and consumer.

With REDIS_URL set, counters are Redis keys incremented atomically (INCRBY + EXPIRE in one
pipeline, one round trip for a whole fan-out). Without Redis (embedded run) the Django
cache is used: `cache.add` + `cache.incr` is atomic enough on the database cache for a
single-machine deployment.

A fan-out reserves its whole demand in one call and learns, per key, how much of it fits:
`counters_reserve({"k": 5})` on a key at 8/10 returns {"k": 2} and leaves the counter at 10
(the overflow is given back so that refused items don't eat the next requests' budget).
"""
from __future__ import annotations

import time
from collections.abc import Mapping
from functools import lru_cache

from django.conf import settings
from django.core.cache import cache

WINDOW_SECONDS = 3600
_PREFIX = "trb:rl:"


@lru_cache(maxsize=4)
def _redis_client(url: str):
    import redis

    return redis.Redis.from_url(url)


def _window_suffix(window: int, now: float | None = None) -> str:
    return str(int((now if now is not None else time.time()) // window))


def _full_keys(keys: list[str], window: int) -> list[str]:
    suffix = _window_suffix(window)
    return [f"{_PREFIX}{key}:{suffix}" for key in keys]


def counters_reserve(*, demands: Mapping[str, tuple[int, int]], window: int = WINDOW_SECONDS) -> dict[str, int]:
    """Reserve `count` units against `limit` for each key; return how many were granted.

    `demands` maps a key to (count, limit). Keys are incremented by their full count in one
    pipeline; any amount above the limit is decremented back in a second pipeline, so the
    counter never stays above the limit because of a refused request.
    """
    wanted = {k: (c, lim) for k, (c, lim) in demands.items() if c > 0}
    if not wanted:
        return {k: 0 for k in demands}
    keys = list(wanted)
    full = _full_keys(keys, window)
    url = getattr(settings, "REDIS_URL", "")
    granted: dict[str, int] = {k: 0 for k in demands}
    if url:
        client = _redis_client(url)
        pipe = client.pipeline(transaction=False)
        for key, fk in zip(keys, full):
            pipe.incrby(fk, wanted[key][0])
            pipe.expire(fk, window + 60, nx=True)
        results = pipe.execute()
        totals = results[0::2]
        refunds = client.pipeline(transaction=False)
        refund_needed = False
        for key, fk, total in zip(keys, full, totals):
            count, limit = wanted[key]
            before = int(total) - count
            ok = max(0, min(count, limit - before))
            granted[key] = ok
            if ok < count:
                refunds.decrby(fk, count - ok)
                refund_needed = True
        if refund_needed:
            refunds.execute()
        return granted
    for key, fk in zip(keys, full):
        count, limit = wanted[key]
        cache.add(fk, 0, timeout=window + 60)
        try:
            total = cache.incr(fk, count)
        except ValueError:  # evicted between add and incr
            cache.set(fk, count, timeout=window + 60)
            total = count
        before = total - count
        ok = max(0, min(count, limit - before))
        granted[key] = ok
        if ok < count:
            try:
                cache.decr(fk, count - ok)
            except ValueError:
                pass
    return granted


def counters_read(*, keys: list[str], window: int = WINDOW_SECONDS) -> dict[str, int]:
    """Current values (for diagnostics and tests)."""
    full = _full_keys(keys, window)
    url = getattr(settings, "REDIS_URL", "")
    if url:
        values = _redis_client(url).mget(full)
        return {k: int(v or 0) for k, v in zip(keys, values)}
    found = cache.get_many(full)
    return {k: int(found.get(fk) or 0) for k, fk in zip(keys, full)}


def user_channel_key(*, organization_id: int, user_key: str, channel: str) -> str:
    return f"u:{organization_id}:{user_key}:{channel}"


def organization_channel_key(*, organization_id: int, channel: str) -> str:
    return f"o:{organization_id}:{channel}"


def counters_release(*, amounts: Mapping[str, int], window: int = WINDOW_SECONDS) -> None:
    """Give back units reserved by `counters_reserve` that ended up unused."""
    wanted = {k: n for k, n in amounts.items() if n > 0}
    if not wanted:
        return
    keys = list(wanted)
    full = _full_keys(keys, window)
    url = getattr(settings, "REDIS_URL", "")
    if url:
        pipe = _redis_client(url).pipeline(transaction=False)
        for key, fk in zip(keys, full):
            pipe.decrby(fk, wanted[key])
        pipe.execute()
        return
    for key, fk in zip(keys, full):
        try:
            cache.decr(fk, wanted[key])
        except ValueError:
            pass
