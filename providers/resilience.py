"""Circuit breakers and rate limits shared by every worker.

State lives in the Django cache: Redis in production (`REDIS_URL`), the database cache in
the embedded run. Only `add` (SET NX) and `incr` (INCRBY) are used for counters, both
atomic on Redis, so two workers can never both take the last slot of a window.

Times are compared with `time.time()` stored in the values rather than with cache TTLs, so a
cooldown is exact and tests can move the clock.

Circuit breaker (per provider key):
- CLOSED: calls pass; each transient failure increments a counter that lives `window`
  seconds; at `threshold` failures the circuit OPENS (stores the time it opened).
- OPEN: calls are skipped until `cooldown` seconds have passed.
- HALF_OPEN: after the cooldown one caller (an `add` lock) may probe; success closes the
  circuit, failure re-opens it for another cooldown.
Settings: PROVIDER_CIRCUIT_FAILURE_THRESHOLD (5), PROVIDER_CIRCUIT_COOLDOWN_SECONDS (60),
PROVIDER_CIRCUIT_WINDOW_SECONDS (120); a provider's config may override them with
`circuit_failure_threshold`, `circuit_cooldown_seconds`, `circuit_window_seconds`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache

PREFIX = "prov"


class CircuitState:
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class CircuitPolicy:
    threshold: int
    cooldown: float
    window: float

    @classmethod
    def for_config(cls, config: dict[str, Any] | None = None) -> CircuitPolicy:
        config = config or {}
        return cls(
            threshold=int(config.get("circuit_failure_threshold") or getattr(settings, "PROVIDER_CIRCUIT_FAILURE_THRESHOLD", 5)),
            cooldown=float(config.get("circuit_cooldown_seconds") or getattr(settings, "PROVIDER_CIRCUIT_COOLDOWN_SECONDS", 60)),
            window=float(config.get("circuit_window_seconds") or getattr(settings, "PROVIDER_CIRCUIT_WINDOW_SECONDS", 120)),
        )


def _incr(key: str, ttl: int, amount: int = 1) -> int:
    cache.add(key, 0, ttl)
    try:
        return cache.incr(key, amount)
    except ValueError:  # expired between add and incr
        cache.add(key, 0, ttl)
        return cache.incr(key, amount)


class CircuitBreaker:
    def __init__(self, provider_key: str, policy: CircuitPolicy) -> None:
        self.key = provider_key
        self.policy = policy
        self._failures = f"{PREFIX}:cb:{provider_key}:failures"
        self._opened = f"{PREFIX}:cb:{provider_key}:opened_at"
        self._probe = f"{PREFIX}:cb:{provider_key}:probe"

    # The opened_at marker must outlive the cooldown by far: the state is decided by the
    # timestamp inside, the TTL only garbage-collects forgotten providers.
    def _opened_ttl(self) -> int:
        return int(max(self.policy.cooldown * 20, 3600))

    def state(self) -> str:
        opened_at = cache.get(self._opened)
        if opened_at is None:
            return CircuitState.CLOSED
        if time.time() - float(opened_at) < self.policy.cooldown:
            return CircuitState.OPEN
        return CircuitState.HALF_OPEN

    def allow(self) -> bool:
        """May a call go to this provider now? In HALF_OPEN only one caller gets a yes."""
        state = self.state()
        if state == CircuitState.CLOSED:
            return True
        if state == CircuitState.OPEN:
            return False
        return cache.add(self._probe, 1, int(max(self.policy.cooldown, 5)))

    def record_success(self) -> None:
        if cache.get(self._opened) is not None or cache.get(self._failures):
            cache.delete_many([self._opened, self._failures, self._probe])

    def record_failure(self) -> str:
        """Count a transient failure; returns the state after it."""
        if cache.get(self._opened) is not None:
            # A failed probe: re-open for a full cooldown.
            cache.set(self._opened, time.time(), self._opened_ttl())
            cache.delete(self._probe)
            return CircuitState.OPEN
        failures = _incr(self._failures, int(self.policy.window))
        if failures >= self.policy.threshold:
            cache.set(self._opened, time.time(), self._opened_ttl())
            cache.delete_many([self._failures, self._probe])
            return CircuitState.OPEN
        return CircuitState.CLOSED

    def reset(self) -> None:
        cache.delete_many([self._opened, self._failures, self._probe])


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    retry_after: float = 0.0
    remaining_minute: int | None = None
    remaining_day: int | None = None


class RateLimiter:
    """Fixed windows per minute and per UTC day, counted by every worker together."""

    def __init__(self, provider_key: str, *, per_minute: int | None, per_day: int | None) -> None:
        self.key = provider_key
        self.per_minute = per_minute or None
        self.per_day = per_day or None

    def _keys(self, now: float) -> tuple[str, str]:
        minute = int(now // 60)
        day = datetime.fromtimestamp(now, tz=UTC).strftime("%Y%m%d")
        return f"{PREFIX}:rl:{self.key}:m:{minute}", f"{PREFIX}:rl:{self.key}:d:{day}"

    def acquire(self) -> RateDecision:
        """Take one slot in both windows, or none (a refused slot is given back)."""
        if not self.per_minute and not self.per_day:
            return RateDecision(True)
        now = time.time()
        minute_key, day_key = self._keys(now)
        remaining_minute = remaining_day = None
        if self.per_minute:
            used = _incr(minute_key, 120)
            if used > self.per_minute:
                cache.decr(minute_key)
                return RateDecision(False, retry_after=max(1.0, 60 - (now % 60)), remaining_minute=0)
            remaining_minute = self.per_minute - used
        if self.per_day:
            used = _incr(day_key, 2 * 86400)
            if used > self.per_day:
                cache.decr(day_key)
                if self.per_minute:
                    cache.decr(minute_key)
                return RateDecision(False, retry_after=max(1.0, 86400 - (now % 86400)), remaining_day=0)
            remaining_day = self.per_day - used
        return RateDecision(True, remaining_minute=remaining_minute, remaining_day=remaining_day)

    def remaining(self) -> int | None:
        now = time.time()
        minute_key, day_key = self._keys(now)
        values = []
        if self.per_minute:
            values.append(self.per_minute - int(cache.get(minute_key) or 0))
        if self.per_day:
            values.append(self.per_day - int(cache.get(day_key) or 0))
        return max(0, min(values)) if values else None
