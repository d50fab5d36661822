"""`GET /metrics`: the processes' counters (common.metrics) and gauges read at scrape time from
RabbitMQ, Redis and PostgreSQL aggregates, so every web process answers the same numbers."""
from __future__ import annotations

import hmac
import logging
from collections.abc import Iterable, Iterator
from datetime import timedelta

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from prometheus_client import generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from accounts.selectors import user_is_platform_admin
from common.metrics import CIRCUIT_VALUES, CONTENT_TYPE, metrics_registry

logger = logging.getLogger(__name__)


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
        from providers.models import NotificationProvider
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


def _allowed(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    # Counts across every organization: a platform administrator's, not any staff member's.
    if user is not None and user_is_platform_admin(user):
        return True
    token = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer "):
        return hmac.compare_digest(header[len("Bearer "):].strip().encode(), token.encode())
    return False


def metrics_view(request: HttpRequest) -> HttpResponse:
    """GET /metrics — Prometheus text format; a platform administrator or `Authorization: Bearer <METRICS_TOKEN>`."""
    if not _allowed(request):
        response = JsonResponse({"detail": "Staff session or metrics bearer token required."}, status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    return HttpResponse(generate_latest(metrics_registry(SystemCollector())), content_type=CONTENT_TYPE)
