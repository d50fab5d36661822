"""Events per organization: a token bucket shared by every web process and consumer.

One tenant must not flood the shared intake and workers. Each organization has a bucket of
`burst` tokens refilled at `per_minute` tokens a minute; an event takes one. `POST
/api/v1/events/` answers 429 with Retry-After when the bucket is empty, and the AMQP consumer
dead-letters the message with reason `rate_limited` (see consume_events).

With Redis the bucket is one hash updated by a Lua script (atomic, on the Redis clock, so every
process agrees); without it (the embedded run) the Django cache holds it under a short lock.
Defaults come from settings (EVENTS_RATE_PER_MINUTE, EVENTS_BURST); an organization's own
`events_per_minute` / `events_burst` override them, 0 meaning unlimited.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

from accounts.models import Organization
from common.exceptions import RateLimited

from .ratelimit import _redis_client

_PREFIX = "trb:events-bucket:"

# KEYS[1] bucket; ARGV: rate (tokens/s), burst, cost. Returns {allowed, wait seconds as text}.
_TAKE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local rate, burst, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
if now > at then tokens = math.min(burst, tokens + (now - at) * rate) end
local allowed, wait = 0, 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
else
  wait = (cost - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(math.max(now, at)))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 60)
return {allowed, tostring(wait)}
"""


@dataclass(frozen=True)
class Allowance:
    allowed: bool
    retry_after: float = 0.0


def organization_event_rate(organization: Organization) -> tuple[int, int]:
    """(per minute, burst) for this organization; (0, 0) when unlimited."""
    per_minute = organization.events_per_minute
    if per_minute is None:
        per_minute = int(getattr(settings, "EVENTS_RATE_PER_MINUTE", 600))
    burst = organization.events_burst
    if burst is None:
        burst = int(getattr(settings, "EVENTS_BURST", 0)) or per_minute
    if per_minute <= 0:
        return 0, 0
    return per_minute, max(burst, 1)


def _take_redis(key: str, *, rate: float, burst: int, cost: int) -> Allowance:
    client = _redis_client(settings.REDIS_URL)
    allowed, wait = client.eval(_TAKE, 1, key, repr(rate), burst, cost)
    return Allowance(bool(int(allowed)), float(wait))


def _take_cache(key: str, *, rate: float, burst: int, cost: int) -> Allowance:
    lock = f"{key}:lock"
    deadline = time.monotonic() + 2
    while not cache.add(lock, 1, timeout=5):
        if time.monotonic() > deadline:  # a crashed holder: its lock expires on its own
            break
        time.sleep(0.005)
    try:
        now = time.time()
        tokens, at = cache.get(key) or (float(burst), now)
        tokens = min(float(burst), tokens + max(0.0, now - at) * rate)
        if tokens >= cost:
            cache.set(key, (tokens - cost, now), timeout=int(burst / rate) + 60)
            return Allowance(True)
        cache.set(key, (tokens, now), timeout=int(burst / rate) + 60)
        return Allowance(False, (cost - tokens) / rate)
    finally:
        cache.delete(lock)


def organization_events_take(*, organization: Organization, count: int = 1) -> Allowance:
    """Take `count` event tokens from the organization's bucket (nothing is taken when refused)."""
    per_minute, burst = organization_event_rate(organization)
    if per_minute == 0:
        return Allowance(True)
    rate = per_minute / 60.0
    key = f"{_PREFIX}{organization.pk}"
    take = _take_redis if getattr(settings, "REDIS_URL", "") else _take_cache
    return take(key, rate=rate, burst=burst, cost=min(count, burst))


def organization_events_check(*, organization: Organization, count: int = 1) -> None:
    """Raise RateLimited (429, Retry-After) when the organization has no event token left."""
    allowance = organization_events_take(organization=organization, count=count)
    if not allowance.allowed:
        wait = max(1, math.ceil(allowance.retry_after))
        raise RateLimited(
            f"This organization sends more than {organization_event_rate(organization)[0]} events a minute; "
            f"retry in {wait} s.",
            code="rate_limited",
            retry_after=wait,
        )
