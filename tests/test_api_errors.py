"""Errors Django answers before any view runs are JSON under /api/ (and stay HTML for pages)."""
from __future__ import annotations

import pytest

pytestmark = [pytest.mark.postgres]


@pytest.mark.parametrize("path", [
    "/api/v1/admin/dead-letters/null,null/", "/api/v1/stories/abc/", "/api/v1/no-such-thing/",
])
def test_an_api_url_matching_no_route_is_a_json_404(auth_client, path):
    response = auth_client.get(path)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found."}


def test_a_page_url_matching_no_route_stays_html(client, db):
    response = client.get("/no-such-page/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_a_form_with_too_many_fields_is_a_json_400(key_client, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    body = "&".join(f"recipient_ids={n}" for n in range(20)) + "&type=task.assigned"

    response = key_client.post("/api/v1/events/", body, content_type="application/x-www-form-urlencoded")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Bad request."}
