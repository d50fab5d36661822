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


def test_an_exhausted_connection_pool_is_a_503_to_retry_not_a_500(db):
    """The web tier borrows connections from a pool (DB_POOL_SIZE): when every one stays busy
    past the pool's timeout the request did nothing, and the caller is told to retry."""
    from django.db import OperationalError, connection
    from psycopg_pool import ConnectionPool

    from common.api import exception_handler

    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    pool = ConnectionPool(kwargs=params, min_size=1, max_size=1, timeout=0.2, open=True)
    try:
        with pool.connection(), pytest.raises(OperationalError) as raised:
            with connection.wrap_database_errors:
                pool.getconn()  # the only connection is taken: a real PoolTimeout
    finally:
        pool.close()
    response = exception_handler(raised.value, {})

    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    assert response.data == {"detail": "The service is busy; retry shortly."}
