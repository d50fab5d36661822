"""The bell and the inbox page in Chromium: live count over SSE, mark read, read all, archive."""
from __future__ import annotations

import pytest

from notifications.engine import sse
from notifications.engine.delivery import deliver_batch
from notifications.enums import Channel

from tests.conftest import wait_until

from .test_delivery_support import event_type_with_template, inbox_item, notification_with_deliveries

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser(monkeypatch):
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-background-networking", "--disable-gpu"]
        )
        yield chromium
        chromium.close()


def _open_streams() -> int:
    """Database sessions of other threads whose last query was the stream's unread count."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND query LIKE %s",
            ["%notifications_notificationdelivery%"],
        )
        return cursor.fetchone()[0]


def test_bell_counts_live_and_inbox_actions(browser, live_server, user, organization, monkeypatch):
    # Short heartbeats: once the page is gone the server notices at the next one and ends the stream.
    monkeypatch.setattr(sse, "HEARTBEAT_SECONDS", 0.5)
    event_type_with_template()
    first = inbox_item(organization=organization, recipient=user, title="Welcome aboard", body="Glad you're here.")
    page = browser.new_page()
    page.set_default_timeout(20_000)
    page.goto(f"{live_server.url}/accounts/login/?next=/inbox/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", "pass-word-123")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/inbox/")

    badge = page.locator("#notification-bell-count")
    page.wait_for_function("document.getElementById('notification-bell-count').textContent === '1'")
    page.locator("#inbox-list li").first.wait_for()  # the list loads on its own request, after the count
    assert page.locator("#inbox-list li").count() == 1
    assert "Welcome aboard" in page.inner_text("#inbox-list")
    # One page holds everything: no "Load more", no empty-state text.
    assert page.locator("#inbox-more").is_hidden() and page.locator("#inbox-empty").is_hidden()

    # A new in-app delivery reaches the open page through the stream.
    notification, deliveries = notification_with_deliveries(organization=organization, recipient=user,
                                                            channels=(Channel.IN_APP,))
    deliver_batch(delivery_ids=[d.pk for d in deliveries])
    page.wait_for_function("document.getElementById('notification-bell-count').textContent === '2'")
    page.locator(f'#inbox-list li[data-id="{notification.pk}"]').wait_for()
    assert page.locator("#inbox-list li").first.get_attribute("data-id") == str(notification.pk)
    assert "Alice assigned you Fix <login>" in page.inner_text("#inbox-list")  # shown as text, not markup

    page.click(f'#inbox-list li[data-id="{first.pk}"] button[data-action="read"]')
    page.wait_for_function("document.getElementById('notification-bell-count').textContent === '1'")
    first.refresh_from_db()
    assert first.read_at is not None

    page.click(f'#inbox-list li[data-id="{first.pk}"] button[data-action="archive"]')
    page.locator(f'#inbox-list li[data-id="{first.pk}"]').wait_for(state="detached")
    page.click("#inbox-read-all")
    badge.wait_for(state="hidden")
    notification.refresh_from_db()
    assert notification.read_at is not None
    page.click('#inbox-tabs button[data-status="archived"]')
    page.locator(f'#inbox-list li[data-id="{first.pk}"]').wait_for()
    page.close()
    wait_until(lambda: _open_streams() == 0, timeout=20, message="the stream to end with the page")
