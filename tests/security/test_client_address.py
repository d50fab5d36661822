"""The bad-token guard and DRF's throttles key on the client the deployment's proxies vouch for.

Over real HTTP (live server): a client-written X-Forwarded-For never picks a bucket, behind a
trusted proxy each client has its own, and a valid link is never refused because of others'
failed guesses.
"""
from __future__ import annotations

import pytest
import requests
from rest_framework.throttling import ScopedRateThrottle

from invitations.selectors import BAD_TOKEN_LIMIT
from invitations.services import invitations_send
from narrations.services import story_create

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def valid_token(user, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.NARRATION_ESPEAK_LIBRARY = "/nonexistent/libespeak-ng.so"
    story = story_create(owner=user, title="The Lighthouse", content="The lamp at the end of the pier.", characters=[])
    result = invitations_send(story=story, inviter=user, items=[{"email": "ada@example.com", "conversation_style": "jovial"}])
    return next(iter(result.tokens.values()))


def _by_token(base: str, token: str, forwarded: str | None = None) -> int:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    return requests.get(f"{base}/api/v1/invitations/by-token/{token}/", headers=headers, timeout=30).status_code


def test_without_trusted_proxies_a_forged_forwarded_for_escapes_no_limit(live_server, valid_token, settings, monkeypatch):
    settings.TRUSTED_PROXY_COUNT = 0
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"invitation_token": "5/min"})
    # DRF's throttle: a new made-up X-Forwarded-For on every request is still the same client.
    codes = [_by_token(live_server.url, valid_token, forwarded=f"198.51.100.{i}") for i in range(6)]
    assert codes == [200] * 5 + [429]


def test_bad_token_guard_forged_forwarded_for_is_the_same_client(live_server, valid_token, settings):
    settings.TRUSTED_PROXY_COUNT = 0
    for i in range(BAD_TOKEN_LIMIT):
        assert requests.get(f"{live_server.url}/i/guess{i:030d}", headers={"X-Forwarded-For": f"198.51.100.{i}"},
                            timeout=30).status_code == 404
    assert requests.get(f"{live_server.url}/i/guess{'y' * 30}", headers={"X-Forwarded-For": "192.0.2.1"},
                        timeout=30).status_code == 429


def test_behind_a_trusted_proxy_each_client_has_its_own_budget_and_valid_links_always_open(live_server, valid_token, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    scanner = "203.0.113.5"
    # The scanner forges the left part of the header; the proxy appends the address it saw.
    for i in range(BAD_TOKEN_LIMIT):
        assert _by_token(live_server.url, f"guess{i:030d}", forwarded=f"10.9.8.{i}, {scanner}") == 404
    assert _by_token(live_server.url, "g" * 40, forwarded=f"10.0.0.1, {scanner}") == 429
    assert requests.get(f"{live_server.url}/i/{'g' * 40}", headers={"X-Forwarded-For": scanner},
                        timeout=30).status_code == 429

    # Someone else behind the same proxy (same REMOTE_ADDR): untouched by the scanner's failures.
    assert _by_token(live_server.url, "h" * 40, forwarded="203.0.113.9") == 404
    assert _by_token(live_server.url, valid_token, forwarded="203.0.113.9") == 200
    landing = requests.get(f"{live_server.url}/i/{valid_token}", headers={"X-Forwarded-For": "203.0.113.9"}, timeout=30)
    assert landing.status_code == 200 and "The Lighthouse" in landing.text
    # And a valid link opens even from the scanner's own address.
    assert _by_token(live_server.url, valid_token, forwarded=scanner) == 200
