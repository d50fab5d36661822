"""Database calls from the event loop (sockets, streams, the ack writer).

``database_sync_to_async`` alone runs every call of a process on ONE shared thread (Channels
consumers have no per-request thread context): 2,000 sockets connecting would queue their
token, presence and unread-count reads behind each other. These run on a small pool of threads
instead, each call borrowing a pooled database connection and giving it back when done.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

from channels.db import database_sync_to_async

THREADS = int(os.environ.get("REALTIME_DB_THREADS", "4"))

_executor = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="realtime-db")


def db_async(func):
    """``func`` as a coroutine function run on the realtime tier's database threads."""
    return database_sync_to_async(func, thread_sensitive=False, executor=_executor)
