"""Prometheus metrics: what the processes count, and what `/metrics` reads at scrape time.

Counters and histograms are incremented where things happen (the provider failover loop, the
intake) in whichever process does it: web, Celery worker or event consumer. With
`PROMETHEUS_MULTIPROC_DIR` set (the same directory for every process of a host, emptied at
start), prometheus-client keeps them in memory-mapped files and `/metrics` adds up all
processes; without it, `/metrics` shows the serving process only.

Gauges that describe the system rather than one process (queue depths, circuit states, dead
letters, recent deliveries by status) are computed at scrape time from RabbitMQ, Redis and
PostgreSQL aggregates, so every web process answers the same numbers.
"""
from __future__ import annotations

import hmac
import logging
import os
import re
import socket
from collections.abc import Iterable, Iterator, Sequence
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import values as _values
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

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
    from common.exceptions import ProviderTransientError
    from providers.base import SendResult

    counts = {"sent": 0, "transient_error": 0, "permanent_error": 0}
    for outcome in outcomes:
        if isinstance(outcome, SendResult):
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


# --- scrape-time gauges --------------------------------------------------------------------------


def _queue_depths() -> Iterator[tuple[str, int]]:
    from kombu import Connection

    from common.queues import Queue

    url = settings.CELERY_BROKER_URL
    if not url.startswith(("amqp", "pyamqp")):
        return
    names = [q.value for q in Queue] + [settings.EVENT_QUEUE, settings.EVENT_DLQ]
    with Connection(url, connect_timeout=2) as conn:
        channel = conn.channel()
        for name in names:
            try:
                _, count, _ = channel.queue_declare(queue=name, passive=True)
            except Exception:  # not declared yet: the channel is closed by the broker, reopen it
                channel = conn.channel()
                continue
            yield name, int(count)


class SystemCollector:
    """Gauges read from the broker, the cache and the database when /metrics is scraped."""

    def collect(self) -> Iterable[Metric]:
        yield from self._guarded(self._queues)
        yield from self._guarded(self._circuits)
        yield from self._guarded(self._database)

    @staticmethod
    def _guarded(source) -> Iterable[Metric]:
        try:
            yield from list(source())
        except Exception as exc:  # one unreachable component leaves the other metrics intact
            logger.warning("metrics source %s failed: %s", source.__name__, exc.__class__.__name__)

    @staticmethod
    def _queues() -> Iterable[Metric]:
        gauge = GaugeMetricFamily("troubadour_queue_depth", "Messages waiting in a broker queue.", labels=["queue"])
        for name, count in _queue_depths():
            gauge.add_metric([name], count)
        yield gauge

    @staticmethod
    def _circuits() -> Iterable[Metric]:
        from notifications.models import NotificationProvider
        from providers.resilience import CircuitBreaker, CircuitPolicy
        from providers.selectors import binding_for_record

        gauge = GaugeMetricFamily(
            "troubadour_provider_circuit_state",
            "Circuit breaker of a provider: 0 closed, 1 half-open (probing), 2 open.",
            labels=["provider_id", "provider", "channel"],
        )
        health = GaugeMetricFamily(
            "troubadour_provider_healthy", "Last health check of a provider: 1 healthy or degraded, 0 not.",
            labels=["provider_id", "provider", "channel", "health"],
        )
        for record in NotificationProvider.objects.filter(is_active=True).order_by("pk"):
            binding = binding_for_record(record)
            state = CircuitBreaker(binding.key, CircuitPolicy.for_config(binding.config)).state()
            labels = [str(record.pk), record.code, record.channel]
            gauge.add_metric(labels, CIRCUIT_VALUES.get(state, 0))
            health.add_metric([*labels, record.health_status], 0 if record.health_status == "UNHEALTHY" else 1)
        yield gauge
        yield health

    @staticmethod
    def _database() -> Iterable[Metric]:
        from django.db.models import Count
        from django.utils import timezone

        from notifications.enums import DeliveryStatus
        from notifications.models import DeadLetter, NotificationDelivery

        recent = GaugeMetricFamily(
            "troubadour_deliveries_last_24h", "Deliveries created in the last 24 hours, by channel, provider and status.",
            labels=["channel", "provider", "status"],
        )
        since = timezone.now() - timedelta(hours=24)
        rows = (NotificationDelivery.objects.filter(created_at__gte=since)
                .values_list("channel", "provider", "status").annotate(n=Count("pk")).order_by())
        for channel, provider, status, n in rows:
            recent.add_metric([channel, provider or "", status], n)
        yield recent

        backlog = GaugeMetricFamily(
            "troubadour_deliveries_waiting", "Deliveries waiting to go out: pending, sending, held by quiet hours.",
            labels=["channel", "status"],
        )
        waiting = (DeliveryStatus.PENDING, DeliveryStatus.SENDING, DeliveryStatus.HELD)
        for channel, status, n in (NotificationDelivery.objects.filter(status__in=waiting)
                                   .values_list("channel", "status").annotate(n=Count("pk")).order_by()):
            backlog.add_metric([channel, status], n)
        yield backlog

        dead = GaugeMetricFamily("troubadour_dead_letters", "Dead letters by channel and status.",
                                 labels=["channel", "status"])
        for channel, status, n in DeadLetter.objects.values_list("channel", "status").annotate(n=Count("pk")).order_by():
            dead.add_metric([channel or "", status], n)
        yield dead


class _ThisProcess:
    """The serving process's own metrics (single-process mode)."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


def metrics_registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    path = getattr(settings, "PROMETHEUS_MULTIPROC_DIR", "")
    if path:
        MultiProcessCollector(registry, path=path)
    else:
        registry.register(_ThisProcess())
    registry.register(SystemCollector())
    return registry


def _allowed(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.is_staff:
        return True
    token = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer "):
        return hmac.compare_digest(header[len("Bearer "):].strip().encode(), token.encode())
    return False


def metrics_view(request: HttpRequest) -> HttpResponse:
    """GET /metrics — Prometheus text format; platform staff or `Authorization: Bearer <METRICS_TOKEN>`."""
    if not _allowed(request):
        response = JsonResponse({"detail": "Staff session or metrics bearer token required."}, status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    return HttpResponse(generate_latest(metrics_registry()), content_type=CONTENT_TYPE)
