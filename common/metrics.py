"""Prometheus metrics: what the processes count, and what `/metrics` reads at scrape time.

Counters and histograms are incremented where things happen (the provider failover loop, the
intake) in whichever process does it: web, Celery worker or event consumer. With
`PROMETHEUS_MULTIPROC_DIR` set (the same directory for every process of a host, emptied at
start), prometheus-client keeps them in memory-mapped files and `/metrics` adds up all
processes; without it, `/metrics` shows the serving process only.

Gauges that describe the system rather than one process (queue depths, circuit states, dead
letters, recent deliveries by status) are computed at scrape time by notifications.metrics,
which also serves `/metrics`.
"""
from __future__ import annotations

import logging
import os
import re
import socket
from collections.abc import Iterable, Sequence
from typing import Any

from django.conf import settings
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client import values as _values
from prometheus_client.core import Metric
from prometheus_client.multiprocess import MultiProcessCollector

from common.exceptions import ProviderTransientError

logger = logging.getLogger(__name__)
send_logger = logging.getLogger("providers.send")

if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # Files are named after the process: host and pid, so containers sharing one volume (each
    # with its own pid 1, 7, ...) never write into the same file.
    _host = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname())[:60]
    _values.ValueClass = _values.MultiProcessValue(process_identifier=lambda: f"{_host}-{os.getpid()}")

DELIVERIES = Counter(
    "troubadour_deliveries",
    "Messages handed to a provider, by channel, provider and outcome (sent, transient_error, permanent_error).",
    ["channel", "provider", "status"],
)
SEND_SECONDS = Histogram(
    "troubadour_provider_send_seconds",
    "Duration of one provider call (a batch of messages), by channel and provider.",
    ["channel", "provider"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
EVENTS = Counter("troubadour_events", "Events accepted by the intake, by source (api, amqp, webhook, python).", ["source"])
EVENT_NOTIFICATIONS = Counter(
    "troubadour_event_notifications", "Notifications created by accepted events, by source.", ["source"]
)

# The text exposition format every Prometheus version reads (what generate_latest writes).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
CIRCUIT_VALUES = {"closed": 0, "half_open": 1, "open": 2}


def record_provider_call(*, channel: str, provider: str, seconds: float, outcomes: Sequence[Any]) -> None:
    """One provider call of the failover loop: its duration and each message's outcome."""
    counts = {"sent": 0, "transient_error": 0, "permanent_error": 0}
    for outcome in outcomes:  # a SendResult, or the provider error that stood for one
        if not isinstance(outcome, Exception):
            counts["sent"] += 1
        elif isinstance(outcome, ProviderTransientError):
            counts["transient_error"] += 1
        else:
            counts["permanent_error"] += 1
    try:
        SEND_SECONDS.labels(channel, provider).observe(seconds)
        for status, n in counts.items():
            if n:
                DELIVERIES.labels(channel, provider, status).inc(n)
    except Exception:  # metrics never break a delivery
        logger.exception("could not record provider metrics")
    send_logger.info(
        "%s via %s: %d sent, %d transient error(s), %d permanent error(s) in %d ms",
        channel, provider, counts["sent"], counts["transient_error"], counts["permanent_error"], seconds * 1000,
        extra={"channel": channel, "provider": provider, "duration_ms": round(seconds * 1000, 1), **counts},
    )


def record_event(*, source: str, notifications: int) -> None:
    try:
        EVENTS.labels(source).inc()
        EVENT_NOTIFICATIONS.labels(source).inc(notifications)
    except Exception:
        logger.exception("could not record intake metrics")


class _ThisProcess:
    """The serving process's own metrics (single-process mode)."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


def metrics_registry(*collectors: Any) -> CollectorRegistry:
    """Every process's counters (or this process's, without a multiprocess directory), plus
    the given scrape-time collectors."""
    registry = CollectorRegistry(auto_describe=False)
    path = getattr(settings, "PROMETHEUS_MULTIPROC_DIR", "")
    if path:
        MultiProcessCollector(registry, path=path)
    else:
        registry.register(_ThisProcess())
    for collector in collectors:
        registry.register(collector)
    return registry
