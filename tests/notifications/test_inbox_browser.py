"""The bell and the inbox page in Chromium against the production web tier process: live
updates over the WebSocket (with acknowledgements), the SSE fallback, inbox actions, and the
"turn on notifications" control subscribing the browser for Web Push."""
from __future__ import annotations

import base64

import pytest

from notifications.engine.delivery import deliver_batch
from notifications.engine.presence import presence_online_user_ids
from notifications.enums import Channel, DeliveryStatus
from notifications.models import NotificationDelivery
from tests.conftest import chromium, wait_until

from .realtime_support import server_password, start_web_tier
from .test_delivery_support import event_type_with_template, inbox_item, notification_with_deliveries

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.rabbitmq, pytest.mark.browser,
              pytest.mark.django_db(transaction=True)]


def _vapid_keys() -> tuple[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    raw_private = key.private_numbers().private_value.to_bytes(32, "big")
    public = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()  # noqa: E731
    return b64(public), b64(raw_private)


@pytest.fixture
def web_tier(transactional_db, tmp_path):
    public, private = _vapid_keys()
    tier = start_web_tier(tmp_path, env={"VAPID_PUBLIC_KEY": public, "VAPID_PRIVATE_KEY": private})
    yield tier
    tier.stop()


@pytest.fixture(scope="module")
def browser():
    with chromium("--disable-gpu") as launched:
        yield launched


def _sign_in(context, tier, user, next_path: str = "/inbox/"):
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(f"{tier.url}/accounts/login/?next={next_path}")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", server_password(user))
    page.click("button[type=submit]")
    page.wait_for_url(f"{tier.url}{next_path}")
    return page


def _count_is(page, value: str) -> None:
    _until(page, f"document.getElementById('notification-bell-count').textContent === '{value}'")


def _until(page, expression: str, timeout: float = 20.0) -> None:
    """Poll `expression` from the test: the page's CSP refuses the string evaluation that
    page.wait_for_function needs once it has to poll in the page."""
    import time

    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout} s: {expression}")
        page.wait_for_timeout(100)


def test_bell_and_inbox_update_live_over_the_socket(browser, web_tier, user, organization):
    event_type_with_template()
    first = inbox_item(organization=organization, recipient=user, title="Welcome aboard", body="Glad you're here.")
    context = browser.new_context()
    page = _sign_in(context, web_tier, user)
    _count_is(page, "1")
    page.locator("#inbox-list li").first.wait_for()
    assert page.locator("#inbox-list li").count() == 1 and "Welcome aboard" in page.inner_text("#inbox-list")

    # A new in-app delivery reaches the open page: bell and list, no reload.
    notification, deliveries = notification_with_deliveries(organization=organization, recipient=user,
                                                            channels=(Channel.IN_APP,))
    deliver_batch(delivery_ids=[d.pk for d in deliveries])
    _count_is(page, "2")
    page.locator(f'#inbox-list li[data-id="{notification.pk}"]').wait_for()
    assert page.locator("#inbox-list li").first.get_attribute("data-id") == str(notification.pk)
    assert "Alice assigned you Fix <login>" in page.inner_text("#inbox-list")  # shown as text, not markup
    # The page acknowledged the frame: the delivery is DELIVERED.
    wait_until(lambda: NotificationDelivery.objects.get(pk=deliveries[0].pk).status == DeliveryStatus.DELIVERED,
               timeout=10, message="the page's ack")

    # A second tab (another page of the site) hears the same items; reading one updates both counts.
    other = context.new_page()
    other.goto(f"{web_tier.url}/inbox/")
    _count_is(other, "2")
    page.click(f'#inbox-list li[data-id="{notification.pk}"] button[data-action="read"]')
    _count_is(page, "1")
    _count_is(other, "1")
    assert NotificationDelivery.objects.get(pk=deliveries[0].pk).status == DeliveryStatus.OPENED

    page.click(f'#inbox-list li[data-id="{first.pk}"] button[data-action="archive"]')
    page.locator(f'#inbox-list li[data-id="{first.pk}"]').wait_for(state="detached")
    page.click("#inbox-read-all")
    page.locator("#notification-bell-count").wait_for(state="hidden")
    context.close()


def test_the_page_reconnects_after_the_web_tier_restarts_and_loses_nothing(browser, web_tier, user, organization, tmp_path):
    """The web tier goes down with the page open, an item is published meanwhile; the restarted
    tier (same port) gets it from the durable queue and the page, reconnecting with backoff,
    shows it; a later item arrives live and shows a toast (the default IN_APP type)."""
    event_type_with_template()
    context = browser.new_context()
    page = _sign_in(context, web_tier, user)
    page.locator("#notification-bell-count").wait_for(state="hidden")  # nothing unread yet
    wait_until(lambda: presence_online_user_ids(user_ids=[user.pk]) == {user.pk}, timeout=10, message="socket open")

    port, env = web_tier.port, web_tier.env
    web_tier.stop()
    during, deliveries = notification_with_deliveries(organization=organization, recipient=user, title="While down")
    deliver_batch(delivery_ids=[d.pk for d in deliveries])  # published to the exchange; nobody consumes
    restarted = start_web_tier(tmp_path, port=port, env={k: env[k] for k in ("VAPID_PUBLIC_KEY", "VAPID_PRIVATE_KEY")})
    try:
        _count_is(page, "1")
        page.locator(f'#inbox-list li[data-id="{during.pk}"]').wait_for()
        wait_until(lambda: presence_online_user_ids(user_ids=[user.pk]) == {user.pk}, timeout=30,
                   message="the page reconnected")

        live, deliveries = notification_with_deliveries(organization=organization, recipient=user)
        deliver_batch(delivery_ids=[d.pk for d in deliveries])
        _count_is(page, "2")
        page.locator(f'#inbox-list li[data-id="{live.pk}"]').wait_for()
        page.locator(".toast", has_text="Alice assigned you Fix <login>").wait_for()
        wait_until(lambda: NotificationDelivery.objects.get(pk=deliveries[0].pk).status == DeliveryStatus.DELIVERED,
                   timeout=10, message="the page's ack after the restart")
    finally:
        context.close()
        restarted.stop()


def test_without_websocket_the_page_falls_back_to_the_stream(browser, web_tier, user, organization):
    event_type_with_template()
    context = browser.new_context()
    context.add_init_script("delete window.WebSocket;")
    page = _sign_in(context, web_tier, user)
    page.locator("#inbox-empty").wait_for()
    # The stream is open (it counts as a live connection) before the item is sent.
    wait_until(lambda: presence_online_user_ids(user_ids=[user.pk]) == {user.pk}, timeout=20,
               message="the stream open")
    notification, deliveries = notification_with_deliveries(organization=organization, recipient=user,
                                                            channels=(Channel.IN_APP,))
    deliver_batch(delivery_ids=[d.pk for d in deliveries])
    _count_is(page, "1")
    page.locator(f'#inbox-list li[data-id="{notification.pk}"]').wait_for()
    context.close()


# Chromium subscribes through its vendor's push service (FCM), which a test machine cannot reach:
# the page's code runs for real (service worker, permission, subscribe with our VAPID key, the
# API calls), and only the push service's answer is played by a stand-in subscription.
PUSH_SERVICE_STANDIN = r"""
(() => {
  const endpoint = "https://fcm.googleapis.com/fcm/send/standin-" + Math.random().toString(36).slice(2);
  const b64 = (bytes) => btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  let current = null;
  window.__pushKeys = [];
  PushManager.prototype.getSubscription = function () { return Promise.resolve(current); };
  PushManager.prototype.subscribe = function (options) {
    window.__pushKeys.push(b64(new Uint8Array(options.applicationServerKey)));
    if (Notification.permission !== "granted") return Promise.reject(new DOMException("denied", "NotAllowedError"));
    current = {
      endpoint: endpoint,
      unsubscribe: () => { current = null; return Promise.resolve(true); },
      toJSON: () => ({ endpoint: endpoint, expirationTime: null,
                       keys: { p256dh: "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM",
                               auth: "tBHItJI5svbpez7KI4CCXg" } }),
    };
    return Promise.resolve(current);
  };
})();
"""


def test_turn_on_notifications_subscribes_the_browser_for_web_push(browser, web_tier, user):
    from providers.models import PushSubscription

    context = browser.new_context()
    context.grant_permissions(["notifications"], origin=web_tier.url)
    context.add_init_script(PUSH_SERVICE_STANDIN)
    page = _sign_in(context, web_tier, user)
    toggle = page.locator("#push-toggle")
    toggle.wait_for(state="visible")
    # The service worker is served (from static files) and registered for real.
    _until(page, "navigator.serviceWorker.getRegistrations().then(rs => rs.length > 0)")
    assert toggle.inner_text() == "Turn on notifications"
    toggle.click()
    _until(page, "document.getElementById('push-toggle').dataset.subscribed === 'true'")
    assert page.evaluate("window.__pushKeys") == [web_tier.env["VAPID_PUBLIC_KEY"]]
    subscription = wait_until(lambda: PushSubscription.objects.filter(user=user).first(), timeout=10,
                              message="the subscription registered")
    assert subscription.endpoint.startswith("https://fcm.googleapis.com/") and subscription.auth
    assert "on for this device" in page.inner_text("#push-status")
    toggle.click()
    _until(page, "document.getElementById('push-toggle').dataset.subscribed === 'false'")
    wait_until(lambda: not PushSubscription.objects.filter(user=user).exists(), timeout=10,
               message="the subscription removed")
    context.close()


def test_the_items_own_actions_are_buttons_that_call_the_action_endpoint(browser, web_tier, user, organization):
    from notifications.enums import AuditAction
    from notifications.models import Notification, NotificationAuditLog

    event_type_with_template()
    item = inbox_item(organization=organization, recipient=user, title="Deploy apollo-7 failed", channel_options={"IN_APP": {
        "type": "banner", "actions": [{"id": "rollback", "label": "Roll back", "action": "custom", "data": {"deploy": 7}},
                                      {"id": "later", "label": "Later", "action": "dismiss"}]}})
    context = browser.new_context()
    page = _sign_in(context, web_tier, user)
    row = page.locator(f'#inbox-list li[data-id="{item.pk}"]')
    row.wait_for()
    assert "inbox-banner" in (row.get_attribute("class") or "")

    page.click(f'#inbox-list li[data-id="{item.pk}"] button[data-item-action="rollback"]')
    wait_until(lambda: NotificationAuditLog.objects.filter(action=AuditAction.DELIVERY_CLICKED, notification_id=item.pk).exists(),
               timeout=10, message="the custom action")
    page.locator(f'#inbox-list li[data-id="{item.pk}"]:not(.unread)').wait_for()  # read, still listed

    page.click(f'#inbox-list li[data-id="{item.pk}"] button[data-item-action="later"]')
    row.wait_for(state="detached")
    assert Notification.objects.get(pk=item.pk).archived_at is not None
    context.close()
