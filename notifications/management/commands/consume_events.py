"""`manage.py consume_events`: the AMQP event consumer.

Binds the durable queue settings.EVENT_QUEUE to the topic exchange settings.EVENT_EXCHANGE
with `#`, and turns each message into notifications through the same normalization,
validation and `event_emit` as `POST /api/v1/events/`.

Delivery guarantees:
- a message is acked only after its transaction committed (at-least-once); the AMQP
  message id, when present, is used as an idempotency key so a redelivery after a crash
  between commit and ack creates nothing twice;
- a message that fails validation, or fails MAX_ATTEMPTS times, is published to the
  durable queue settings.EVENT_DLQ with its reason (header `x-death-reason` and a JSON
  envelope holding the original body and the error) and then acked: never lost, never
  looping. Transient failures are retried by re-publishing a copy with an attempt
  counter header straight to our queue (not the exchange, so other subscribers don't
  see it twice).
"""
from __future__ import annotations

import json
import logging
import signal
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections
from django.utils import timezone
from kombu import Connection, Exchange, Queue
from kombu.mixins import ConsumerProducerMixin

from common.exceptions import TroubadourError

logger = logging.getLogger("notifications.consumer")

MAX_ATTEMPTS = 3
ATTEMPT_HEADER = "x-attempts"
REASON_HEADER = "x-death-reason"


def bus_connection() -> Connection:
    """The event bus connection: EVENT_BUS_URL, else the (embedded) Celery broker."""
    url = settings.EVENT_BUS_URL
    if url:
        options = {"confirm_publish": True} if url.startswith("amqp") else {}
        return Connection(url, transport_options=options, heartbeat=30)
    return Connection(settings.CELERY_BROKER_URL, transport_options=dict(getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {})))


def bus_topology() -> tuple[Exchange, Queue, Queue]:
    exchange = Exchange(settings.EVENT_EXCHANGE, type="topic", durable=True)
    queue = Queue(settings.EVENT_QUEUE, exchange=exchange, routing_key="#", durable=True)
    # Bound to the default exchange under its own name: anyone can inspect or replay it.
    dlq = Queue(settings.EVENT_DLQ, exchange=Exchange("", type="direct"), routing_key=settings.EVENT_DLQ, durable=True)
    return exchange, queue, dlq


def _decode(message) -> Any:
    body = message.body
    if isinstance(body, (bytes, bytearray, memoryview)):
        body = bytes(body).decode("utf-8")
    return json.loads(body)


def _raw_text(message) -> str:
    body = message.body
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body).decode("utf-8", errors="replace")
    return str(body)


class EventConsumer(ConsumerProducerMixin):
    def __init__(self, connection: Connection, *, prefetch: int = 10, stdout=None) -> None:
        self.connection = connection
        self.prefetch = prefetch
        self.exchange, self.queue, self.dlq = bus_topology()
        self.processed = 0
        self.dead_lettered = 0
        self.stdout = stdout

    def get_consumers(self, Consumer, channel):
        # on_message gets the raw message: we decode JSON ourselves, so no other
        # serializer (pickle!) can ever be selected by a publisher's content type.
        return [Consumer(queues=[self.queue], on_message=self.on_message, prefetch_count=self.prefetch, accept=["json"])]

    def on_consume_ready(self, connection, channel, consumers, **kwargs):
        self.dlq.bind(channel).declare()
        logger.info("consuming %s (exchange %s, dead letters to %s)", self.queue.name, self.exchange.name, self.dlq.name)

    # -- message handling --------------------------------------------------------
    def on_message(self, message) -> None:
        headers = dict(message.headers or {})
        attempts = int(headers.get(ATTEMPT_HEADER) or 0) + 1
        if message.delivery_info.get("redelivered"):
            # We crashed (or lost the connection) while handling it before: count that.
            attempts = max(attempts, 2)
        # A retried copy travels to our queue directly: its event type is in the header.
        routing_key = headers.get("x-original-routing-key") or message.delivery_info.get("routing_key") or ""
        close_old_connections()
        body: Any = None
        try:
            try:
                body = _decode(message)
            except (ValueError, UnicodeDecodeError) as exc:
                self._dead_letter(message, reason="invalid_json", error=str(exc), attempts=attempts)
                return
            from notifications.engine.intake import event_from_bus

            message_id = message.properties.get("message_id") or headers.get("message_id")
            result = event_from_bus(body=body, routing_key=routing_key, message_id=message_id)
        except TroubadourError as exc:
            # Validation, permission, unknown organization: retrying changes nothing.
            self._dead_letter(message, reason=exc.__class__.__name__.lower(), error=exc.detail, attempts=attempts, body=body)
            return
        except Exception as exc:
            logger.exception("event %s failed (attempt %s)", routing_key, attempts)
            if attempts >= MAX_ATTEMPTS:
                self._dead_letter(message, reason="max_attempts", error=f"{exc.__class__.__name__}: {exc}", attempts=attempts, body=body)
            else:
                self._retry(message, attempts=attempts)
            return
        finally:
            close_old_connections()
        message.ack()
        self.processed += 1
        logger.info("event %s accepted: %s notification(s) (event %s)", routing_key, len(result.notifications), result.event_id)

    def _retry(self, message, *, attempts: int) -> None:
        time.sleep(min(0.2 * attempts, 2.0))
        headers = dict(message.headers or {})
        headers[ATTEMPT_HEADER] = attempts
        headers.setdefault("x-original-routing-key", message.delivery_info.get("routing_key") or "")
        self.producer.publish(
            message.body,
            exchange="",
            routing_key=self.queue.name,
            headers=headers,
            content_type=message.content_type,
            content_encoding=message.content_encoding,
            message_id=message.properties.get("message_id"),
            delivery_mode=2,
            retry=True,
        )
        message.ack()

    def _dead_letter(self, message, *, reason: str, error: Any, attempts: int, body: Any = None) -> None:
        routing_key = (message.headers or {}).get("x-original-routing-key") or message.delivery_info.get("routing_key") or ""
        envelope = {
            "reason": reason,
            "error": error,
            "routing_key": routing_key,
            "attempts": attempts,
            "failed_at": timezone.now().isoformat(),
            "original_body": body if body is not None else _raw_text(message),
            "original_headers": {k: v for k, v in (message.headers or {}).items() if isinstance(v, (str, int, float, bool))},
            "message_id": message.properties.get("message_id"),
        }
        self.producer.publish(
            json.dumps(envelope, default=str),
            exchange="",
            routing_key=self.dlq.name,
            declare=[self.dlq],
            headers={REASON_HEADER: reason, "x-original-routing-key": routing_key, ATTEMPT_HEADER: attempts},
            content_type="application/json",
            content_encoding="utf-8",
            delivery_mode=2,
            retry=True,
        )
        message.ack()
        self.dead_lettered += 1
        logger.warning("event %s dead-lettered to %s: %s", routing_key, self.dlq.name, reason)


class Command(BaseCommand):
    help = "Consume notification events from the AMQP exchange and turn them into notifications."

    def add_arguments(self, parser):
        parser.add_argument("--prefetch", type=int, default=10)

    def handle(self, *args, **options):
        consumer = EventConsumer(bus_connection(), prefetch=options["prefetch"])

        def stop(signum, _frame):
            logger.info("signal %s: finishing the current message and stopping", signum)
            consumer.should_stop = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        if not settings.EVENT_BUS_URL:
            self.stdout.write("No EVENT_BUS_URL: consuming from the embedded broker.")
        try:
            consumer.run()
        finally:
            consumer.connection.release()
        self.stdout.write(f"consume_events stopped ({consumer.processed} processed, {consumer.dead_lettered} dead-lettered).")
