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

Each call is bracketed: before it starts, its messages are marked in flight (``state:
in_flight``, with the sending process's pid); when it ends, the mark is replaced by the accepted
entry, or by ``state: failed`` if the call raised or the provider refused. Both writes happen
while the call holds its slot of the provider's in-flight limit (providers/concurrency.py), so
the messages of a process that may have reached the provider without a journal entry are the
ones still marked in flight — at most ``PROVIDER_MAX_IN_FLIGHT`` per provider record, or the
one batch of a native batch call. A worker killed with ``kill -9`` can therefore have a message
sent twice only if it is marked in flight; any other claimed message is either journaled as
accepted (recorded, not resent) or never left. Neither Meta's nor Twilio's send API takes an
idempotency key, so the marked messages themselves are resent (at least once, as before).
"""
from __future__ import annotations

import logging
import os
import time
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


IN_FLIGHT = "in_flight"
ACCEPTED = "accepted"
FAILED = "failed"


def _entry(provider_code: str, result: SendResult) -> dict[str, Any]:
    return {
        "state": ACCEPTED,
        "provider": provider_code,
        "provider_message_id": result.provider_message_id or "",
        "status": result.status,
        "cost_amount": None if result.cost_amount is None else str(result.cost_amount),
        "cost_currency": result.cost_currency or "",
    }


def _write(entries: dict[str, dict[str, Any]], what: str) -> None:
    if not entries:
        return
    try:
        cache.set_many(entries, timeout=JOURNAL_TTL_SECONDS)
    except Exception:  # noqa: BLE001 - the journal must never turn a sent message into a failure
        logger.warning("send journal unavailable; %d %s not journaled", len(entries), what)


def _checkpoint_entries(prefix: str, provider_code: str, answered: Iterable[tuple[OutboundMessage, Any]],
                        starting: Iterable[OutboundMessage]) -> dict[str, dict[str, Any]]:
    entries: dict[str, dict[str, Any]] = {}
    for message, result in answered:
        if message.idempotency_key:
            entries[f"{prefix}{message.idempotency_key}"] = (
                _entry(provider_code, result) if isinstance(result, SendResult)
                else {"state": FAILED, "provider": provider_code}
            )
    mark = {"state": IN_FLIGHT, "provider": provider_code, "pid": os.getpid(), "since": round(time.time(), 3)}
    for message in starting:
        if message.idempotency_key:
            entries[f"{prefix}{message.idempotency_key}"] = mark
    return entries


def journal_record(*, provider_code: str, messages: Sequence[OutboundMessage], results: Sequence[Any]) -> None:
    """Journal the accepted messages among ``messages`` (results that are not a SendResult are skipped)."""
    prefix = _prefix()
    entries = {
        f"{prefix}{m.idempotency_key}": _entry(provider_code, r)
        for m, r in zip(messages, results)
        if m.idempotency_key and isinstance(r, SendResult)
    }
    _write(entries, "sent message(s)")


def _entries(keys: Iterable[str]) -> dict[str, dict[str, Any]]:
    prefix = _prefix()
    wanted = [f"{prefix}{k}" for k in keys if k]
    if not wanted:
        return {}
    try:
        found = cache.get_many(wanted)
    except Exception:  # noqa: BLE001
        logger.warning("send journal unavailable; sending without the duplicate check")
        return {}
    return {key.removeprefix(prefix): value for key, value in found.items() if isinstance(value, dict)}


def journal_lookup(*, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
    """{idempotency key: journal entry} for the keys whose message was already accepted."""
    # Entries written before calls were marked in flight have no state: they are accepted ones.
    return {key: value for key, value in _entries(keys).items() if value.get("state", ACCEPTED) == ACCEPTED}


def journal_in_flight(*, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
    """{idempotency key: mark} for the keys whose last call started and never ended in the journal
    (its process died during the call): the only messages a resend may duplicate."""
    return {key: value for key, value in _entries(keys).items() if value.get("state") == IN_FLIGHT}


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
    """`provider.send_batch`, each call bracketed in the journal (see the module docstring).

    Providers without a native batch call are driven one message at a time here: concurrently
    (``concurrent_sends``) within the provider record's in-flight limit, each slot held until
    its call's end is journaled; otherwise one after another, each call's end journaled in the
    same write as the next call's mark.
    """
    prefix = _prefix()
    code = provider.code

    def checkpoint(answered: list[tuple[OutboundMessage, Any]], starting: list[OutboundMessage]) -> None:
        _write(_checkpoint_entries(prefix, code, answered, starting), "message(s)")

    if type(provider).send_batch is BaseProvider.send_batch and provider.concurrent_sends and len(messages) > 1:
        from .concurrency import send_concurrently

        # Many requests in flight, bounded per provider record; the journal writes happen in
        # this thread, one round trip per group of calls that ended and started.
        return send_concurrently(("send", code, provider.record_id or id(provider)), provider.send, messages,
                                 checkpoint=checkpoint, catch=(ProviderTransientError, ProviderPermanentError))
    if type(provider).send_batch is BaseProvider.send_batch:
        results: list[SendResult | Exception] = []
        ended: list[tuple[OutboundMessage, Any]] = []
        try:
            for message in messages:
                checkpoint(ended, [message])
                try:
                    result: SendResult | Exception = provider.send(message)
                except (ProviderTransientError, ProviderPermanentError) as exc:
                    result = exc
                ended = [(message, result)]
                results.append(result)
        except BaseException as exc:
            ended = [(messages[len(results)], exc)]
            raise
        finally:
            checkpoint(ended, [])
        return results
    checkpoint([], messages)
    try:
        batch_results = provider.send_batch(messages)
    except BaseException as exc:
        checkpoint([(m, exc) for m in messages], [])
        raise
    checkpoint(list(zip(messages, batch_results)), [])
    return batch_results
