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
            threshold=int(config.get("circuit_failure_threshold") or getattr(settings, "PROVIDER_CIRCUIT_FAILURE_THRESHOLD", 5) or 5),
            cooldown=float(config.get("circuit_cooldown_seconds") or getattr(settings, "PROVIDER_CIRCUIT_COOLDOWN_SECONDS", 60) or 60),
            window=float(config.get("circuit_window_seconds") or getattr(settings, "PROVIDER_CIRCUIT_WINDOW_SECONDS", 120) or 120),
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

    def trip(self) -> None:
        """Open now, whatever the count (refused credentials will not get better by retrying)."""
        cache.set(self._opened, time.time(), self._opened_ttl())
        cache.delete_many([self._failures, self._probe])

    def reset(self) -> None:
        cache.delete_many([self._opened, self._failures, self._probe])


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    retry_after: float = 0.0
    remaining_minute: int | None = None
    remaining_day: int | None = None


class RateLimiter:
    """Fixed windows per second, per minute and per UTC day, counted by every worker together.

    The per-second window (a Twilio long code sends about one segment per second) is taken
    from the record's config, ``rate_limit_per_second``; the others are the record's fields.
    """

    def __init__(self, provider_key: str, *, per_minute: int | None, per_day: int | None,
                 per_second: float | int | None = None) -> None:
        self.key = provider_key
        self.per_second = int(per_second) if per_second else None
        self.per_minute = per_minute or None
        self.per_day = per_day or None

    def _keys(self, now: float) -> tuple[str, str]:
        minute = int(now // 60)
        day = datetime.fromtimestamp(now, tz=UTC).strftime("%Y%m%d")
        return f"{PREFIX}:rl:{self.key}:m:{minute}", f"{PREFIX}:rl:{self.key}:d:{day}"

    def _windows(self, now: float) -> list[tuple[int, str, int, float]]:
        """(limit, key, ttl, seconds until the window ends) of every window that has a limit."""
        minute_key, day_key = self._keys(now)
        windows = []
        if self.per_second:
            windows.append((self.per_second, f"{PREFIX}:rl:{self.key}:s:{int(now)}", 5, 1 - (now % 1)))
        if self.per_minute:
            windows.append((self.per_minute, minute_key, 120, max(1.0, 60 - (now % 60))))
        if self.per_day:
            windows.append((self.per_day, day_key, 2 * 86400, max(1.0, 86400 - (now % 86400))))
        return windows

    def acquire_many(self, count: int) -> tuple[int, float]:
        """Take up to ``count`` slots in every window at once: (slots granted, seconds until more).

        Two atomic INCRBYs per window whatever ``count``; slots a later window refuses are
        given back to the earlier ones, so no window ever counts a message that was not sent.
        """
        if count <= 0:
            return 0, 0.0
        now = time.time()
        windows = self._windows(now)
        if not windows:
            return count, 0.0
        granted = count
        retry_after = 0.0
        taken: list[str] = []
        for limit, key, ttl, left in windows:
            used = _incr(key, ttl, granted)
            over = used - limit
            if over > 0:
                give = min(over, granted)
                cache.decr(key, give)
                for earlier in taken:
                    cache.decr(earlier, give)
                granted -= give
                retry_after = max(retry_after, left)
                if granted == 0:
                    break
            taken.append(key)
        return granted, retry_after

    def acquire(self) -> RateDecision:
        """Take one slot in every window, or none (a refused slot is given back)."""
        granted, retry_after = self.acquire_many(1)
        if not granted:
            return RateDecision(False, retry_after=retry_after, remaining_minute=0)
        return RateDecision(True)

    def remaining(self) -> int | None:
        now = time.time()
        values = [limit - int(cache.get(key) or 0) for limit, key, _ttl, _left in self._windows(now)]
        return max(0, min(values)) if values else None
