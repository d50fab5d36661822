"""Shared pieces of the attack tests: credentials for the real HTTP server, a scriptable name
resolver, and loopback peers."""
from __future__ import annotations

import socket
import threading
from collections.abc import Callable

import pytest
import requests
from cryptography.fernet import Fernet
from rest_framework.authtoken.models import Token


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
