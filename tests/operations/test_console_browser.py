"""The staff console in Chromium: the admin index is an operator dashboard whose charts are
drawn from real rows, every chart links to the filtered list behind it, the sidebar groups
models by task, and read-only records offer no Add or Delete."""
from __future__ import annotations

import pytest

from accounts.models import User
from tests.conftest import chromium
from tests.operations.console_support import console_world

pytestmark = [pytest.mark.postgres, pytest.mark.browser]


@pytest.fixture(scope="module")
def browser():
    with chromium("--disable-background-networking", "--disable-gpu") as launched:
        yield launched


def _signed_in_page(browser, live_server):
    User.objects.create_superuser(username="operator", email="ops@example.com", password="pass-word-123")
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    refused: list[str] = []

    def gate(route):
        if route.request.url.startswith(live_server.url):
            route.continue_()
        else:  # nothing of the console may come from another host
            refused.append(route.request.url)
            route.abort()

    context.route("**/*", gate)
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("input[name=username]", "operator")
    page.fill("input[name=password]", "pass-word-123")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")
    return page, refused, errors


@pytest.mark.django_db(transaction=True)
def test_the_dashboard_draws_real_numbers_and_links_to_the_lists(browser, live_server, organization, tmp_path):
    world = console_world(organization)
    page, refused, errors = _signed_in_page(browser, live_server)
    dashboard = page.locator("#operator-dashboard")
    dashboard.wait_for()
    page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)

    # Tiles: one open dead letter, one held delivery, one scheduled notification.
    assert dashboard.locator("[data-tile='Open dead letters'] .console-tile-value").inner_text() == "1"
    assert dashboard.locator("[data-tile='Held (quiet hours)'] .console-tile-value").inner_text() == "1"
    assert dashboard.locator("[data-tile='Scheduled'] .console-tile-value").inner_text() == "1"

    # Last 24 h per channel: EMAIL 10 deliveries, 8 ok / 2 failed = 80 %, PUSH (3 days old) absent.
    day = dashboard.locator("[data-window='24h'] [data-chart='per channel']")
    email = day.locator(".console-bar[data-key='EMAIL']")
    text = email.locator("text.console-value").text_content()
    assert text.startswith("10 · 80% · p50 4.5 s · p95 7.")  # sent 1..8 s after creation
    ok_width = float(email.locator("rect.bar-ok").get_attribute("width"))
    failed_width = float(email.locator("rect.bar-failed").get_attribute("width"))
    assert ok_width == pytest.approx(4 * failed_width)  # drawn from the counts
    assert day.locator(".console-bar[data-key='PUSH']").count() == 0
    week = dashboard.locator("[data-window='7d'] [data-chart='per channel']")
    assert week.locator(".console-bar[data-key='PUSH'] text.console-value").text_content().startswith("2 · 100%")
    assert dashboard.locator("[data-window='24h'] [data-chart='per provider'] .console-bar[data-key='log_sms']").count() == 1

    # Providers: the primary's circuit is open, the sparkline has its twelve checks, four failed.
    primary = dashboard.locator("#console-providers tr", has_text="SMS primary")
    assert primary.locator("[data-circuit]").get_attribute("data-circuit") == "open"
    assert primary.locator("svg.console-spark circle").count() == 4
    assert len(primary.locator("svg.console-spark polyline").get_attribute("points").split()) == 12
    backup = dashboard.locator("#console-providers tr", has_text="SMS backup")
    assert backup.locator("[data-circuit]").get_attribute("data-circuit") == "closed"

    # Costs: fourteen days of bars.
    assert dashboard.locator("#console-costs rect.cost-bar").count() == 14

    # A bar opens the filtered delivery list: the ten EMAIL deliveries of the last 24 hours.
    email.locator("rect.bar-ok").click()
    page.wait_for_url("**/admin/notifications/notificationdelivery/?**")
    assert "channel__exact=EMAIL" in page.url and "created_at__gte=" in page.url
    assert page.locator("#result_list tbody tr").count() == 10
    # The dead-letter tile opens the open dead letters.
    page.goto(f"{live_server.url}/admin/")
    page.locator("[data-tile='Open dead letters']").click()
    page.wait_for_url("**/admin/notifications/deadletter/?status__exact=OPEN")
    assert page.locator("#result_list tbody tr").count() == 1
    assert refused == [] and errors == []
    assert world["held"].status == "HELD"


@pytest.mark.django_db(transaction=True)
def test_the_sidebar_groups_models_by_task_and_read_only_records_have_no_add_or_delete(browser, live_server, organization):
    console_world(organization)
    page, refused, errors = _signed_in_page(browser, live_server)
    sidebar = page.locator("#nav-sidebar-apps, nav").first
    text = page.locator("body").inner_text()
    for group in ("Delivery", "Content", "Routing", "Providers", "People", "Audit"):
        assert group in text
    assert sidebar.count() == 1

    for model in ("notifications/notificationdelivery", "notifications/notificationauditlog", "providers/providerhealthmetric",
                  "providers/providercostdaily", "notifications/deadletter"):
        page.goto(f"{live_server.url}/admin/{model}/")
        page.locator("#result_list, .changelist, main").first.wait_for()
        assert page.locator(f"a[href$='/admin/{model}/add/']").count() == 0, model
        assert page.locator("select[name=action] option[value=delete_selected]").count() == 0, model
    assert refused == [] and errors == []
