"""The production web tier as a real process for tests (no tests here)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.conftest import ROOT, _worker_env


def free_port() -> int:
    """A free port; TEST_PORT_RANGE ("8150-8159") keeps a shared machine's servers apart."""
    span = os.environ.get("TEST_PORT_RANGE", "")
    candidates = range(int(span.split("-")[0]), int(span.split("-")[1]) + 1) if span else [0]
    for port in candidates:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise RuntimeError(f"no free port in {span}")


class WebTier:
    def __init__(self, proc: subprocess.Popen, port: int, log_path: Path, env: dict[str, str]) -> None:
        self.env = env
        self.proc = proc
        self.port = port
        self.log_path = log_path
        self.url = f"http://127.0.0.1:{port}"
        self.ws_url = f"ws://127.0.0.1:{port}"

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # gunicorn's quick shutdown: tests need no grace
            try:
                # The processes stop at once when idle; with sockets or a bus consumer still
                # open they wait out their grace, which a test never needs: killed after 2 s.
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)


_var_dir: str | None = None


def _collected_var_dir(env: dict[str, str]) -> str:
    """A var/ directory whose staticfiles were collected, as a production image has them
    (WhiteNoise serves STATIC_ROOT when DEBUG is off). Collected once per test run."""
    global _var_dir
    if _var_dir is None:
        import tempfile

        path = tempfile.mkdtemp(prefix="troubadour-web-")
        subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=ROOT,
                       env={**env, "TROUBADOUR_VAR_DIR": path}, check=True)
        _var_dir = path
    return _var_dir


def start_web_tier(tmp_path: Path, *, workers: int = 2, env: dict[str, str] | None = None,
                   consuming: bool = True, port: int | None = None) -> WebTier:
    """Exactly `make serve` (gunicorn -c config/gunicorn.conf.py config.asgi:application).
    ``consuming=False``: the processes are started without the in-app bus consumer (the caller's
    env says REALTIME_BUS_CONSUMER=false), so readiness is not waited for on it. ``port``: a
    restart on the port of a tier stopped before (open pages reconnect to it)."""
    port = port or free_port()
    log_path = tmp_path / f"web-{port}.log"
    from django.conf import settings

    # The test process's key: sessions it creates (force_login) must verify in the server.
    full_env = {**_worker_env(), "SECRET_KEY": settings.SECRET_KEY, "PORT": str(port), "HOST": "127.0.0.1", "WEB_CONCURRENCY": str(workers),
                "DEBUG": "false", "ALLOWED_HOSTS": "127.0.0.1,localhost", "PRESENCE_GRACE_SECONDS": "1",
                **(env or {})}
    full_env["TROUBADOUR_VAR_DIR"] = _collected_var_dir(full_env)
    proc = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "gunicorn") if (ROOT / ".venv" / "bin" / "gunicorn").exists() else "gunicorn",
         "-c", "config/gunicorn.conf.py", "config.asgi:application"],
        cwd=ROOT, env=full_env, stdout=log_path.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    tier = WebTier(proc, port, log_path, full_env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        # Every process has started its in-app bus consumer once it logs "consuming".
        if not consuming or tier.log.count("in-app bus: consuming") >= workers:
            try:
                if requests.get(f"{tier.url}/health/live", timeout=2).status_code == 200:
                    return tier
            except requests.RequestException:
                pass
        time.sleep(0.2)
    tier.stop()
    raise RuntimeError(f"web tier did not start:\n{tier.log[-4000:]}")


def server_password(user, password: str = "pass-word-123") -> str:
    """Store a password the server process can verify: tests hash with MD5 for speed, which
    the server's own hashers do not accept. (Few iterations: the hash format carries them.)"""
    from django.contrib.auth.hashers import PBKDF2PasswordHasher

    user.password = PBKDF2PasswordHasher().encode(password, PBKDF2PasswordHasher().salt(), iterations=1000)
    user.save(update_fields=["password"])
    return password
