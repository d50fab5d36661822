"""Concurrent sends and kept-alive HTTP connections, per provider record and per process.

A delivery batch hands a provider the messages it may send (after the circuit breaker and
the rate limiter, which live in Redis and are consulted in the worker's own thread). For
providers whose `send` is only an HTTP call (`concurrent_sends = True`), the messages go
out from a bounded thread pool, at most ``PROVIDER_MAX_IN_FLIGHT`` at once per provider
record in this process. Worker threads do nothing but the provider call: no database
access, no journal, no breaker bookkeeping; the caller collects the outcomes in order.

The calling thread dispatches: it takes a slot of the record's limit for each call before
submitting it and gives the slot back only after the call has ended *and* its ``checkpoint``
(the send journal's write) has run. A slot is thus held from before a call's journal mark
to after its outcome is journaled, and a process never has more than the limit of calls
whose outcome is unjournaled — what bounds the repeats after a ``kill -9`` (providers/journal.py).

Threads rather than asyncio: the providers' SDKs (twilio, anymail, boto3, vonage) are
synchronous, the GIL is released while a thread waits on the network, and a pool keeps
each provider's own error mapping untouched.

Connections: each provider record gets one ``requests`` session (keep-alive pool sized to
the in-flight limit), reused by every send of the process instead of a new client (and a
new TLS handshake) per message.
"""
from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
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
                      checkpoint: Callable[[list[tuple[M, T | Exception]], list[M]], None] | None = None,
                      catch: tuple[type[Exception], ...] = (Exception,)) -> list[T | Exception]:
    """``send(message)`` for every message, at most ``max_in_flight()`` at once for ``key``.

    Results (or the caught exception) are in the order of ``messages``. ``checkpoint(answered,
    starting)`` runs in the calling thread, before the ``starting`` messages are submitted and
    before the slots of the ``answered`` ones (message, result) are reused or released: one
    call per wake-up, e.g. to journal both in one round trip.
    An exception outside ``catch`` is raised after every send has finished.
    """
    semaphore = _limit(key)
    pool = _pool()
    results: list[Any] = [None] * len(messages)
    unexpected: BaseException | None = None
    queued = deque(range(len(messages)))
    running: dict[Future[T], int] = {}
    answered: list[tuple[M, T | Exception]] = []
    held = 0  # slots taken by this call and not yet given back
    try:
        while queued or running or answered:
            # The slots of the calls that ended go to the next messages; more are taken while free.
            reuse = min(len(answered), len(queued))
            starting = [queued.popleft() for _ in range(reuse)]
            while queued and semaphore.acquire(blocking=not running and not starting):
                held += 1
                starting.append(queued.popleft())
            if checkpoint is not None and (answered or starting):
                checkpoint(answered, [messages[i] for i in starting])
            for _ in range(len(answered) - reuse):
                semaphore.release()
                held -= 1
            answered = []
            for index in starting:
                running[pool.submit(send, messages[index])] = index
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                index = running.pop(future)
                try:
                    result: T | Exception = future.result()
                except catch as exc:
                    result = exc
                except BaseException as exc:  # noqa: BLE001 - raised once all sends are done
                    unexpected = unexpected or exc
                    result = exc  # type: ignore[assignment]
                results[index] = result
                answered.append((messages[index], result))
    finally:
        if running:  # the checkpoint raised: let the calls end before their slots are given back
            wait(running)
        for _ in range(held):
            semaphore.release()
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
