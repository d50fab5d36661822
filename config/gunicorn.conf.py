"""The production web tier: `gunicorn -c config/gunicorn.conf.py config.asgi:application`.

Gunicorn manages the processes (restarts a dead one, graceful reloads on SIGHUP); each process
is a uvicorn event loop serving HTTP, WebSocket and SSE through the ASGI app, so a held-open
stream costs a coroutine, not a worker. `make serve`, the Dockerfile and docker-compose's `web`
service run exactly this.
"""
import os

# Under ASGI every request runs its sync code in a thread of its own: a connection kept open
# per thread (CONN_MAX_AGE) would pile up until PostgreSQL refuses clients, and opening one per
# request (or per socket frame) costs more than the work. Each process borrows from a pool.
os.environ.setdefault("DB_CONN_MAX_AGE", "0")
os.environ.setdefault("DB_POOL_SIZE", "12")

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "config.gunicorn_worker.UvicornWorker"
timeout = int(os.environ.get("WEB_TIMEOUT", "60"))  # a process whose event loop stalls this long is replaced
graceful_timeout = 30
keepalive = 5
accesslog = "-" if os.environ.get("WEB_ACCESS_LOG", "").lower() in {"1", "true", "yes"} else None
errorlog = "-"
# Runtime management socket: off by default (several servers on one host would share its path).
control_socket_disable = os.environ.get("WEB_CONTROL_SOCKET", "").lower() not in {"1", "true", "yes"}


def child_exit(server, worker):
    """Prometheus multiprocess mode: a dead process's live gauges must not linger."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
