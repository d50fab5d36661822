"""The API documentation: Swagger UI and Redoc served from the project (no CDN), operations
grouped by resource, the Idempotency-Key header and both authentication schemes explained,
and example bodies that work as written."""
from __future__ import annotations

from urllib.parse import urlparse

import pytest

from common.schema import REQUEST_EXAMPLES

pytestmark = [pytest.mark.postgres]


def _schema(client) -> dict:
    response = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


def test_operations_are_tagged_by_resource_and_the_trigger_documents_idempotency(auth_client):
    schema = _schema(auth_client)
    tags = {op["tags"][0] for item in schema["paths"].values() for op in item.values()}
    assert {"events", "notifications", "preferences", "admin: templates", "admin: providers",
            "admin: dead-letters"} <= tags
    assert "api" not in tags
    trigger = schema["paths"]["/api/v1/events/"]["post"]
    assert trigger["tags"] == ["events"]
    [header] = [p for p in trigger["parameters"] if p["name"] == "Idempotency-Key"]
    assert header["in"] == "header" and "Idempotency-Replay" in header["description"]
    schemes = schema["components"]["securitySchemes"]
    assert "Api-Key <key>" in schemes["ApiKeyAuth"]["description"]
    assert "Token <token>" in schemes["tokenAuth"]["description"]


def test_the_docs_pages_reference_no_remote_host(client):
    for url in ("/api/v1/docs/", "/api/v1/redoc/"):
        response = client.get(url)
        assert response.status_code == 200
        html = response.content.decode()
        assert "http://" not in html and "https://" not in html, f"{url} loads something remote"
        assert "<script>" not in html, f"{url} has an inline script"
    script = client.get("/api/v1/docs/?script=")
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")


@pytest.mark.django_db(transaction=True)
def test_the_documented_example_bodies_work(key_client, auth_client, user):
    for (path, method), example in REQUEST_EXAMPLES.items():
        body = dict(example)
        if path == "/api/v1/events/":
            client, body["recipient_ids"] = key_client, [str(user.pk)]  # the demo's id 2 is this user here
        else:
            client = auth_client
        response = getattr(client, method)(path, body, format="json")
        assert 200 <= response.status_code < 300, (path, response.status_code, response.content[:500])


@pytest.fixture
def offline_page(monkeypatch):
    """Chromium with every request to a host other than the test server refused."""
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-background-networking", "--disable-gpu"],
        )
        context = chromium.new_context()
        refused: list[str] = []

        def gate(route):
            host = urlparse(route.request.url).hostname
            if host in ("127.0.0.1", "localhost"):
                route.continue_()
            else:
                refused.append(route.request.url)
                route.abort("internetdisconnected")

        context.route("**/*", gate)
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.refused = refused
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.errors = errors
        yield page
        chromium.close()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_swagger_ui_and_redoc_work_with_the_network_off(offline_page, live_server):
    page = offline_page
    page.goto(f"{live_server.url}/api/v1/docs/")
    page.locator(".opblock-tag-section").first.wait_for()
    sections = page.locator(".opblock-tag").all_inner_texts()
    assert any(s.startswith("events") for s in sections) and any(s.startswith("admin: templates") for s in sections)

    # The trigger: its Idempotency-Key header and its example body.
    page.locator("#operations-events-api_v1_events_create .opblock-summary").click()
    trigger = page.locator("#operations-events-api_v1_events_create")
    trigger.get_by_text("Idempotency-Key").first.wait_for()
    assert "task.assigned" in trigger.inner_text()

    # The Authorize dialog says what to type for each scheme.
    page.locator("button.authorize").first.click()
    dialog = page.locator(".dialog-ux")
    dialog.wait_for()
    text = dialog.inner_text()
    assert "Api-Key <key>" in text and "Token <token>" in text
    page.locator(".dialog-ux button.close-modal").click()

    page.goto(f"{live_server.url}/api/v1/redoc/")
    page.locator("#redoc-container h1").first.wait_for()
    assert "Troubadour API" in page.locator("#redoc-container").inner_text()
    page.get_by_text("Idempotency-Key").first.wait_for(state="attached")
    assert page.refused == [], page.refused
    assert page.errors == [], page.errors
