"""The OpenAPI schema is what clients generate code from: it must build cleanly and match the answers."""
from __future__ import annotations

import pytest
from django.core.management import call_command

pytestmark = [pytest.mark.postgres]


def test_schema_builds_without_warnings_or_errors(tmp_path):
    # --fail-on-warn turns every "unable to guess serializer", enum-name and operationId collision into an error.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))

    text = (tmp_path / "schema.yaml").read_text()
    assert "/api/v1/admin/providers/{provider_id}/" in text
    assert "operationId: admin_providers_list" in text


def _schema(client) -> dict:
    response = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


def _response_schema(schema: dict, path: str, method: str = "get", code: str = "200") -> dict:
    node = schema["paths"][path][method]["responses"][code]["content"]["application/json"]["schema"]
    if "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
    return node


@pytest.mark.parametrize("path", ["/api/v1/notifications/", "/api/v1/admin/audit-log/", "/api/v1/admin/history/"])
def test_cursor_paginated_lists_are_documented_as_pages(auth_client, path):
    page = _response_schema(_schema(auth_client), path)

    assert page["type"] == "object"
    assert set(page["properties"]) == {"next", "previous", "results"}
    assert page["properties"]["results"]["type"] == "array"


def test_story_invitations_list_is_documented_as_an_array(auth_client):
    listing = _response_schema(_schema(auth_client), "/api/v1/stories/{story_id}/invitations/")

    assert listing["type"] == "array"


def test_every_operation_documents_its_error_answers(auth_client):
    schema = _schema(auth_client)

    for path, item in schema["paths"].items():
        for method, operation in item.items():
            codes = set(operation["responses"])
            assert any(code.startswith("4") for code in codes), f"{method.upper()} {path} documents no 4xx"
    assert "detail" in schema["components"]["schemas"]["Error"]["properties"]
