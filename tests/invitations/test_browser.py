"""The whole journey in Chromium: invite three people in two styles, open a link, accept."""
from __future__ import annotations

import re

import pytest
from django.core import mail

from invitations.models import InvitationStatus, StoryInvitation
from narrations.models import StoryNarration
from narrations.styles import style_catalogue

pytestmark = [pytest.mark.postgres, pytest.mark.browser]


@pytest.fixture
def browser(monkeypatch):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on this thread; the ORM calls the test makes
    # between browser steps are ordinary blocking calls, which Django would otherwise refuse.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-background-networking", "--disable-gpu"],
        )
        yield chromium
        chromium.close()


@pytest.mark.django_db(transaction=True)
def test_invite_through_the_dialog_then_accept_from_the_link(browser, live_server, settings, user, story, with_audio):
    settings.SITE_URL = live_server.url
    page = browser.new_page()
    page.set_default_timeout(30_000)

    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", "pass-word-123")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    assert story.title in page.inner_text("#story-list")
    page.click(f"text={story.title}")
    page.wait_for_url(f"{live_server.url}/stories/{story.pk}/")

    page.click("#open-invite")
    dialog = page.locator("#invite-dialog")
    assert dialog.is_visible()
    rows = page.locator("#invite-rows .invitee-row")
    rows.nth(0).locator('[data-field="contact"]').fill("ada@example.com")
    descriptions = {s["code"]: s["description"] for s in style_catalogue()}
    assert rows.nth(0).locator("[data-style-help]").inner_text() == descriptions["respectful"]
    page.click("#add-row")
    rows.nth(1).locator('[data-field="contact"]').fill("bob@")  # the server will reject this one
    rows.nth(1).locator('[data-field="conversation_style"]').select_option("jovial")
    assert rows.nth(1).locator("[data-style-help]").inner_text() == descriptions["jovial"]
    rows.nth(1).locator('[data-field="character_id"]').select_option(label="Mara")
    page.click("#add-row")
    rows.nth(2).locator('[data-field="contact"]').fill("+1 415 555 0100")
    assert rows.nth(2).locator('[data-field="conversation_style"]').input_value() == "jovial"  # copied from the row above
    page.fill("#general-message", "A story for the three of you.")

    page.click("#invite-submit")
    error = rows.nth(1).locator("[data-row-error]")
    error.wait_for(state="visible")
    assert "valid email" in error.inner_text()
    assert rows.nth(0).locator("[data-row-error]").is_hidden()
    assert StoryInvitation.objects.count() == 0

    rows.nth(1).locator('[data-field="contact"]').fill("bob@example.com")
    page.click("#invite-submit")
    page.locator("#invite-success").wait_for(state="visible")
    assert page.locator("#invited-list li").count() == 3
    assert page.locator("#narration-list li").count() == 2
    assert "3 invitations sent" in page.inner_text("#invite-success")
    assert set(StoryNarration.objects.filter(story=story).values_list("conversation_style", flat=True)) == {"respectful", "jovial"}

    page.click("#invite-cancel")  # "Done": the page reloads with the table
    page.locator("#invitations-table").wait_for()
    assert page.locator("#invitations-table tbody tr").count() == 3

    bob_mail = next(m for m in mail.outbox if m.to == ["bob@example.com"])
    link = re.search(r"(http://\S+/i/[A-Za-z0-9_-]+)", bob_mail.body).group(1)

    guest = browser.new_page()
    guest.goto(link)
    assert guest.inner_text("#story-title") == story.title
    assert "A story for the three of you." in guest.inner_text("#invite-message")
    assert "Jovial" in guest.inner_text("#style-label")
    guest.locator("#segments .segment").first.wait_for()
    assert "Mara" in guest.locator("#segments .speaker").all_text_contents()  # dialogue attributed
    assert guest.locator("#narration-audio").count() == 1  # one player for the whole narration
    assert guest.locator("#segments .segment.playable").count() >= 1
    assert guest.locator("#play-all").is_visible()

    guest.click("#accept-button")
    guest.locator("#accepted-banner").wait_for(state="visible")
    assert guest.locator("#invite-actions").is_hidden()
    invitation = StoryInvitation.objects.get(invitee_email="bob@example.com")
    assert invitation.status == InvitationStatus.ACCEPTED
    assert invitation.character.name == "Mara"
    # The audio is really served.
    audio_src = guest.locator("#segments .segment.playable").first.get_attribute("data-src")
    assert guest.request.get(f"{live_server.url}{audio_src}").ok
    # A segment of the list plays in the one player.
    last = guest.locator("#segments .segment.playable").last
    last.click()
    assert guest.locator("#narration-audio").get_attribute("src") == last.get_attribute("data-src")
    assert "playing" in (last.get_attribute("class") or "")
