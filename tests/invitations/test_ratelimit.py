"""Guessing tokens: after BAD_TOKEN_LIMIT unknown tokens from one address, its unknown tokens are refused."""
from __future__ import annotations

import pytest

from invitations.selectors import BAD_TOKEN_LIMIT

from .conftest import invite_url, people

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db]


def test_repeated_unknown_tokens_are_rate_limited_per_client(auth_client, api_client, story, settings):
    good = auth_client.post(invite_url(story.pk), {"invitations": people(1)}, format="json").json()["invitations"][0]
    good_token = good["invite_url"].rsplit("/i/", 1)[1]

    for i in range(BAD_TOKEN_LIMIT):
        assert api_client.get(f"/api/v1/invitations/by-token/guess{i:020d}/").status_code == 404
    assert api_client.get(f"/api/v1/invitations/by-token/guess-{'x' * 30}/").status_code == 429
    assert api_client.get(f"/i/unknown{'z' * 30}").status_code == 429
    # A valid token is still honoured from that address: invitees behind the same proxy or NAT
    # must not pay for the guesses (2**256 tokens: honouring hits teaches a scanner nothing).
    assert api_client.get(f"/api/v1/invitations/by-token/{good_token}/").status_code == 200
    assert api_client.get(f"/i/{good_token}").status_code == 200
    # Another client is unaffected.
    assert api_client.get(f"/api/v1/invitations/by-token/{good_token}/", REMOTE_ADDR="10.0.0.7").status_code == 200


def test_the_landing_page_counts_bad_tokens_too(client, settings):
    for i in range(BAD_TOKEN_LIMIT):
        assert client.get(f"/i/unknown{i:030d}").status_code == 404
    assert client.get(f"/api/v1/invitations/by-token/{'y' * 43}/").status_code == 429
