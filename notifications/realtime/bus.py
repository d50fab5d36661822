"""The web tier's consumer of the in-app exchange (``notification.inapp.deliver``).

One thread per web process drains the durable queue with kombu (RabbitMQ, or the embedded
filesystem transport) and hands what arrived together to the process's event loop in one batch,
which pushes every item to its recipient's live connections through the channel layer. The message is acked only
after that push, or after finding its recipients offline (their inbox keeps the items, SENT);
a message taken by a process that dies before the ack is delivered again.
"""
from __future__ import annotations

import asyncio
import logging
import threading
from collections import defaultdict
from typing import Any

from channels.layers import get_channel_layer

from notifications.engine import realtime

from . import presence

logger = logging.getLogger(__name__)

PUSH_TIMEOUT_SECONDS = 10.0
BATCH_MESSAGES = 256  # messages pushed together (and the prefetch window)
# Channel layer sends in flight at once: each holds one of the layer's pooled Redis connections
# (CHANNEL_LAYERS max_connections), which the sockets' joins and the receive loop need too.
SEND_CONCURRENCY = 32


async def push_items(items: list[dict[str, Any]]) -> int:
    """Push a batch of bus items to their recipients' live connections; returns how many were pushed.

    One Redis round trip finds who is online anywhere; the group sends run concurrently."""
    by_user: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        try:
            by_user[int(item["user_id"])].append(item)
        except (KeyError, TypeError, ValueError):
            logger.warning("in-app bus: malformed item dropped")
    if not by_user:
        return 0
    online = await presence.live_user_ids(user_ids=list(by_user))
    layer = get_channel_layer()
    sends = [
        layer.group_send(realtime.user_group(user_id), {
            "type": "inbox.notification", "notification": item.get("notification") or {},
            "unread_count": item.get("unread_count", 0),
        })
        for user_id in online for item in by_user[user_id]
    ]
    for start in range(0, len(sends), SEND_CONCURRENCY):
        await asyncio.gather(*sends[start:start + SEND_CONCURRENCY])
    return len(sends)


class BusConsumer(threading.Thread):
    """Drains the queue in batches: whatever arrived together (up to BATCH_MESSAGES messages) is
    pushed by one call on the event loop, then acked; the loop is never blocked by the broker."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(name="inapp-bus-consumer", daemon=True)
        self.loop = loop
        self.stopping = threading.Event()
        self.batch: list[tuple[list, Any]] = []

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                with realtime.bus_connection(consumer=True) as conn:
                    conn.ensure_connection(max_retries=1)
                    with conn.Consumer([realtime.bus_queue()], callbacks=[self.on_message], accept=["json"],
                                       prefetch_count=BATCH_MESSAGES):
                        logger.info("in-app bus: consuming %s", realtime.bus_queue().name)
                        greedy = conn.transport.driver_type == "amqp"
                        while not self.stopping.is_set():
                            try:
                                conn.drain_events(timeout=1)
                            except TimeoutError:
                                conn.heartbeat_check()
                                continue
                            # Take what else is already here, without waiting for more (a polling
                            # transport — the embedded one — would sleep a poll interval instead).
                            while greedy and len(self.batch) < BATCH_MESSAGES:
                                try:
                                    conn.drain_events(timeout=0.001)
                                except TimeoutError:
                                    break
                            self.push_batch()
            except Exception:  # noqa: BLE001 - reconnect after a pause, whatever broke
                self.batch.clear()  # unacked: the broker delivers them again
                if self.stopping.is_set():
                    return
                logger.warning("in-app bus connection lost; reconnecting", exc_info=True)
                self.stopping.wait(2.0)

    def on_message(self, body, message) -> None:
        items = body.get("items") if isinstance(body, dict) else None
        if not isinstance(items, list):
            logger.warning("in-app bus: message without items dropped")
            message.ack()
            return
        self.batch.append((items, message))

    def push_batch(self) -> None:
        batch, self.batch = self.batch, []
        if not batch:
            return
        items = [item for message_items, _ in batch for item in message_items]
        future = asyncio.run_coroutine_threadsafe(push_items(items), self.loop)
        try:
            future.result(timeout=PUSH_TIMEOUT_SECONDS)
        except Exception:  # noqa: BLE001 - the channel layer failed: let the broker redeliver them
            logger.warning("in-app bus: push of %d messages failed; requeued", len(batch), exc_info=True)
            for _, message in batch:
                message.requeue()
            self.stopping.wait(0.5)
            return
        for _, message in batch:
            message.ack()


_consumer: BusConsumer | None = None


def start(loop: asyncio.AbstractEventLoop) -> None:
    global _consumer
    if _consumer is None or not _consumer.is_alive():
        _consumer = BusConsumer(loop)
        _consumer.start()


def stop() -> None:
    if _consumer is not None:
        _consumer.stop()
        _consumer.join(timeout=5)
