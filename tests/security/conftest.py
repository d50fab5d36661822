"""Shared pieces of the attack tests: credentials for the real HTTP server, a scriptable name
resolver, loopback peers, a scan of every text column, real server processes, and a real Chromium
that records every CSP violation of a page."""
from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet
from django.db import connection
from rest_framework.authtoken.models import Token

from accounts.models import MembershipRole
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

from ..conftest import ROOT, _worker_env


@pytest.fixture
def field_keys(settings, monkeypatch):
    key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [key]
    monkeypatch.setenv("FIELD_ENCRYPTION_KEYS", key)  # for a worker process started by the test


def token_session(user) -> requests.Session:
    """A client of the real server (live_server) acting as `user` through the API's token auth."""
    token, _ = Token.objects.get_or_create(user=user)
    session = requests.Session()
    session.trust_env = False
    session.headers["Authorization"] = f"Token {token.key}"
    return session


class Resolver:
    """Replaces `socket.getaddrinfo` for the names a test scripts; every other name (the live
    server, the database, the broker) resolves as usual. `answers[name]` is a list of
    addresses returned one per lookup (the last one repeats), or an exception to raise."""

    def __init__(self, real: Callable) -> None:
        self.real = real
        self.answers: dict[str, list[str] | BaseException] = {}
        self.routes: dict[str, tuple[str, int]] = {}
        self.lookups: list[str] = []
        self.lock = threading.Lock()

    def route(self, address: str, to: tuple[str, int]) -> None:
        """Connections to `address` (any port) land on `to`: a loopback peer standing in for a
        public host, so no test ever sends a packet to the Internet."""
        self.routes[address] = to

    def __call__(self, host, port, family=0, type=0, proto=0, flags=0):
        name = host.decode() if isinstance(host, bytes) else str(host)
        with self.lock:
            scripted = self.answers.get(name)
            if scripted is not None:
                self.lookups.append(name)
                if isinstance(scripted, BaseException):
                    raise scripted
                address = scripted.pop(0) if len(scripted) > 1 else scripted[0]
                family_of = socket.AF_INET6 if ":" in address else socket.AF_INET
                sockaddr = (address, int(port or 0), 0, 0) if family_of == socket.AF_INET6 else (address, int(port or 0))
                return [(family_of, socket.SOCK_STREAM, 6, "", sockaddr)]
            if name in self.routes:
                self.lookups.append(name)
                return self.real(*self.routes[name], family, type, proto, flags)
        return self.real(host, port, family, type, proto, flags)


@pytest.fixture
def resolver(monkeypatch) -> Resolver:
    fake = Resolver(socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return fake


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def columns_holding(needle: str) -> list[str]:
    """Every `table.column` of the database whose text (text, varchar, json, jsonb) contains `needle`."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND data_type IN ('text', 'character varying', 'json', 'jsonb')"
        )
        columns = cursor.fetchall()
        hits = []
        for table, column in columns:
            cursor.execute(f'SELECT count(*) FROM "{table}" WHERE "{column}"::text LIKE %s', [f"%{needle}%"])
            if cursor.fetchone()[0]:
                hits.append(f"{table}.{column}")
    return hits


class ServerProcess:
    def __init__(self, proc: subprocess.Popen, log_path: Path, url: str):
        self.proc, self.log_path, self.url = proc, log_path, url

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def start_server(tmp_path: Path, command: list[str], *, port: int, name: str, env: dict[str, str] | None = None) -> ServerProcess:
    """A production web server process on the test database, answering on 127.0.0.1:`port`."""
    log_path = tmp_path / f"{name}.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", *command], cwd=ROOT, env={**_worker_env(), **(env or {})},
        stdout=log_path.open("w"), stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            requests.get(f"{url}/health/live", timeout=10)
            return ServerProcess(proc, log_path, url)
        except requests.RequestException:  # not listening yet, or still booting its worker
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"{name} did not start:\n{log_path.read_text(errors='replace')[-4000:]}")


@pytest.fixture
def server_factory(tmp_path):
    started: list[ServerProcess] = []

    def start(command: list[str], *, port: int, name: str, env: dict[str, str] | None = None) -> ServerProcess:
        server = start_server(tmp_path, command, port=port, name=name, env=env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


PASSWORD = "pass-word-123"

# Runs before any script of the page (through the DevTools protocol, so the page's CSP does not
# apply to it): every violation the browser reports lands in window.__cspViolations.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__cspViolations.push({directive: e.effectiveDirective, blocked: e.blockedURI, sample: e.sample, source: e.sourceFile});
});
"""


@pytest.fixture
def browser(monkeypatch):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on this thread; the ORM calls between browser
    # steps are ordinary blocking calls, which Django would otherwise refuse.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-background-networking", "--disable-gpu"]
        )
        yield chromium
        chromium.close()


class WatchedPage:
    """A page plus what the browser said about it: CSP violations and console errors."""

    def __init__(self, page):
        self.page = page
        self.console: list[str] = []
        page.add_init_script(RECORD_VIOLATIONS)
        page.on("console", lambda msg: self.console.append(msg.text) if msg.type == "error" else None)

    def violations(self) -> list[dict]:
        return self.page.evaluate("window.__cspViolations || []")

    def csp_console_errors(self) -> list[str]:
        return [text for text in self.console if "Content Security Policy" in text]


def login(page, base_url: str, user, next_url: str = "/") -> None:
    page.goto(f"{base_url}/accounts/login/?next={next_url}")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}{next_url}")


@pytest.fixture
def superuser(db, organization):
    admin = UserFactory(is_staff=True, is_superuser=True)
    MembershipFactory(user=admin, organization=organization, role=MembershipRole.OWNER)
    return admin


@pytest.fixture
def second_organization(db):
    return OrganizationFactory()
