"""Process-local memos that stay exact across processes: a generation token in Redis.

A memo keeps values read from the database in this process, each stamped with the generation
token it was read under. Every read asks Redis for the current token first (one GET, far
cheaper than the query it saves) and uses a stamped value only when the tokens match; whatever
changes what a memo holds calls ``bump``, which writes a new token, so every process reads the
database again on its next use. ``bump`` runs at once *and* after the current transaction
commits: a process that read the old rows under the token of the first bump throws them away
at the second.

Without Redis (the embedded run) or when it does not answer, nothing is memoized: the value is
read every time, as if there were no memo.
"""
from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

from django.conf import settings
from django.db import transaction

logger = logging.getLogger(__name__)

T = TypeVar("T")

_PREFIX = "trb:gen:"
_clients: dict[tuple[str, int], Any] = {}


def _redis():
    """A process-wide Redis client for REDIS_URL (its pool is shared by the threads), or None."""
    import os

    url = getattr(settings, "REDIS_URL", "") or ""
    if not url:
        return None
    key = (url, os.getpid())
    client = _clients.get(key)
    if client is None:
        import redis

        client = _clients[key] = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=1,
                                                      health_check_interval=30)
    return client


class GenerationMemo(Generic[T]):
    """``memo.get(key, loader)``: the value ``loader()`` returned under the current generation."""

    def __init__(self, name: str, *, maxsize: int = 2048) -> None:
        self.name = name
        self.redis_key = _PREFIX + name
        self.maxsize = maxsize
        self._entries: dict[Hashable, tuple[str, T]] = {}
        self._lock = threading.Lock()

    def current(self) -> str | None:
        """The current token (a new one is set when Redis has none, e.g. after a flush); None
        when there is no Redis to ask."""
        client = _redis()
        if client is None:
            return None
        try:
            token = client.get(self.redis_key)
            if token is None:
                client.set(self.redis_key, uuid.uuid4().hex, nx=True)
                token = client.get(self.redis_key)
        except Exception:  # noqa: BLE001 - no memo without Redis: read the database
            logger.warning("generation %s unreadable; reading the database", self.name, exc_info=True)
            return None
        return token.decode() if isinstance(token, bytes) else token

    def get(self, key: Hashable, loader: Callable[[], T], *, keep: Callable[[T], bool] | None = None) -> T:
        """The memoized value, or ``loader()`` (kept when ``keep`` says so, or always)."""
        token = self.current()  # read BEFORE the database: a change after it bumps it again
        if token is None:
            return loader()
        entry = self._entries.get(key)
        if entry is not None and entry[0] == token:
            return entry[1]
        value = loader()
        if keep is None or keep(value):
            with self._lock:
                if len(self._entries) >= self.maxsize:
                    self._entries.clear()
                self._entries[key] = (token, value)
        return value

    def bump(self) -> None:
        """What this memo holds changed: every process reads it again (now and after commit)."""
        self._bump_now()
        transaction.on_commit(self._bump_now)

    def _bump_now(self) -> None:
        with self._lock:
            self._entries.clear()
        client = _redis()
        if client is None:
            return
        try:
            client.set(self.redis_key, uuid.uuid4().hex)
        except Exception:  # noqa: BLE001 - nothing else can be done; logged loudly
            logger.error("generation %s not bumped: other processes may use stale values", self.name, exc_info=True)
