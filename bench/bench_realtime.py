"""Benchmark: the realtime tier — WebSocket connections held by one web process, and the
latency from an event's REST answer to the frame on the recipient's socket.

    .venv/bin/python bench/bench_realtime.py        (or `make bench BENCH_ARGS=realtime`)

PostgreSQL (troubadour_bench), RabbitMQ (CELERY_BROKER_URL) and Redis (REDIS_URL) are required.
Starts the production web tier command (`make serve`) with ONE process that holds the sockets,
a Celery worker, opens BENCH_RT_CONNECTIONS sockets (one user each, Token auth), then POSTs
BENCH_RT_RATE events/s for BENCH_RT_SECONDS, each to one connected user on IN_APP, and records
when the frame arrives (the client acks every frame, as the inbox page does).

The REST trigger goes to a second `make serve` process (BENCH_RT_API=separate, the default), as
a deployment scales its API apart from the processes holding sockets: both consume the in-app
exchange and share the Redis channel layer. BENCH_RT_API=same posts to the socket process itself.
BENCH_RT_TRIGGER=bus measures the web tier alone: items published straight to the exchange (as
intake hands them over after commit), latency from the broker's confirm to the frame.

Prints connections held by the one process (and its memory), p50/p95/max latency from the
trigger's answer to the frame, and frames missing.
"""
from __future__ import annotations

import asyncio
import json
import os
import random
import resource
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_fanout import _bench_database_url, _ensure_database, _setup_django, _worker_env  # noqa: E402

CONNECTIONS = int(os.environ.get("BENCH_RT_CONNECTIONS", "2000"))
RATE = float(os.environ.get("BENCH_RT_RATE", "50"))
SECONDS = float(os.environ.get("BENCH_RT_SECONDS", "20"))
PORT = int(os.environ.get("BENCH_RT_PORT", "0"))
API = os.environ.get("BENCH_RT_API", "separate")
TRIGGER = os.environ.get("BENCH_RT_TRIGGER", "rest")  # "bus": publish to the exchange directly (web tier only)
PREFIX = "bench-rt-"


def _free_port() -> int:
    if PORT:
        return PORT
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _raise_file_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(hard, max(soft, CONNECTIONS * 2 + 1024))
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return wanted


def _setup_users(count: int):
    from django.contrib.auth.hashers import make_password
    from rest_framework.authtoken.models import Token

    from accounts.models import Membership, MembershipRole, Organization, User
    from accounts.services import api_key_create

    Organization.objects.filter(slug__startswith=PREFIX).delete()
    User.objects.filter(username__startswith=PREFIX).delete()
    tag = uuid.uuid4().hex[:8]
    # Unlimited event intake for this organization (0): the benchmark sets its own rate.
    organization = Organization.objects.create(name="Realtime benchmark", slug=f"{PREFIX}{tag}",
                                               events_per_minute=0)
    password = make_password(None)
    users = User.objects.bulk_create(
        [User(username=f"{PREFIX}{tag}-{i}", email=f"{PREFIX}{tag}-{i}@bench.example", password=password)
         for i in range(count)], batch_size=2000,
    )
    Membership.objects.bulk_create(
        [Membership(user=u, organization=organization, role=MembershipRole.MEMBER) for u in users], batch_size=2000
    )
    tokens = Token.objects.bulk_create([Token(user=u, key=Token.generate_key()) for u in users], batch_size=2000)
    _, api_key = api_key_create(organization=organization, name="bench")
    return [(u.pk, t.key) for u, t in zip(users, tokens)], api_key


def _start(cmd: list[str], env: dict[str, str], log_path: Path, ready: str, timeout: float = 120) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log_path.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.monotonic() + timeout
    while ready not in log_path.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            _stop(proc)
            raise RuntimeError(f"{cmd[0]} did not start:\n{log_path.read_text(errors='replace')[-3000:]}")
        time.sleep(0.2)
    return proc


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def _run(port: int, api_port: int, users: list[tuple[int, str]], api_key: str) -> dict[str, float]:
    import aiohttp
    import websockets

    arrivals: dict[int, float] = {}
    sockets = []
    readers = []

    async def reader(conn) -> None:
        try:
            async for raw in conn:
                frame = json.loads(raw)
                if frame.get("type") == "notification":
                    arrivals[frame["notification"]["id"]] = time.perf_counter()
                    await conn.send(json.dumps({"type": "ack", "id": frame["notification"]["id"]}))
        except websockets.ConnectionClosed:
            pass

    async def connect(token: str):
        conn = await websockets.connect(f"ws://127.0.0.1:{port}/ws/notifications/", open_timeout=120,
                                        additional_headers={"Authorization": f"Token {token}"}, ping_interval=None)
        await conn.recv()  # the initial unread count
        return conn

    started = time.perf_counter()
    for start in range(0, len(users), 100):
        sockets += await asyncio.gather(*(connect(token) for _, token in users[start:start + 100]))
    opened = time.perf_counter() - started
    readers = [asyncio.create_task(reader(conn)) for conn in sockets]
    print(f"{len(sockets)} sockets open in {opened:.1f}s", flush=True)

    answers: dict[int, float] = {}
    answer_times: list[float] = []
    lags: list[float] = []

    async def client_lag() -> None:
        # How late this client's own loop runs: a frame's arrival is stamped no earlier than that.
        while True:
            at = time.perf_counter()
            await asyncio.sleep(0.05)
            lags.append(time.perf_counter() - at - 0.05)

    lag_task = asyncio.create_task(client_lag())
    statuses: dict[int, int] = {}
    failures = 0
    total = int(RATE * SECONDS)
    async with aiohttp.ClientSession(headers={"Authorization": f"Api-Key {api_key}"}) as session:
        async def trigger(user_id: int) -> None:
            nonlocal failures
            sent = time.perf_counter()
            async with session.post(f"http://127.0.0.1:{api_port}/api/v1/events/", json={
                "type": "task.assigned", "recipient_ids": [str(user_id)], "channels": ["IN_APP"],
                "data": {"taskTitle": "Benchmark"},
            }) as response:
                body = await response.json()
                if response.status not in (201, 202):
                    failures += 1
                    statuses[response.status] = statuses.get(response.status, 0) + 1
                    return
                answers[body["notifications"][0]["id"]] = time.perf_counter()
                answer_times.append(time.perf_counter() - sent)

        published = iter(range(10**9, 2 * 10**9))

        async def publish(user_id: int) -> None:
            # The web tier alone: an item straight onto the exchange, as intake hands it over.
            from notifications.engine.realtime import inapp_publish

            nid = next(published)
            await asyncio.to_thread(inapp_publish, items=[{"user_id": user_id, "delivery_id": None, "unread_count": 1,
                                                            "notification": {"id": nid, "title": "Benchmark"}}])
            answers[nid] = time.perf_counter()

        tasks = []
        t0 = time.perf_counter()
        for i in range(total):
            await asyncio.sleep(max(0.0, t0 + i / RATE - time.perf_counter()))
            user_id = random.choice(users)[0]
            tasks.append(asyncio.create_task(publish(user_id) if TRIGGER == "bus" else trigger(user_id)))
        await asyncio.gather(*tasks)
        deadline = time.perf_counter() + 30
        while time.perf_counter() < deadline and any(nid not in arrivals for nid in answers):
            await asyncio.sleep(0.1)

    if statuses:
        print(f"refused triggers by status: {statuses}", flush=True)
    latencies = sorted(max(0.0, arrivals[nid] - at) for nid, at in answers.items() if nid in arrivals)
    missing = sum(1 for nid in answers if nid not in arrivals)
    dropped = [conn for conn in sockets if conn.close_code is not None]
    if dropped:
        codes: dict = {}
        for conn in dropped:
            codes[conn.close_code] = codes.get(conn.close_code, 0) + 1
        print(f"sockets closed by the server during the run: {len(dropped)} (close codes {codes})", flush=True)
    for conn in sockets:
        await conn.close()
    for task in readers:
        task.cancel()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else float("nan")

    lag_task.cancel()
    lags.sort()
    answer_times.sort()
    answer_p95 = answer_times[int(0.95 * len(answer_times))] * 1000 if answer_times else float("nan")
    return {"client_loop_lag_p95_ms": lags[int(0.95 * len(lags))] * 1000 if lags else float("nan"),
            "trigger_answer_p95_ms": answer_p95, "connections": float(len(sockets)), "connect_seconds": opened, "events": float(total),
            "trigger_failures": float(failures), "frames_missing": float(missing),
            "p50_ms": pct(0.50), "p95_ms": pct(0.95), "max_ms": latencies[-1] * 1000 if latencies else float("nan")}


def main() -> dict[str, float]:
    database_url = _bench_database_url()
    _ensure_database(database_url)
    _setup_django(database_url)
    if not os.environ.get("CELERY_BROKER_URL", "").startswith("amqp") or not os.environ.get("REDIS_URL"):
        raise RuntimeError("bench_realtime needs RabbitMQ (CELERY_BROKER_URL=amqp://...) and Redis (REDIS_URL)")
    from django.conf import settings

    from common.queues import ALL_QUEUES

    limit = _raise_file_limit()
    users, api_key = _setup_users(CONNECTIONS)
    port = _free_port()
    log_dir = Path(settings.VAR_DIR)
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {**_worker_env(database_url), "LOG_LEVEL": "WARNING"}
    worker = _start([sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", ALL_QUEUES, "-c", "2",
                     "-n", f"benchrt-{os.getpid()}@%h", "--without-gossip", "--without-mingle", "--loglevel", "INFO"],
                    env, log_dir / f"bench-rt-worker-{os.getpid()}.log", " ready.")
    web = api = None
    serve = [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py", "config.asgi:application"]
    web_env = {**env, "HOST": "127.0.0.1", "WEB_CONCURRENCY": "1", "ALLOWED_HOSTS": "127.0.0.1,localhost",
               "LOG_LEVEL": "INFO"}
    try:
        web = _start(serve, {**web_env, "PORT": str(port)}, log_dir / f"bench-rt-web-{os.getpid()}.log",
                     "in-app bus: consuming")
        api_port = port
        if API == "separate":
            api_port = _free_port() if not PORT else PORT + 1
            api = _start(serve, {**web_env, "PORT": str(api_port)}, log_dir / f"bench-rt-api-{os.getpid()}.log",
                         "in-app bus: consuming")
        print(f"realtime: {CONNECTIONS} sockets on ONE web process (port {port}, fd limit {limit}), "
              f"{RATE:g} events/s for {SECONDS:g}s; REST trigger on "
              f"{'a second web process' if api else 'the same process'} (port {api_port})", flush=True)
        figures = asyncio.run(_run(port, api_port, users, api_key))
        children = [int(p) for p in Path(f"/proc/{web.pid}/task/{web.pid}/children").read_text().split()]
        figures["web_process_rss_mb"] = _rss_mb(children[0]) if children else 0.0
        print(f"connections held by one process: {figures['connections']:.0f} "
              f"(opened in {figures['connect_seconds']:.1f}s, process RSS {figures['web_process_rss_mb']:.0f} MB)",
              flush=True)
        print(f"trigger answer -> frame: p50 {figures['p50_ms']:.0f} ms, p95 {figures['p95_ms']:.0f} ms, "
              f"max {figures['max_ms']:.0f} ms over {figures['events']:.0f} events "
              f"({figures['frames_missing']:.0f} frames missing, {figures['trigger_failures']:.0f} triggers refused; "
              f"trigger answer p95 {figures['trigger_answer_p95_ms']:.0f} ms; the client's own loop lag p95 "
              f"{figures['client_loop_lag_p95_ms']:.0f} ms)", flush=True)
        return figures
    finally:
        for proc in (web, api):
            if proc is not None:
                _stop(proc)
        _stop(worker)


if __name__ == "__main__":
    main()
