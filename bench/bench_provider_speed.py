"""Benchmark: one event to 2,000 users over SMS, through a Twilio record pointing at a loopback
server that speaks the Messages API and answers after 100 ms.

    .venv/bin/python bench/bench_provider_speed.py        (or `make bench BENCH_ARGS=provider_speed`)

Two Celery worker processes (prefork, one child each) consume the delivery queue; inside a
batch the SMS go out concurrently (PROVIDER_MAX_IN_FLIGHT per provider record and process).
BENCH_SMS_RECIPIENTS, BENCH_SMS_LATENCY_MS, BENCH_SMS_WORKERS change the scenario.

Prints deliveries/s from the trigger until every delivery is SENT, p50/p95 trigger -> SENT,
and the most requests the loopback server had in flight at once.
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import bench_fanout as common  # noqa: E402

RECIPIENTS = int(os.environ.get("BENCH_SMS_RECIPIENTS", "2000"))
LATENCY = float(os.environ.get("BENCH_SMS_LATENCY_MS", "100")) / 1000
TIMEOUT = float(os.environ.get("BENCH_SMS_TIMEOUT", "600"))
SID = "AC" + "b" * 32


class _TwilioPeer:
    """Answers POST …/Messages.json like Twilio, after LATENCY; counts requests in flight."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.in_flight = self.max_in_flight = self.count = 0
        peer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # noqa: ANN002
                pass

            def do_POST(self) -> None:  # noqa: N802
                form = parse_qs(self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode())
                with peer.lock:
                    peer.in_flight += 1
                    peer.max_in_flight = max(peer.max_in_flight, peer.in_flight)
                    peer.count += 1
                    n = peer.count
                time.sleep(LATENCY)
                body = json.dumps({"sid": f"SM{n:032d}", "account_sid": SID, "to": form.get("To", [""])[0],
                                   "status": "queued", "num_segments": "1", "price": None, "price_unit": "USD"}).encode()
                with peer.lock:
                    peer.in_flight -= 1
                self.send_response(201)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        ThreadingHTTPServer.request_queue_size = 256
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


def main() -> dict[str, float]:
    from cryptography.fernet import Fernet

    os.environ.setdefault("FIELD_ENCRYPTION_KEYS", Fernet.generate_key().decode())
    os.environ["TWILIO_ACCOUNT_SID"], os.environ["TWILIO_AUTH_TOKEN"] = SID, "bench-token"
    database_url = common._bench_database_url()
    common._ensure_database(database_url)
    common._setup_django(database_url)
    if not os.environ.get("CELERY_BROKER_URL", "").startswith("amqp"):
        raise RuntimeError("bench_provider_speed needs RabbitMQ: set CELERY_BROKER_URL=amqp://...")

    from django.conf import settings
    from django.db import transaction

    from accounts.models import User
    from notifications.engine.intake import event_emit
    from notifications.enums import DELIVERY_SUCCESS_STATUSES, Channel
    from notifications.models import NotificationDelivery
    from providers.models import NotificationProvider

    peer = _TwilioPeer()
    peer.thread.start()
    print(f"provider speed: {RECIPIENTS} SMS through loopback Twilio at {LATENCY * 1000:.0f} ms, "
          f"{common.WORKERS} worker processes, PROVIDER_MAX_IN_FLIGHT={settings.PROVIDER_MAX_IN_FLIGHT}", flush=True)
    common._cleanup_previous_runs()
    NotificationProvider.objects.filter(channel=Channel.SMS, organization__isnull=True).update(is_active=False)
    NotificationProvider.objects.update_or_create(
        organization=None, code="twilio_sms",
        defaults={"channel": Channel.SMS, "name": "Bench Twilio", "is_active": True, "priority": 0,
                  "config": {"base_url": peer.url, "from_number": "+14155550111"},
                  "secret_env_refs": {"account_sid": "TWILIO_ACCOUNT_SID", "auth_token": "TWILIO_AUTH_TOKEN"},
                  "rate_limit_per_minute": None, "daily_limit": None},
    )
    organization, users = common._create_recipients(RECIPIENTS)
    for i, user in enumerate(users):
        user.phone = f"+1415{5550000 + i:07d}"
    User.objects.bulk_update(users, ["phone"], batch_size=2000)
    common._purge_delivery_queue()
    log_dir = Path(settings.VAR_DIR)
    log_dir.mkdir(parents=True, exist_ok=True)
    workers = common._start_workers(database_url, log_dir)
    try:
        started = time.perf_counter()
        with transaction.atomic():
            result = event_emit(
                organization=organization, type="task.assigned", recipient_ids=[u.pk for u in users],
                channels=[Channel.SMS], actor={"type": "system", "id": "bench"},
                resource={"type": "task", "id": "BENCH-SMS", "name": "Benchmark task"},
                data={"taskTitle": "Benchmark task", "projectName": "Provider speed"},
            )
        expected = NotificationDelivery.objects.filter(notification__event_id=result.event_id, channel=Channel.SMS).count()
        print(f"{expected} SMS deliveries committed in {time.perf_counter() - started:.2f}s", flush=True)
        if not expected:
            raise RuntimeError("no SMS delivery was created")
        while True:
            done = NotificationDelivery.objects.filter(
                notification__event_id=result.event_id, status__in=list(DELIVERY_SUCCESS_STATUSES)
            ).count()
            if done >= expected:
                break
            if time.perf_counter() - started > TIMEOUT:
                raise RuntimeError(f"only {done}/{expected} SMS sent after {TIMEOUT:.0f}s")
            time.sleep(0.25)
        finished = time.perf_counter()
        p50, p95, worst = common._latency_percentiles(result.event_id)
        rate = expected / (finished - started)
        print(f"all {expected} SMS sent {finished - started:.2f}s after the trigger -> {rate:,.0f} deliveries/s; "
              f"requests to the peer: {peer.count}, at most {peer.max_in_flight} in flight", flush=True)
        print(f"trigger -> sent latency: p50 {p50:.2f}s, p95 {p95:.2f}s, max {worst:.2f}s", flush=True)
        for _proc, log_path in workers:
            log_path.unlink(missing_ok=True)
        return {"deliveries": float(expected), "deliveries_per_second": rate, "p50_seconds": p50, "p95_seconds": p95,
                "max_in_flight": float(peer.max_in_flight)}
    finally:
        common._stop_workers(workers)
        peer.server.shutdown()


if __name__ == "__main__":
    main()
