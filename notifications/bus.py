"""The AMQP side shared by `manage.py consume_events` and `manage.py consume_commands`.

A `BusConsumer` binds one durable queue to one topic exchange with `#` and hands each
message to `handle()`. What it guarantees, whatever the subclass does:
- a message is acked only after `handle()` returned, i.e. after its transaction committed
  (at-least-once); handlers make a redelivery harmless with the message's id;
- a message that fails validation (a TroubadourError: retrying changes nothing), is not JSON,
  or fails MAX_ATTEMPTS times, is published to the durable dead-letter queue with its reason
  (header `x-death-reason` and a JSON envelope holding the original body and the error) and
  then acked: never lost, never looping. Transient failures are retried by re-publishing a
  copy with an attempt counter header straight to our queue (not the exchange, so other
  subscribers don't see it twice).
"""
from __future__ import annotations

import json
import logging
import signal
import time
from typing import Any

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone
from kombu import Connection, Exchange, Queue
from kombu.mixins import ConsumerProducerMixin

from common.exceptions import RateLimited, TroubadourError
from common.jsondoc import json_decode
from common.logging import log_context

logger = logging.getLogger("notifications.consumer")

MAX_ATTEMPTS = 3
ATTEMPT_HEADER = "x-attempts"
REASON_HEADER = "x-death-reason"
ORIGINAL_KEY_HEADER = "x-original-routing-key"


def bus_connection() -> Connection:
    """The bus connection: EVENT_BUS_URL, else the (embedded) Celery broker."""
    url = settings.EVENT_BUS_URL
    if url:
        options = {"confirm_publish": True} if url.startswith("amqp") else {}
        return Connection(url, transport_options=options, heartbeat=30)
    return Connection(settings.CELERY_BROKER_URL, transport_options=dict(getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {})))


def topology(*, exchange: str, queue: str, dlq: str) -> tuple[Exchange, Queue, Queue]:
    topic = Exchange(exchange, type="topic", durable=True)
    main = Queue(queue, exchange=topic, routing_key="#", durable=True)
    # Bound to the default exchange under its own name: anyone can inspect or replay it.
    dead = Queue(dlq, exchange=Exchange("", type="direct"), routing_key=dlq, durable=True)
    return topic, main, dead


def decode(message) -> Any:
    body = message.body
    if isinstance(body, (bytes, bytearray, memoryview)):
        body = bytes(body).decode("utf-8")
    # Too deep, NUL, lone surrogates, NaN: refused here as invalid JSON (dead-lettered at once).
    return json_decode(body)


def raw_text(message) -> str:
    body = message.body
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body).decode("utf-8", errors="replace")
    return str(body)


def routing_key_of(message) -> str:
    # A retried copy travels to our queue directly: the original routing key is in a header.
    return (message.headers or {}).get(ORIGINAL_KEY_HEADER) or message.delivery_info.get("routing_key") or ""


class BusConsumer(ConsumerProducerMixin):
    """One queue on one topic exchange; subclasses implement `handle` (and may hook failures)."""

    kind = "message"

    def __init__(self, connection: Connection, *, exchange: str, queue: str, dlq: str, prefetch: int = 10) -> None:
        self.connection = connection
        self.prefetch = prefetch
        self.exchange, self.queue, self.dlq = topology(exchange=exchange, queue=queue, dlq=dlq)
        self.processed = 0
        self.dead_lettered = 0

    def get_consumers(self, Consumer, channel):
        # on_message gets the raw message: we decode JSON ourselves, so no other
        # serializer (pickle!) can ever be selected by a publisher's content type.
        return [Consumer(queues=[self.queue], on_message=self.on_message, prefetch_count=self.prefetch, accept=["json"])]

    def on_consume_ready(self, connection, channel, consumers, **kwargs):
        self.dlq.bind(channel).declare()
        logger.info("consuming %s (exchange %s, dead letters to %s)", self.queue.name, self.exchange.name, self.dlq.name)

    # -- what subclasses provide -----------------------------------------------------------
    def handle(self, *, message, body: Any, routing_key: str) -> Any:
        """Process one decoded message in its own transaction; raise TroubadourError for bad input."""
        raise NotImplementedError

    def on_dead_letter(self, *, message, reason: str, error: Any, body: Any) -> None:
        """Called once a message went to the dead-letter queue (before it is acked)."""

    # -- message handling --------------------------------------------------------------------
    def on_message(self, message) -> None:
        # Every log line about this message, and the tasks it queues, carry its ids.
        properties = message.properties or {}
        with log_context(request_id=properties.get("message_id") or "", correlation_id=properties.get("correlation_id") or ""):
            self._handle(message)

    def _handle(self, message) -> None:
        headers = dict(message.headers or {})
        attempts = int(headers.get(ATTEMPT_HEADER) or 0) + 1
        if message.delivery_info.get("redelivered"):
            # We crashed (or lost the connection) while handling it before: count that.
            attempts = max(attempts, 2)
        routing_key = routing_key_of(message)
        close_old_connections()
        body: Any = None
        try:
            try:
                body = decode(message)
            except (ValueError, UnicodeDecodeError) as exc:
                self._dead_letter(message, reason="invalid_json", error=str(exc), attempts=attempts)
                return
            self.handle(message=message, body=body, routing_key=routing_key)
        except RateLimited as exc:
            # The organization is over its event rate. Dead-lettered with the wait rather than
            # held or requeued: that would stall every other organization's messages behind it.
            self._dead_letter(message, reason="rate_limited", error=exc.detail, attempts=attempts, body=body,
                              retry_after=exc.retry_after)
            return
        except TroubadourError as exc:
            # Validation, permission, unknown organization: retrying changes nothing.
            self._dead_letter(message, reason=exc.__class__.__name__.lower(), error=exc.detail, attempts=attempts, body=body)
            return
        except Exception as exc:
            logger.exception("%s %s failed (attempt %s)", self.kind, routing_key, attempts)
            if attempts >= MAX_ATTEMPTS:
                self._dead_letter(message, reason="max_attempts", error=f"{exc.__class__.__name__}: {exc}", attempts=attempts, body=body)
            else:
                self._retry(message, attempts=attempts)
            return
        finally:
            close_old_connections()
        message.ack()
        self.processed += 1

    def _retry(self, message, *, attempts: int) -> None:
        time.sleep(min(0.2 * attempts, 2.0))
        headers = dict(message.headers or {})
        headers[ATTEMPT_HEADER] = attempts
        headers.setdefault(ORIGINAL_KEY_HEADER, message.delivery_info.get("routing_key") or "")
        properties = {k: message.properties[k] for k in ("message_id", "reply_to", "correlation_id") if message.properties.get(k)}
        self.producer.publish(
            message.body,
            exchange="",
            routing_key=self.queue.name,
            headers=headers,
            content_type=message.content_type,
            content_encoding=message.content_encoding,
            delivery_mode=2,
            retry=True,
            **properties,
        )
        message.ack()

    def _dead_letter(self, message, *, reason: str, error: Any, attempts: int, body: Any = None,
                     retry_after: int | None = None) -> None:
        routing_key = routing_key_of(message)
        envelope = {
            "reason": reason,
            "error": error,
            "routing_key": routing_key,
            "attempts": attempts,
            "failed_at": timezone.now().isoformat(),
            "original_body": body if body is not None else raw_text(message),
            "original_headers": {k: v for k, v in (message.headers or {}).items() if isinstance(v, (str, int, float, bool))},
            "message_id": message.properties.get("message_id"),
        }
        if retry_after is not None:
            envelope["retry_after"] = retry_after
        self.producer.publish(
            json.dumps(envelope, default=str),
            exchange="",
            routing_key=self.dlq.name,
            declare=[self.dlq],
            headers={REASON_HEADER: reason, ORIGINAL_KEY_HEADER: routing_key, ATTEMPT_HEADER: attempts},
            content_type="application/json",
            content_encoding="utf-8",
            delivery_mode=2,
            retry=True,
        )
        try:
            self.on_dead_letter(message=message, reason=reason, error=error, body=body)
        except Exception:  # noqa: BLE001 - the letter is safe in the DLQ; a failed hook must not redeliver it
            logger.exception("%s %s: after dead-lettering", self.kind, routing_key)
        message.ack()
        self.dead_lettered += 1
        logger.warning("%s %s dead-lettered to %s: %s", self.kind, routing_key, self.dlq.name, reason)


def consumer_run(consumer: BusConsumer, *, name: str, stdout) -> None:
    """Run until SIGTERM/SIGINT, finishing the message in hand; report the counts."""

    def stop(signum, _frame):
        logger.info("signal %s: finishing the current message and stopping", signum)
        consumer.should_stop = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if not settings.EVENT_BUS_URL:
        stdout.write("No EVENT_BUS_URL: consuming from the embedded broker.")
    try:
        consumer.run()
    finally:
        consumer.connection.release()
    stdout.write(f"{name} stopped ({consumer.processed} processed, {consumer.dead_lettered} dead-lettered).")
