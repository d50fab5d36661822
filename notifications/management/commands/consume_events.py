"""`manage.py consume_events`: the AMQP event consumer.

Binds the durable queue settings.EVENT_QUEUE to the topic exchange settings.EVENT_EXCHANGE
with `#`, and turns each message into notifications through the same normalization,
validation and `event_emit` as `POST /api/v1/events/`.

Delivery guarantees are notifications.bus's (ack after commit, dead letters with their
reason to settings.EVENT_DLQ, bounded retries); the AMQP message id, when present, is used as
an idempotency key so a redelivery after a crash between commit and ack creates nothing twice.
"""
from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from kombu import Connection, Exchange, Queue

from notifications.bus import (  # noqa: F401 - re-exported for callers of the event consumer
    ATTEMPT_HEADER,
    MAX_ATTEMPTS,
    REASON_HEADER,
    BusConsumer,
    bus_connection,
    consumer_run,
    topology,
)

logger = logging.getLogger("notifications.consumer")


def bus_topology() -> tuple[Exchange, Queue, Queue]:
    return topology(exchange=settings.EVENT_EXCHANGE, queue=settings.EVENT_QUEUE, dlq=settings.EVENT_DLQ)


class EventConsumer(BusConsumer):
    kind = "event"

    def __init__(self, connection: Connection, *, prefetch: int = 10, stdout=None) -> None:
        super().__init__(connection, exchange=settings.EVENT_EXCHANGE, queue=settings.EVENT_QUEUE, dlq=settings.EVENT_DLQ,
                         prefetch=prefetch)
        self.stdout = stdout

    def handle(self, *, message, body: Any, routing_key: str) -> None:
        from notifications.engine.payloads import event_from_bus

        headers = message.headers or {}
        message_id = message.properties.get("message_id") or headers.get("message_id")
        result = event_from_bus(body=body, routing_key=routing_key, message_id=message_id)
        logger.info("event %s accepted: %s notification(s) (event %s)", routing_key, len(result.notifications), result.event_id)


class Command(BaseCommand):
    help = "Consume notification events from the AMQP exchange and turn them into notifications."

    def add_arguments(self, parser):
        parser.add_argument("--prefetch", type=int, default=10)

    def handle(self, *args, **options):
        consumer_run(EventConsumer(bus_connection(), prefetch=options["prefetch"]), name="consume_events", stdout=self.stdout)
