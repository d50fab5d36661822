"""Fair sharing of the delivery workers between organizations.

Every ``deliver_batch`` task goes to one of two queues that every delivery worker consumes:

- ``delivery``: the default, for an organization's ordinary traffic;
- ``delivery_bulk``: for an organization that has enqueued more than
  ``DELIVERY_FAIR_BURST`` deliveries within the last ``DELIVERY_FAIR_WINDOW_SECONDS``
  (a 100,000-recipient event, a loop of campaign sends).

A worker subscribed to both queues holds at most one message of each (prefetch 1 per
consumer) and RabbitMQ hands it the next one from whichever queue has it, so a single
notification of organization B waits behind at most the bulk batch being sent, however
many of organization A's batches are queued. HIGH and CRITICAL notifications always take
the ordinary queue, so an organization's own incident page never waits behind its campaign.

The per-organization counts live in the shared cache (Redis), counted by every process, in
fixed windows; if the cache is unreachable everything takes the ordinary queue.
"""
from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.cache import cache

from common.queues import Queue

logger = logging.getLogger(__name__)

URGENT = frozenset({"HIGH", "CRITICAL"})


def _window() -> int:
    return max(1, int(getattr(settings, "DELIVERY_FAIR_WINDOW_SECONDS", 30)))


def _burst() -> int:
    return max(1, int(getattr(settings, "DELIVERY_FAIR_BURST", 1000)))


def _key(organization_id: int | None, window_start: int) -> str:
    from django.db import connection

    return f"fair:{connection.settings_dict.get('NAME') or ''}:{organization_id or 0}:{window_start}"


def organization_volume_add(organization_id: int | None, count: int) -> int:
    """Count ``count`` more deliveries for the organization in this window; returns its total."""
    window = _window()
    key = _key(organization_id, int(time.time() // window) * window)
    try:
        cache.add(key, 0, window * 2)
        return int(cache.incr(key, count))
    except Exception:  # noqa: BLE001 - fairness must never stop a delivery from being queued
        logger.warning("fair-share counters unavailable; queueing on the ordinary delivery queue")
        return 0


def delivery_queue_for(*, organization_id: int | None, volume: int, criticality: str = "") -> str:
    """The queue for a batch of an organization whose window total is ``volume``."""
    if criticality in URGENT or volume <= _burst():
        return Queue.DELIVERY.value
    return Queue.DELIVERY_BULK.value
