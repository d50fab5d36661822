from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from .peers import HttpPeer


@pytest.fixture(autouse=True)
def encryption_keys(settings):
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    settings.SITE_URL = "https://troubadour.test"
    # The providers' services here are loopback peers; production refuses non-public endpoints
    # for organization records and push subscriptions (tests/security checks that).
    settings.OUTBOUND_ALLOW_LOOPBACK = True
    return settings.FIELD_ENCRYPTION_KEYS


@pytest.fixture
def peer():
    """Factory of started loopback HTTP peers, stopped after the test."""
    started: list[HttpPeer] = []

    def make(**kwargs) -> HttpPeer:
        p = HttpPeer(**kwargs).start()
        started.append(p)
        return p

    yield make
    for p in started:
        p.stop()


@pytest.fixture
def make_provider(db):
    from providers.services import provider_create

    def make(code: str, *, organization=None, config=None, secrets=None, priority: int = 0, **kwargs):
        return provider_create(
            organization_id=organization.pk if organization else None, code=code, name=f"{code} test", priority=priority,
            config=config or {}, secrets=secrets or {}, **kwargs,
        )

    return make
