"""Attempt limits of the account pages: sign-ups per client address, password-reset requests
per client address and per email address.

Fixed one-hour windows counted in the shared cache (Redis in production, the database cache in
the embedded run), so every web process sees the same count. Not django-ratelimit: its system
check refuses the database cache the embedded run uses, and these are three counters.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache


@dataclass(frozen=True)
class Limit:
    name: str
    setting: str
    default: int
    window: int = 3600

    @property
    def allowed(self) -> int:
        return int(getattr(settings, self.setting, self.default))


SIGNUP_PER_IP = Limit("signup-ip", "SIGNUP_LIMIT_PER_IP", 10)
RESET_PER_IP = Limit("pwreset-ip", "PASSWORD_RESET_LIMIT_PER_IP", 20)
RESET_PER_EMAIL = Limit("pwreset-email", "PASSWORD_RESET_LIMIT_PER_EMAIL", 5)


def limit_hit(limit: Limit, key: str) -> int | None:
    """Count one attempt of `key` (an address, an email); None while within the limit, else the
    seconds until the window ends. Keys are hashed: no address is written to the cache."""
    now = time.time()
    window_index = int(now // limit.window)
    digest = hashlib.sha256(key.strip().lower().encode()).hexdigest()[:32]
    cache_key = f"people:limit:{limit.name}:{digest}:{window_index}"
    cache.add(cache_key, 0, timeout=limit.window)
    try:
        count = cache.incr(cache_key)
    except ValueError:  # evicted between add and incr
        cache.set(cache_key, 1, timeout=limit.window)
        count = 1
    if count <= limit.allowed:
        return None
    return max(1, int((window_index + 1) * limit.window - now))


def wait_words(seconds: int) -> str:
    minutes = max(1, round(seconds / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"
