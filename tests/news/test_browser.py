"""A news invitation's landing page in Chromium: the article, its narration in the invitee's style, accept."""
from __future__ import annotations

import pytest

from invitations.models import InvitationStatus, StoryInvitation
from invitations.services import content_invitations_send
from narrations.styles import get_style
from news.content import NEWS

from ..invitations.test_browser import browser  # noqa: F401 - fixture

pytestmark = [pytest.mark.postgres, pytest.mark.browser]


@pytest.mark.django_db(transaction=True)
def test_news_invitation_landing_page(browser, live_server, settings, user, article):  # noqa: F811
    settings.SITE_URL = live_server.url
    result = content_invitations_send(
        kind=NEWS, content=article, inviter=user,
        items=[{"email": "sam@example.com", "conversation_style": "siblings"}], message="Our street is in the news",
    )
    (invitation,) = result.invitations
    page = browser.new_page()
    page.set_default_timeout(30_000)
    page.goto(result.invite_url(invitation.pk))
    assert page.inner_text("#story-title") == article.title
    assert "night-bus line" in page.inner_text("#news-summary")
    assert page.inner_text("#news-category") == "local"
    assert "Siblings" in page.inner_text("#style-label")
    assert "Our street is in the news" in page.inner_text("#invite-message")
    assert page.get_attribute("#news-source", "href") == "https://news.example/night-bus"
    page.locator("#segments .segment").first.wait_for()
    segments = page.locator("#segments .segment").all_inner_texts()
    assert get_style("siblings").salutation_anonymous in segments[0]
    page.click("#accept-button")
    page.locator("#accepted-banner").wait_for(state="visible")
    assert StoryInvitation.objects.get(pk=invitation.pk).status == InvitationStatus.ACCEPTED
