"""The people pages in Chromium: sign-up → profile → a preference change → the next real delivery
follows it; the dashboard's charts drawn from real deliveries; every page at 390 px wide."""
from __future__ import annotations

import pytest
from django.core import mail

from accounts.models import User
from invitations.models import StoryInvitation
from invitations.services import invitation_accept, invitations_send
from narrations.services import story_create
from notifications.enums import Channel
from notifications.models import Notification, NotificationDelivery
from tests.conftest import chromium

pytestmark = [pytest.mark.postgres, pytest.mark.browser]


@pytest.fixture(scope="module")
def browser():
    with chromium("--disable-background-networking", "--disable-gpu") as launched:
        yield launched


@pytest.fixture(autouse=True)
def _eager_tasks_and_no_speech_library(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.NARRATION_ESPEAK_LIBRARY = "/nonexistent/libespeak-ng.so"


def _invite_and_accept(inviter: User, email: str) -> StoryInvitation:
    story = story_create(owner=inviter, title="The Lighthouse", content="The lamp had not been lit for years.", characters=[])
    result = invitations_send(story=story, inviter=inviter, items=[{"email": email, "conversation_style": "jovial"}])
    invitation = result.invitations[0]
    invitation_accept(invitation_id=invitation.pk)
    return invitation


def _no_horizontal_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


@pytest.mark.django_db(transaction=True)
def test_signup_profile_then_a_preference_change_shapes_the_next_delivery(browser, live_server, settings):
    settings.SITE_URL = live_server.url
    page = browser.new_page()
    page.set_default_timeout(30_000)

    page.goto(f"{live_server.url}/")
    page.click("text=Sign up")
    page.fill("#id_username", "ada")
    page.fill("#id_email", "ada@example.com")
    page.fill("#id_display_name", "Ada")
    page.fill("#id_password1", "analytical-engine-42")
    page.fill("#id_password2", "analytical-engine-42")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/me/profile/")
    assert "Welcome to Troubadour" in page.inner_text(".messages")
    user = User.objects.get(username="ada")
    assert user.memberships.count() == 1

    page.fill("#id_phone", "+33 6 12 34 56 78")
    page.fill("#id_phone", "+33 6 12 34 56 78")
    page.select_option("#id_locale", "fr")
    page.select_option("#id_timezone", "Europe/Paris")
    page.click("#profile-form button[type=submit]")
    page.locator(".messages").wait_for()
    assert "Profile saved." in page.inner_text(".messages")
    user.refresh_from_db()
    assert (user.phone, user.locale, user.timezone) == ("+33612345678", "fr", "Europe/Paris")

    # With the defaults, an acceptance reaches Ada in the app and by email.
    _invite_and_accept(user, "bea@example.com")
    first = Notification.objects.get(recipient=user)
    assert set(first.deliveries.values_list("channel", flat=True)) == {Channel.IN_APP, Channel.EMAIL}
    assert "a accepté votre invitation" in first.deliveries.get(channel=Channel.EMAIL).rendered["subject"]  # her language

    page.click("header >> text=Preferences")
    page.wait_for_url(f"{live_server.url}/me/preferences/")
    cell = page.locator('[data-cell="type:story.invitation_accepted:EMAIL"]')
    assert cell.get_attribute("data-enabled") == "on"
    cell.locator("select").select_option("off")
    assert page.inner_text("#save-matrix") == "Save 1 change"
    page.click("#save-matrix")
    page.locator(".messages").wait_for()
    cell = page.locator('[data-cell="type:story.invitation_accepted:EMAIL"]')
    assert cell.get_attribute("data-enabled") == "off" and cell.get_attribute("data-source") == "user"
    assert "your choice" in cell.inner_text()

    emails_before = len([m for m in mail.outbox if m.to == ["ada@example.com"]])
    _invite_and_accept(user, "cid@example.com")
    second = Notification.objects.filter(recipient=user).exclude(pk=first.pk).get()
    assert list(NotificationDelivery.objects.filter(notification=second).exclude(status="SKIPPED").values_list("channel", flat=True)) == [Channel.IN_APP]
    assert len([m for m in mail.outbox if m.to == ["ada@example.com"]]) == emails_before
    assert "EMAIL" in str(second.trace)  # the trace says why email was left out


@pytest.mark.django_db(transaction=True)
def test_dashboard_charts_from_real_deliveries_and_every_page_at_390px(phone_consent, browser, live_server, settings, user):
    settings.SITE_URL = live_server.url
    story = story_create(owner=user, title="The Lighthouse", content="The lamp had not been lit for years.", characters=[])
    invitations_send(story=story, inviter=user, items=[
        {"email": f"guest{i}@example.com", "conversation_style": "jovial"} for i in range(4)
    ] + [{"phone": "+14155550100", "conversation_style": "playful"}])
    sent = NotificationDelivery.objects.exclude(status="SKIPPED").count()
    assert sent == 5

    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.set_default_timeout(30_000)
    page.goto(f"{live_server.url}/accounts/login/")
    assert _no_horizontal_scroll(page)
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", "pass-word-123")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")

    page.goto(f"{live_server.url}/me/")
    bars = page.locator("#chart-channels rect.bar")
    assert bars.count() >= 2
    values = {(b.get_attribute("data-channel"), b.get_attribute("data-kind")): int(b.get_attribute("data-value")) for b in bars.all()}
    assert sum(v for (ch, _), v in values.items() if ch == "email") == 4
    assert sum(v for (ch, _), v in values.items() if ch == "sms") == 1
    day_bars = page.locator("#chart-daily rect.day-bar")
    assert sum(int(b.get_attribute("data-value")) for b in day_bars.all()) == 5
    assert page.locator("#chart-channels").bounding_box()["width"] <= 390
    # readable at 390 px: the charts' text is drawn at 9 px or more, the axis counts are whole
    for text in page.locator("#chart-channels text, #chart-daily text").all():
        assert text.bounding_box()["height"] >= 9, text.inner_html()
    ticks = [t.text_content() for t in page.locator("#chart-daily text.tick").all()]
    assert len(ticks) == 5 and all(float(t).is_integer() for t in ticks), ticks
    last_label = page.locator("#chart-daily text.day-label").last.bounding_box()
    chart_box = page.locator("#chart-daily").bounding_box()
    assert last_label["x"] + last_label["width"] <= chart_box["x"] + chart_box["width"] + 0.5
    # the history stacks: every cell on screen, none behind a sideways scroll
    assert page.evaluate("[...document.querySelectorAll('#history-table td')].every("
                         "td => td.getBoundingClientRect().right <= window.innerWidth)")
    # the top bar keeps its links apart
    name, sign_out = page.locator(".topbar .who").bounding_box(), page.locator(".topbar form.inline").bounding_box()
    assert sign_out["x"] >= name["x"] + name["width"] + 8 or sign_out["y"] >= name["y"] + name["height"]
    assert page.locator('[data-tile="sent"] strong').inner_text() == "5"
    page.fill("input[name=q]", "guest3")
    page.press("input[name=q]", "Enter")
    page.wait_for_url("**q=guest3**")
    assert page.locator("#history-table tbody tr").count() == 1
    assert _no_horizontal_scroll(page)

    for path in ("/", f"/stories/{story.pk}/", "/me/profile/", "/me/preferences/", "/inbox/", "/accounts/signup/"):
        page.goto(f"{live_server.url}{path}")
        assert _no_horizontal_scroll(page), path

    # the preference matrix scrolls sideways inside its card, the event names staying in view
    page.goto(f"{live_server.url}/me/preferences/")
    scrolled = page.evaluate("""() => { const t = document.querySelector('.pref-matrix');
        const box = t.scrollWidth > t.clientWidth ? t : t.closest('.table-wrap'); box.scrollLeft = 400; return box.scrollLeft; }""")
    assert scrolled > 0  # six channels do not fit in 390 px: they scroll
    name_cell = page.locator('tr[data-row="task.assigned"] td').first.bounding_box()
    assert name_cell["x"] >= 0 and name_cell["width"] > 0
    assert page.evaluate("""() => { const c = document.querySelector('tr[data-row="task.assigned"] td');
        const r = c.getBoundingClientRect(); return document.elementFromPoint(r.x + 5, r.y + r.height / 2) === c; }""")

    # the story page's invitees stack too: the actions of a pending invitation are on screen
    page.goto(f"{live_server.url}/stories/{story.pk}/")
    send_again = page.locator('#invitations-table [data-reissue][data-send="true"]').first
    box = send_again.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390
    assert page.evaluate("[...document.querySelectorAll('#invitations-table td')].every("
                         "td => td.getBoundingClientRect().right <= window.innerWidth)")


@pytest.mark.django_db(transaction=True)
def test_an_invitee_stops_invitations_from_the_email_footer_link(browser, live_server, settings, user, other_user):
    import re

    from invitations.models import InviteeOptOut

    settings.SITE_URL = live_server.url
    story = story_create(owner=user, title="The Lighthouse", content="The lamp had not been lit for years.", characters=[])
    invitations_send(story=story, inviter=user, items=[{"email": "bea@example.com", "conversation_style": "jovial"}])
    message = next(m for m in mail.outbox if m.to == ["bea@example.com"])
    link = re.search(r"Stop them: (\S+)", message.body).group(1)
    assert message.extra_headers["List-Unsubscribe"] == f"<{link}>"

    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.goto(re.search(r"(http://\S+/i/[A-Za-z0-9_-]+)", message.body).group(1))  # the landing page, at 390 px too
    page.locator("#story-title").wait_for()
    assert _no_horizontal_scroll(page)
    page.goto(link)
    assert f"Stop invitations from {user.get_display_name()}" in page.inner_text("#optout")
    assert _no_horizontal_scroll(page)
    page.check("input[value=platform]")
    page.click("#optout button[type=submit]")
    page.locator("#optout-done").wait_for()
    assert "Nobody can invite bea@example.com" in page.inner_text("#optout-done")
    assert InviteeOptOut.objects.get().inviter is None

    other_story = story_create(owner=other_user, title="Elsewhere", content="Another story.", characters=[])
    result = invitations_send(story=other_story, inviter=other_user, items=[{"email": "bea@example.com", "conversation_style": "jovial"}])
    assert result.invitations == [] and result.skipped[0].reason == "opted_out"


@pytest.mark.django_db(transaction=True)
def test_invite_dialog_polish_escape_asks_errors_count_from_one_and_styles_show_a_sample(browser, live_server, settings, user):
    settings.SITE_URL = live_server.url
    story = story_create(owner=user, title="The Lighthouse", content="The lamp had not been lit for years.", characters=[])
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.set_default_timeout(30_000)
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", "pass-word-123")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    page.goto(f"{live_server.url}/stories/{story.pk}/")
    assert page.evaluate("document.querySelector('link[rel=icon]').href").endswith("favicon.svg")

    page.click("#open-invite")
    rows = page.locator("#invite-rows .invitee-row")
    assert rows.nth(0).locator("[data-style-sample]").inner_text() == "“Good day. Sam would be honoured to share a story with you.”"
    rows.nth(0).locator('[data-field="contact"]').fill("ada@example.com")
    asked: list[str] = []
    page.once("dialog", lambda d: (asked.append(d.message), d.dismiss()))
    page.keyboard.press("Escape")
    page.wait_for_timeout(300)
    assert asked == ["Discard the invitations you have not sent?"]
    assert page.locator("#invite-dialog").is_visible()  # kept

    page.click("#add-row")
    rows.nth(1).locator('[data-field="contact"]').fill("bob@")
    page.click("#invite-submit")
    error = rows.nth(1).locator("[data-row-error]")
    error.wait_for(state="visible")
    assert error.inner_text().startswith("Person 2:")
    assert "person 2" in page.inner_text("#invite-form-error")
    assert page.locator("#invite-form-error").is_visible()
    assert _no_horizontal_scroll(page)
