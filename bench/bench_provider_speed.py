"""Benchmark: deliveries at provider speed — one event to many users over SMS and over email,
through a Twilio record and a SendGrid record pointing at loopback servers that speak those
APIs (Messages.json; v3 mail/send with personalizations) and answer after 100 ms, then the
same at 0 ms (the platform's own ceiling).

    .venv/bin/python bench/bench_provider_speed.py        (or `make bench BENCH_ARGS=provider_speed`)

Two Celery worker processes (prefork, one child each) consume the delivery queues. Each
scenario prints deliveries/s from the trigger until every delivery is SENT, p50/p95 trigger ->
SENT, and what the loopback server saw (requests, most in flight, recipients per request).
During the 100 ms email run, once its deliveries are queued, a second organization triggers
one email a second; its trigger -> SENT latency is the fairness figure (bench/fairness_probe.py).

Isolation: the benchmark uses its own database (troubadour_bench, or BENCH_DATABASE_URL), and
refuses Redis db 0 and the RabbitMQ vhost "/" (BENCH_REDIS_URL / BENCH_BROKER_URL, else
REDIS_URL / CELERY_BROKER_URL, must name others), so it never shares state with a suite.
BENCH_SMS_RECIPIENTS (2000), BENCH_EMAIL_RECIPIENTS (10000), BENCH_LATENCIES_MS ("100,0").
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import bench_fanout as common  # noqa: E402

SMS_RECIPIENTS = int(os.environ.get("BENCH_SMS_RECIPIENTS", "2000"))
EMAIL_RECIPIENTS = int(os.environ.get("BENCH_EMAIL_RECIPIENTS", "10000"))
LATENCIES_MS = [float(v) for v in os.environ.get("BENCH_LATENCIES_MS", "100,0").split(",") if v.strip()]
TIMEOUT = float(os.environ.get("BENCH_PROVIDER_TIMEOUT", "900"))
TARGETS = {"SMS": 500.0, "EMAIL": 2000.0}  # deliveries/s at 100 ms (issue 11)
SID = "AC" + "b" * 32


class LoopbackProviders:
    """One server answering Twilio's Messages API and SendGrid's v3 mail/send after `latency`
    seconds; it counts requests, requests in flight and recipients per request."""

    def __init__(self) -> None:
        self.latency = 0.1
        self.lock = threading.Lock()
        self.reset()
        peer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # noqa: ANN002
                pass

            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with peer.lock:
                    peer.in_flight += 1
                    peer.max_in_flight = max(peer.max_in_flight, peer.in_flight)
                    peer.requests += 1
                    n = peer.requests
                if peer.latency:
                    time.sleep(peer.latency)
                if self.path.endswith("/Messages.json"):
                    form = parse_qs(raw.decode())
                    status, headers = 201, {"Content-Type": "application/json"}
                    body = json.dumps({"sid": f"SM{n:032d}", "account_sid": SID, "to": form.get("To", [""])[0],
                                       "status": "queued", "num_segments": "1", "price": None, "price_unit": "USD"}).encode()
                    recipients = 1
                elif self.path.endswith("/mail/send"):
                    payload = json.loads(raw or b"{}")
                    recipients = sum(len(p.get("to", [])) for p in payload.get("personalizations", []))
                    status, headers, body = 202, {"X-Message-Id": f"bench{n:016d}"}, b""
                else:
                    status, headers, body, recipients = 404, {}, b"", 0
                with peer.lock:
                    peer.in_flight -= 1
                    peer.recipients += recipients
                    peer.largest = max(peer.largest, recipients)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        ThreadingHTTPServer.request_queue_size = 512
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def reset(self) -> None:
        with self.lock:
            self.in_flight = self.max_in_flight = self.requests = self.recipients = self.largest = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


def _isolated_services() -> None:
    """Point this process and its workers at the bench's own Redis db and RabbitMQ vhost."""
    redis_url = os.environ.get("BENCH_REDIS_URL") or os.environ.get("REDIS_URL", "")
    broker_url = os.environ.get("BENCH_BROKER_URL") or os.environ.get("CELERY_BROKER_URL", "")
    if not broker_url.startswith("amqp"):
        raise RuntimeError("bench_provider_speed needs RabbitMQ: set CELERY_BROKER_URL (or BENCH_BROKER_URL)=amqp://...")
    vhost = urlparse(broker_url).path.lstrip("/")
    if vhost in ("", "/"):
        raise RuntimeError("bench_provider_speed refuses the default RabbitMQ vhost '/': set BENCH_BROKER_URL to a vhost of its own")
    if not redis_url or urlparse(redis_url).path.strip("/") in ("", "0"):
        raise RuntimeError("bench_provider_speed refuses Redis db 0: set BENCH_REDIS_URL (or REDIS_URL) to another db")
    os.environ["REDIS_URL"], os.environ["CELERY_BROKER_URL"] = redis_url, broker_url


def _purge_queues() -> None:
    from kombu import Exchange, Queue

    from common.queues import Queue as Queues
    from config.celery import app

    with app.connection_for_write() as conn:
        for name in (Queues.DELIVERY.value, Queues.DELIVERY_BULK.value):
            queue = Queue(name, Exchange(name, type="direct"), routing_key=name)(conn.default_channel)
            queue.declare()
            queue.purge()


def _providers(url: str) -> None:
    from notifications.enums import Channel
    from providers.models import NotificationProvider

    NotificationProvider.objects.filter(channel__in=[Channel.SMS, Channel.EMAIL], organization__isnull=True).update(is_active=False)
    common_fields = {"is_active": True, "priority": 0, "rate_limit_per_minute": None, "daily_limit": None}
    NotificationProvider.objects.update_or_create(
        organization=None, code="twilio_sms",
        defaults={"channel": Channel.SMS, "name": "Bench Twilio", "config": {"base_url": url, "from_number": "+14155550111"},
                  "secret_env_refs": {"account_sid": "TWILIO_ACCOUNT_SID", "auth_token": "TWILIO_AUTH_TOKEN"}, **common_fields},
    )
    NotificationProvider.objects.update_or_create(
        organization=None, code="sendgrid",
        defaults={"channel": Channel.EMAIL, "name": "Bench SendGrid",
                  "config": {"api_url": f"{url}/v3/", "from_email": "bench@bench.example"},
                  "secret_env_refs": {"api_key": "SENDGRID_API_KEY"}, **common_fields},
    )


def _drain(*, organization, users, channel: str, peer: LoopbackProviders, probe_channel: str | None = None) -> dict[str, float]:
    from django.db import transaction

    from notifications.engine.intake import event_emit
    from notifications.enums import DELIVERY_SUCCESS_STATUSES
    from notifications.models import NotificationDelivery

    peer.reset()
    probe = None
    started = time.perf_counter()
    with transaction.atomic():
        result = event_emit(
            organization=organization, type="task.assigned", recipient_ids=[u.pk for u in users], channels=[channel],
            actor={"type": "system", "id": "bench"}, resource={"type": "task", "id": f"BENCH-{channel}", "name": "Benchmark task"},
            data={"taskTitle": "Benchmark task", "projectName": "Provider speed"},
        )
    committed = time.perf_counter() - started
    if probe_channel:
        from bench.fairness_probe import OtherOrganizationProbe

        # From the moment A's deliveries are queued: B's wait is what the drain costs it.
        probe = OtherOrganizationProbe(channel=probe_channel, interval=1.0).start()
    rows = NotificationDelivery.objects.filter(notification__event_id=result.event_id, channel=channel)
    expected = rows.count()
    if not expected:
        raise RuntimeError(f"no {channel} delivery was created")
    while (done := rows.filter(status__in=list(DELIVERY_SUCCESS_STATUSES)).count()) < expected:
        if time.perf_counter() - started > TIMEOUT:
            raise RuntimeError(f"only {done}/{expected} {channel} sent after {TIMEOUT:.0f}s")
        time.sleep(0.2)
    elapsed = time.perf_counter() - started
    p50, p95, worst = common._latency_percentiles(result.event_id)
    figures = {"deliveries": float(expected), "emit_seconds": committed, "all_sent_seconds": elapsed,
               "deliveries_per_second": expected / elapsed, "p50_seconds": p50, "p95_seconds": p95, "max_seconds": worst,
               "requests": float(peer.requests), "max_in_flight": float(peer.max_in_flight),
               "largest_request_recipients": float(peer.largest)}
    if probe is not None:
        b = probe.stop()
        figures.update({f"other_org_{k}": v for k, v in b.items()})
    return figures


def main() -> dict[str, dict[str, float]]:
    from cryptography.fernet import Fernet

    _isolated_services()
    os.environ.setdefault("FIELD_ENCRYPTION_KEYS", Fernet.generate_key().decode())
    os.environ["TWILIO_ACCOUNT_SID"], os.environ["TWILIO_AUTH_TOKEN"] = SID, "bench-token"
    os.environ["SENDGRID_API_KEY"] = "SG.bench-key"
    allow = set(filter(None, os.environ.get("PROVIDER_SECRET_ENV_ALLOWLIST", "").split(",")))
    os.environ["PROVIDER_SECRET_ENV_ALLOWLIST"] = ",".join(sorted(allow | {"TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "SENDGRID_API_KEY"}))
    database_url = common._bench_database_url()
    common._ensure_database(database_url)
    common._setup_django(database_url)

    from django.conf import settings

    from accounts.models import User
    from notifications.enums import Channel

    peer = LoopbackProviders()
    peer.thread.start()
    count = max(SMS_RECIPIENTS, EMAIL_RECIPIENTS)
    print(f"provider speed: {SMS_RECIPIENTS} SMS (Twilio) and {EMAIL_RECIPIENTS} emails (SendGrid) through loopback "
          f"servers at {', '.join(f'{v:.0f}' for v in LATENCIES_MS)} ms; {common.WORKERS} worker processes, "
          f"PROVIDER_MAX_IN_FLIGHT={settings.PROVIDER_MAX_IN_FLIGHT}, redis={settings.REDIS_URL}, "
          f"broker vhost={urlparse(settings.CELERY_BROKER_URL).path}", flush=True)
    common._cleanup_previous_runs()
    _providers(peer.url)
    organization, users = common._create_recipients(count)
    for i, user in enumerate(users):
        user.phone = f"+1415{5550000 + i:07d}"
    User.objects.bulk_update(users, ["phone"], batch_size=2000)
    _purge_queues()
    log_dir = Path(settings.VAR_DIR)
    log_dir.mkdir(parents=True, exist_ok=True)
    worker_env = {"PROVIDER_SECRET_ENV_ALLOWLIST": os.environ["PROVIDER_SECRET_ENV_ALLOWLIST"]}
    os.environ.update(worker_env)
    workers = common._start_workers(database_url, log_dir)
    results: dict[str, dict[str, float]] = {}
    try:
        for latency_ms in LATENCIES_MS:
            peer.latency = latency_ms / 1000
            for channel, recipients in ((Channel.SMS, SMS_RECIPIENTS), (Channel.EMAIL, EMAIL_RECIPIENTS)):
                probe = Channel.EMAIL if channel == Channel.EMAIL and latency_ms == LATENCIES_MS[0] else None
                figures = _drain(organization=organization, users=users[:recipients], channel=channel, peer=peer,
                                 probe_channel=probe)
                name = f"{channel.lower()}@{latency_ms:.0f}ms"
                results[name] = figures
                target = f" (target >= {TARGETS[channel]:,.0f}/s)" if latency_ms == 100 else ""
                print(f"{name}: {figures['deliveries']:.0f} sent in {figures['all_sent_seconds']:.2f}s -> "
                      f"{figures['deliveries_per_second']:,.0f} deliveries/s{target}; trigger -> SENT p50 "
                      f"{figures['p50_seconds']:.2f}s, p95 {figures['p95_seconds']:.2f}s, max {figures['max_seconds']:.2f}s; "
                      f"intake {figures['emit_seconds']:.2f}s; {figures['requests']:.0f} requests, at most "
                      f"{figures['max_in_flight']:.0f} in flight, up to {figures['largest_request_recipients']:.0f} "
                      f"recipients per request", flush=True)
                if "other_org_count" in figures:
                    print(f"  meanwhile another organization's single emails ({figures['other_org_count']:.0f}): trigger -> "
                          f"SENT p50 {figures['other_org_p50_seconds']:.2f}s, p95 {figures['other_org_p95_seconds']:.2f}s, "
                          f"max {figures['other_org_max_seconds']:.2f}s", flush=True)
        for _proc, log_path in workers:
            log_path.unlink(missing_ok=True)  # kept only when the run failed
        return results
    finally:
        common._stop_workers(workers)
        peer.server.shutdown()


if __name__ == "__main__":
    main()
