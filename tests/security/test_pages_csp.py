"""Every HTML page answers with a strict Content-Security-Policy and the landing page's security
headers, and the pages (ours, the Django admin, the API docs) work under it in a real Chromium."""
from __future__ import annotations

from urllib.parse import urlparse

import pytest
import requests

from invitations.services import invitations_send
from narrations.services import story_create
from notifications.engine.ack import ack_link_url
from providers.unsubscribe import unsubscribe_url_for

from .conftest import WatchedPage, login
from tests.notifications.test_delivery_support import inbox_item

pytestmark = [pytest.mark.postgres, pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _inline_text_narrations(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.NARRATION_ESPEAK_LIBRARY = "/nonexistent/libespeak-ng.so"


@pytest.fixture
def pages(live_server, settings, user, organization):
    """Path of every kind of HTML page → who opens it (None: anonymous)."""
    settings.SITE_URL = live_server.url
    story = story_create(owner=user, title="The Lighthouse", content="Mara climbed the stairs.", characters=[{"name": "Mara"}])
    batch = invitations_send(story=story, inviter=user, items=[{"email": "ada@example.com", "conversation_style": "jovial"}])
    token = next(iter(batch.tokens.values()))
    alert = inbox_item(organization=organization, recipient=user, title="Disk full")
    return {
        "/accounts/login/": None,
        f"/i/{token}": None,
        "/i/not-a-real-token": None,
        urlparse(unsubscribe_url_for(user_id=user.pk)).path: None,
        urlparse(ack_link_url(notification_id=alert.pk)).path: None,
        "/accounts/signup/": None,
        "/accounts/password-reset/": None,
        "/": "user",
        f"/stories/{story.pk}/": "user",
        "/inbox/": "user",
        "/me/": "user",
        "/me/profile/": "user",
        "/me/preferences/": "user",
        "/outbox/": "superuser",
        "/admin/": "superuser",
        "/admin/providers/notificationprovider/add/": "superuser",
        f"/admin/accounts/user/{user.pk}/change/": "superuser",
        "/admin/notifications/notification/": "superuser",
        "/api/v1/docs/": "superuser",
        "/api/v1/redoc/": "superuser",
    }


def _directives(header: str) -> dict[str, list[str]]:
    out = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


def test_every_page_sends_a_strict_csp_and_the_landing_page_headers(live_server, pages, user, superuser):
    sessions = {None: requests.Session()}
    for who, person in (("user", user), ("superuser", superuser)):
        session = requests.Session()
        session.get(f"{live_server.url}/accounts/login/")
        answer = session.post(f"{live_server.url}/accounts/login/", data={
            "username": person.username, "password": "pass-word-123", "csrfmiddlewaretoken": session.cookies["csrftoken"],
        }, headers={"Referer": f"{live_server.url}/accounts/login/"})
        assert answer.status_code == 200, answer.text[:300]
        sessions[who] = session
    for path, who in pages.items():
        response = sessions[who].get(f"{live_server.url}{path}", allow_redirects=False)
        assert response.status_code in (200, 404), (path, response.status_code)
        assert response.headers["Content-Type"].startswith("text/html"), path
        csp = _directives(response.headers.get("Content-Security-Policy", ""))
        assert csp, f"{path}: no Content-Security-Policy"
        script = csp.get("script-src") or csp["default-src"]
        assert "'unsafe-inline'" not in script, (path, script)
        # The admin theme's Alpine.js needs eval, in the staff-only admin and nowhere else.
        assert "'unsafe-eval'" not in script or path.startswith("/admin/"), (path, script)
        # Nothing but our own origin (and a per-response nonce) may provide a script.
        assert all(src in ("'self'", "'unsafe-eval'") or src.startswith("'nonce-") for src in script), (path, script)
        for sources in csp.values():
            assert not any(src.startswith(("http:", "https:", "*")) or "." in src.strip("'") for src in sources
                           if not src.startswith("'nonce-")), (path, sources)
        assert csp["object-src"] == ["'none'"] and csp["frame-ancestors"] == ["'none'"] and csp["base-uri"] == ["'none'"]
        assert response.headers["X-Frame-Options"] == "DENY", path
        assert response.headers["X-Content-Type-Options"] == "nosniff", path
        assert response.headers["Referrer-Policy"] in ("same-origin", "no-referrer"), path
        assert response.headers["Cross-Origin-Opener-Policy"] in ("same-origin", "unsafe-none"), path
        assert "no-store" in response.headers["Cache-Control"] and "private" in response.headers["Cache-Control"], path
        assert "camera=()" in response.headers["Permissions-Policy"], path
    # The invitation link is a credential: its page keeps sending no referrer at all.
    landing = next(path for path in pages if path.startswith("/i/") and "not-a-real" not in path)
    assert requests.get(f"{live_server.url}{landing}").headers["Referrer-Policy"] == "no-referrer"


def test_pages_run_in_chromium_without_a_single_csp_violation(browser, live_server, pages, user, superuser):
    for who, person in ((None, None), ("user", user), ("superuser", superuser)):
        context = browser.new_context()
        page = context.new_page()
        page.set_default_timeout(20_000)
        watched = WatchedPage(page)
        if person is not None:
            login(page, live_server.url, person)
        for path, owner in pages.items():
            if owner != who:
                continue
            page.goto(f"{live_server.url}{path}")
            page.wait_for_load_state("networkidle") if path != "/inbox/" else page.locator("#inbox-list li").first.wait_for()
            if path.startswith("/stories/"):
                page.click("#open-invite")  # the dialog is script-driven: it must open under the CSP
                assert page.locator("#invite-dialog").is_visible()
            if path.startswith("/i/") and "not-a-real" not in path:
                page.locator("#segments li").first.wait_for()
            if path == "/api/v1/docs/":
                page.locator(".swagger-ui .opblock").first.wait_for()  # Swagger UI ran and drew the schema
            if path == "/api/v1/redoc/":
                page.locator("redoc [data-section-id], .api-content").first.wait_for()
            if path.startswith("/admin/providers/notificationprovider/add/"):
                # The admin's own scripts run: the related-object widgets get their buttons.
                page.locator("#id_organization").wait_for(state="attached")
                assert page.evaluate("typeof django !== 'undefined' && typeof django.jQuery === 'function'")
            # An image on a remote host is refused on purpose (Redoc's bundle links its vendor's
            # logo): the CSP doing its job, not a page broken by it.
            # The docs pages add their own stricter <meta> policy: Redoc's search worker (blob:) is
            # refused there on purpose and Redoc searches in the page instead.
            broken = [v for v in watched.violations()
                      if not (v["directive"] == "img-src" and v["blocked"].startswith("https://"))
                      and not (path == "/api/v1/redoc/" and v["directive"] == "worker-src" and v["blocked"] == "blob")]
            assert broken == [], (path, broken)
            page.evaluate("window.__cspViolations = []")
        assert [e for e in watched.csp_console_errors() if "img-src" not in e and "Creating a worker from 'blob:" not in e] == [], \
            watched.csp_console_errors()
        context.close()
