"""Concurrent sends and kept-alive HTTP connections, per provider record and per process.

A delivery batch hands a provider the messages it may send (after the circuit breaker and
the rate limiter, which live in Redis and are consulted in the worker's own thread). For
providers whose `send` is only an HTTP call (`concurrent_sends = True`), the messages go
out from a bounded thread pool, at most ``PROVIDER_MAX_IN_FLIGHT`` at once per provider
record in this process. Worker threads do nothing but the provider call: no database
access, no journal, no breaker bookkeeping; the caller collects the outcomes in order.

Threads rather than asyncio: the providers' SDKs (twilio, anymail, boto3, vonage) are
synchronous, the GIL is released while a thread waits on the network, and a pool keeps
each provider's own error mapping untouched.

Connections: each provider record gets one ``requests`` session (keep-alive pool sized to
the in-flight limit), reused by every send of the process instead of a new client (and a
new TLS handshake) per message.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import Any, TypeVar

from django.conf import settings

T = TypeVar("T")
M = TypeVar("M")

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
_executor_pid: int | None = None
_limits: dict[Any, threading.BoundedSemaphore] = {}
_sessions: dict[Any, Any] = {}


def max_in_flight() -> int:
    return max(1, int(getattr(settings, "PROVIDER_MAX_IN_FLIGHT", 16)))


def _pool() -> ThreadPoolExecutor:
    """The process's send pool (re-created in a forked child: threads do not survive a fork)."""
    import os

    global _executor, _executor_pid
    with _lock:
        if _executor is None or _executor_pid != os.getpid():
            _executor = ThreadPoolExecutor(max_workers=max(4, 4 * max_in_flight()), thread_name_prefix="provider-send")
            _executor_pid = os.getpid()
            _limits.clear()
            _sessions.clear()
        return _executor


def _limit(key: Any) -> threading.BoundedSemaphore:
    with _lock:
        semaphore = _limits.get(key)
        if semaphore is None:
            semaphore = _limits[key] = threading.BoundedSemaphore(max_in_flight())
        return semaphore


def send_concurrently(key: Any, send: Callable[[M], T], messages: Sequence[M],
                      on_results: Callable[[list[tuple[M, T | Exception]]], None] | None = None,
                      catch: tuple[type[Exception], ...] = (Exception,)) -> list[T | Exception]:
    """``send(message)`` for every message, at most ``max_in_flight()`` at once for ``key``.

    Results (or the caught exception) are in the order of ``messages``. ``on_results`` runs in
    the calling thread with the answers that have come in since its last call, as they come in
    (e.g. to journal accepted messages at once, in one round trip per group).
    An exception outside ``catch`` is raised after every send has finished.
    """
    semaphore = _limit(key)

    def one(message: M) -> T:
        with semaphore:
            return send(message)

    pool = _pool()
    futures = {pool.submit(one, m): index for index, m in enumerate(messages)}
    results: list[Any] = [None] * len(messages)
    unexpected: BaseException | None = None
    waiting = set(futures)
    while waiting:
        done, waiting = wait(waiting, return_when=FIRST_COMPLETED)
        group: list[tuple[M, T | Exception]] = []
        for future in done:
            index = futures[future]
            try:
                result: T | Exception = future.result()
            except catch as exc:
                result = exc
            except BaseException as exc:  # noqa: BLE001 - raised once all sends are done
                unexpected = unexpected or exc
                continue
            results[index] = result
            group.append((messages[index], result))
        if on_results is not None and group:
            on_results(group)
    if unexpected is not None:
        raise unexpected
    return results


def requests_session() -> Any:
    """A ``requests`` session whose keep-alive pool holds as many connections as may be in flight."""
    import requests

    session = requests.Session()
    pool_session(session)
    return session


def pool_session(session: Any) -> Any:
    """Size ``session``'s keep-alive pool to the in-flight limit; read proxy settings once.

    Without proxy variables in the environment, the session stops looking for them (and for
    .netrc) on every request — a scan of the whole environment per message, the largest CPU
    cost of a send. With proxy variables set, requests keeps honouring them per request.
    """
    import urllib.request

    from requests.adapters import HTTPAdapter

    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max_in_flight())
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    if not urllib.request.getproxies():
        session.trust_env = False
    return session


def http_session(key: Any, factory: Callable[[], T]) -> T:
    """One long-lived HTTP client per provider record (``key``) in this process."""
    _pool()  # resets the sessions after a fork
    with _lock:
        client = _sessions.get(key)
        if client is None:
            client = _sessions[key] = factory()
        return client
