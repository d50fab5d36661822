"""Staff console: invitation list, detail with history, and the revoke action."""
from __future__ import annotations

import pytest

from invitations.models import HistoryAction, InvitationStatus, StoryInvitation
from invitations.services import invitations_send

from ..factories import UserFactory
from .conftest import people

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


@pytest.fixture
def staff_client(client):
    admin = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(admin)
    client.admin = admin
    return client


def test_admin_list_search_detail_and_revoke_action(staff_client, story, user):
    result = invitations_send(story=story, inviter=user, items=people(3))
    first = result.invitations[0]

    listing = staff_client.get("/admin/invitations/storyinvitation/", {"q": "guest1@example.com"})
    assert listing.status_code == 200
    assert b"guest1@example.com" in listing.content and b"guest2@example.com" not in listing.content

    detail = staff_client.get(f"/admin/invitations/storyinvitation/{first.pk}/change/")
    assert detail.status_code == 200
    assert first.token_hash.encode() in detail.content  # shown read-only
    assert b'name="token_hash"' not in detail.content
    assert result.tokens[first.pk].encode() not in detail.content

    response = staff_client.post(
        "/admin/invitations/storyinvitation/",
        {"action": "revoke_selected", "_selected_action": [i.pk for i in result.invitations[:2]]},
    )
    assert response.status_code == 302
    statuses = dict(StoryInvitation.objects.values_list("pk", "status"))
    assert [statuses[i.pk] for i in result.invitations] == ["revoked", "revoked", InvitationStatus.PENDING]
    revoked = first.history.get(action=HistoryAction.REVOKED)
    assert revoked.user == staff_client.admin

    assert staff_client.get("/admin/invitations/invitationhistory/").status_code == 200
