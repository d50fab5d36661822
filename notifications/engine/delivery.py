"""Batched delivery: enqueue, claim, render, send, record.

Deliveries are created PENDING by intake/routing; this module moves them through
SENDING to SENT/DELIVERED (or back to PENDING with ``next_retry_at``, or FAILED).
"""
from __future__ import annotations

import logging
from collections.abc import Iterable

from django.db import transaction

logger = logging.getLogger(__name__)

BATCH_SIZE = 100


def _chunks(ids: list[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def deliveries_enqueue(*, delivery_ids: Iterable[int]) -> None:
    """Queue ``notifications.deliver_batch`` tasks of at most BATCH_SIZE ids, after commit.

    Safe to call inside or outside a transaction: ``on_commit`` runs at once when no
    transaction is open, and never if the surrounding transaction rolls back.
    """
    ids = sorted({int(pk) for pk in delivery_ids})
    if not ids:
        return

    def _publish() -> None:
        from notifications.tasks import deliver_batch_task

        for chunk in _chunks(ids, BATCH_SIZE):
            deliver_batch_task.delay(chunk)

    transaction.on_commit(_publish)
