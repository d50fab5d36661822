"""Acknowledgements from this process's sockets, written in batches.

An ``ack`` frame only adds its ids to the process's pending set; a flusher writes everything
pending every ACK_FLUSH_SECONDS in ONE transaction (``inapp_mark_delivered_many``). However many
sockets ack, and however often, the database sees at most one write per flush interval per web
process, bounded in size (ACK_MAX_PER_USER ids per user, ACK_MAX_PENDING in all): acks beyond
that are dropped and the deliveries stay SENT until acknowledged again.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable


from notifications.engine import realtime
from notifications.realtime.db import db_async

logger = logging.getLogger(__name__)

ACK_FLUSH_SECONDS = 0.1
ACK_MAX_PENDING = 20_000

_pending: dict[int, set[int]] = {}
_pending_count = 0
_flusher: asyncio.Task | None = None


def ack(*, user_id: int, notification_ids: Iterable[int]) -> int:
    """Queue the user's acknowledgement of these notifications; returns how many were kept."""
    global _pending_count
    ids = _pending.setdefault(user_id, set())
    kept = 0
    for nid in notification_ids:
        if _pending_count >= ACK_MAX_PENDING or len(ids) >= realtime.ACK_MAX_PER_USER:
            break
        if nid not in ids:
            ids.add(nid)
            _pending_count += 1
            kept += 1
    if not ids:
        _pending.pop(user_id, None)
    _ensure_flusher()
    return kept


def pending_count() -> int:
    return _pending_count


def _ensure_flusher() -> None:
    global _flusher
    loop = asyncio.get_running_loop()
    if _pending and (_flusher is None or _flusher.done() or _flusher.get_loop() is not loop):
        _flusher = loop.create_task(_flush_while_pending())


async def _flush_while_pending() -> None:
    while _pending:
        await asyncio.sleep(ACK_FLUSH_SECONDS)
        await flush()


async def flush() -> dict[int, list[int]]:
    """Write every pending acknowledgement now (also used on shutdown and by tests)."""
    global _pending, _pending_count
    if not _pending:
        return {}
    batch, _pending, _pending_count = _pending, {}, 0
    try:
        return await db_async(realtime.inapp_mark_delivered_many)(acks=batch)
    except Exception:  # noqa: BLE001 - the deliveries stay SENT; the client may ack again
        logger.warning("in-app acks of %d users not recorded", len(batch), exc_info=True)
        return {}
