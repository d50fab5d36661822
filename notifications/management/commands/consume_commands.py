"""`manage.py consume_commands`: admin operations from other systems over AMQP (seed 004 §2.1).

Binds the durable queue settings.COMMAND_QUEUE to the topic exchange settings.COMMAND_EXCHANGE
(`notification.commands`); the routing key is the command name (`subscriber.upsert`,
`notification.cancel`, …, see notifications.engine.commands) and the JSON body carries
`organization_id`, a `command_id` (or the AMQP message_id) and the command's fields. Each
command runs through the same service as its REST twin, in one transaction, and is recorded
under its command id, so a redelivered command answers its first result instead of acting
twice. With `reply_to`, the answer `{"ok": true, "result": …}` or `{"ok": false, "error": …}`
goes there with the message's `correlation_id` — after the commit, before the ack.

Bad commands (not JSON, unknown name, invalid fields, another organization's objects) go to
settings.COMMAND_DLQ (`notification.dlq`) with their reason, as consume_events does (see
notifications.bus for the guarantees both consumers share).
"""
from __future__ import annotations

import json
import logging
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from kombu import Connection

from notifications.bus import BusConsumer, bus_connection, consumer_run

logger = logging.getLogger("notifications.consumer")


class CommandConsumer(BusConsumer):
    kind = "command"

    def __init__(self, connection: Connection, *, prefetch: int = 10) -> None:
        super().__init__(connection, exchange=settings.COMMAND_EXCHANGE, queue=settings.COMMAND_QUEUE,
                         dlq=settings.COMMAND_DLQ, prefetch=prefetch)
        self.replies = 0

    def handle(self, *, message, body: Any, routing_key: str) -> None:
        from notifications.engine.commands import command_execute

        headers = message.headers or {}
        message_id = message.properties.get("message_id") or headers.get("message_id")
        outcome = command_execute(name=routing_key, body=body, message_id=message_id)
        logger.info("command %s %s done%s (organization %s)", routing_key, outcome.command_id,
                    " (already done: first answer replayed)" if outcome.replayed else "", outcome.organization_id)
        self._reply(message, {"ok": True, "command": routing_key, "command_id": outcome.command_id,
                              "replayed": outcome.replayed, "result": outcome.result})

    def on_dead_letter(self, *, message, reason: str, error: Any, body: Any) -> None:
        answer: dict[str, Any] = {"ok": False, "reason": reason, "error": _error_text(error)}
        if isinstance(error, (dict, list)):
            answer["errors"] = error
        self._reply(message, answer)

    def _reply(self, message, answer: dict[str, Any]) -> None:
        reply_to = message.properties.get("reply_to")
        if not reply_to:
            return
        self.producer.publish(
            json.dumps(answer, default=str),
            exchange="",
            routing_key=reply_to,
            correlation_id=message.properties.get("correlation_id"),
            content_type="application/json",
            content_encoding="utf-8",
            retry=True,
        )
        self.replies += 1


def _error_text(error: Any) -> str:
    if isinstance(error, str):
        return error
    if isinstance(error, dict):
        parts = []
        for key, value in error.items():
            text = "; ".join(map(str, value)) if isinstance(value, list) else _error_text(value)
            parts.append(text if key in ("detail", "non_field_errors") else f"{key}: {text}")
        return " ".join(parts)
    if isinstance(error, list):
        return "; ".join(map(str, error))
    return str(error)


class Command(BaseCommand):
    help = "Consume admin commands (subscribers, cancel, acknowledge, retry, replay, preferences) from notification.commands."

    def add_arguments(self, parser):
        parser.add_argument("--prefetch", type=int, default=10)

    def handle(self, *args, **options):
        consumer_run(CommandConsumer(bus_connection(), prefetch=options["prefetch"]), name="consume_commands", stdout=self.stdout)
