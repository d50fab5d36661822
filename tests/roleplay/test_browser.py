"""A roleplay invitee's page in Chromium: their role, and their character's lines highlighted."""
from __future__ import annotations

import pytest

from invitations.models import InvitationStatus, StoryInvitation
from invitations.services import invitations_send

from ..invitations.test_browser import browser  # noqa: F401 - fixture
from .conftest import roles_of

pytestmark = [pytest.mark.postgres, pytest.mark.browser]


@pytest.mark.django_db(transaction=True)
def test_roleplay_invitee_sees_their_role_and_lines(browser, live_server, settings, user, story, template):  # noqa: F811
    settings.SITE_URL = live_server.url
    result = invitations_send(story=story, inviter=user, items=[
        {"email": "ada@example.com", "conversation_style": "close_friends", "roleplay_character_role_id": roles_of(template)["Mara"]},
    ])
    (invitation,) = result.invitations
    page = browser.new_page()
    page.set_default_timeout(30_000)
    page.goto(result.invite_url(invitation.pk))
    role = page.inner_text("#roleplay-role")
    assert "Your role: Mara the keeper" in role and "protagonist" in role and "brave, tired" in role
    page.locator("#segments .segment").first.wait_for()
    mine = page.locator("#segments .segment.mine")
    assert mine.count() == 1 and "Someone has to climb the stairs tonight." in mine.first.inner_text()
    others = page.locator("#segments .segment:not(.mine)").all_inner_texts()
    assert any("Captain" in text.split("\n")[0].title() for text in others)  # the Captain's line is not highlighted
    page.click("#accept-button")
    page.locator("#accepted-banner").wait_for(state="visible")
    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.ACCEPTED
    assert template.roles.get(pk=invitation.roleplay_role_id).filled_at is not None
    assert StoryInvitation.objects.get(pk=invitation.pk).invitation_type == "roleplay_character"
