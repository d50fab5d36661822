"""The send journal: a record, written the moment a provider accepts a message, of what it sent.

Delivery rows are recorded in PostgreSQL once per batch (one short transaction), so a worker
killed mid-batch leaves rows SENDING whose messages may already have gone out. Before
sending, the delivery engine looks its claimed rows up here and records the journaled ones
as sent instead of sending them again. The window for a duplicate thus shrinks from the
whole batch to the one call in flight when the process died.

Keys are the messages' idempotency keys (the delivery id) under the database's name: two
databases sharing one Redis (a staging and a test run, two developers) never read each
other's entries for the same delivery id. The journal lives in the shared
cache (Redis in production) and is best effort: if the cache is unreachable a send still
counts, and the worst case is the at-least-once behaviour the sweeper already guarantees.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from django.core.cache import cache

from common.exceptions import ProviderPermanentError, ProviderTransientError

from .base import BaseProvider, OutboundMessage, SendResult

logger = logging.getLogger(__name__)

JOURNAL_TTL_SECONDS = 2 * 24 * 3600


def _prefix() -> str:
    """``sendjournal:<database name>:`` — a delivery id is unique only within its database."""
    from django.db import connection

    return f"sendjournal:{connection.settings_dict.get('NAME') or ''}:"


def _entry(provider_code: str, result: SendResult) -> dict[str, Any]:
    return {
        "provider": provider_code,
        "provider_message_id": result.provider_message_id or "",
        "status": result.status,
        "cost_amount": None if result.cost_amount is None else str(result.cost_amount),
        "cost_currency": result.cost_currency or "",
    }


def journal_record(*, provider_code: str, messages: Sequence[OutboundMessage], results: Sequence[Any]) -> None:
    prefix = _prefix()
    entries = {
        f"{prefix}{m.idempotency_key}": _entry(provider_code, r)
        for m, r in zip(messages, results)
        if m.idempotency_key and isinstance(r, SendResult)
    }
    if not entries:
        return
    try:
        cache.set_many(entries, timeout=JOURNAL_TTL_SECONDS)
    except Exception:  # noqa: BLE001 - the journal must never turn a sent message into a failure
        logger.warning("send journal unavailable; %d sent message(s) not journaled", len(entries))


def journal_lookup(*, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
    """{idempotency key: journal entry} for the keys whose message was already accepted."""
    prefix = _prefix()
    wanted = [f"{prefix}{k}" for k in keys if k]
    if not wanted:
        return {}
    try:
        found = cache.get_many(wanted)
    except Exception:  # noqa: BLE001
        logger.warning("send journal unavailable; sending without the duplicate check")
        return {}
    return {key.removeprefix(prefix): value for key, value in found.items()}


def journal_forget(*, keys: Iterable[str]) -> None:
    """Drop the entries of messages that are to be sent again on purpose (an operator's retry
    of a bounced delivery, a dead-letter replay): the journal must not answer for them."""
    wanted = [f"{_prefix()}{k}" for k in keys if k]
    if not wanted:
        return
    try:
        cache.delete_many(wanted)
    except Exception:  # noqa: BLE001
        logger.warning("send journal unavailable; %d entries not cleared", len(wanted))


def send_journaled(provider: BaseProvider, messages: list[OutboundMessage]) -> list[SendResult | Exception]:
    """`provider.send_batch`, journaling each accepted message as soon as the provider accepts it.

    Providers without a native batch call are driven one message at a time here, so each
    message is journaled right after its own call returns.
    """
    if type(provider).send_batch is BaseProvider.send_batch and provider.concurrent_sends and len(messages) > 1:
        from .concurrency import send_concurrently

        def journal_group(answered: list[tuple[OutboundMessage, Any]]) -> None:
            journal_record(provider_code=provider.code, messages=[m for m, _ in answered], results=[r for _, r in answered])

        # Many requests in flight, bounded per provider record; accepted messages are journaled
        # (in this thread, one round trip per group) as soon as their answers come in.
        return send_concurrently(("send", provider.code, provider.record_id or id(provider)), provider.send, messages,
                                 on_results=journal_group, catch=(ProviderTransientError, ProviderPermanentError))
    if type(provider).send_batch is BaseProvider.send_batch:
        results: list[SendResult | Exception] = []
        for message in messages:
            try:
                result = provider.send(message)
            except (ProviderTransientError, ProviderPermanentError) as exc:
                results.append(exc)
                continue
            journal_record(provider_code=provider.code, messages=[message], results=[result])
            results.append(result)
        return results
    results = provider.send_batch(messages)
    journal_record(provider_code=provider.code, messages=messages, results=results)
    return results
