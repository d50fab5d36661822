"""Database calls from the event loop (sockets, streams, the ack writer).

``database_sync_to_async`` alone runs every call of a process on ONE shared thread (Channels
consumers have no per-request thread context): 2,000 sockets connecting would queue their
token, presence and unread-count reads behind each other. These run on a small pool of threads
instead, each call borrowing a pooled database connection and giving it back when done.

``REALTIME_DB_THREADS = 0`` runs the calls on the caller's own thread and connection, left open:
a request served inside the caller's process and open transaction (Django's test client) must
see that transaction's rows, which a connection of another thread cannot.
"""
from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.conf import settings

_executors: dict[int, ThreadPoolExecutor] = {}


def _executor(threads: int) -> ThreadPoolExecutor:
    if threads not in _executors:
        _executors[threads] = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="realtime-db")
    return _executors[threads]


def db_async(func):
    """``func`` as a coroutine function run on the realtime tier's database threads."""
    in_caller = sync_to_async(func)

    @functools.wraps(func)
    def call(*args, **kwargs):
        threads = settings.REALTIME_DB_THREADS
        if threads <= 0:
            return in_caller(*args, **kwargs)
        return database_sync_to_async(func, thread_sensitive=False, executor=_executor(threads))(*args, **kwargs)

    return call
