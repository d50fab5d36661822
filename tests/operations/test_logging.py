"""Structured logs: one JSON object per line, ids from the request, secrets masked."""
from __future__ import annotations

import json
import logging

import pytest

from common.logging import ContextIdsFilter, JsonFormatter, RedactSecretsFilter, log_context


def _format(record_args: dict, **extra) -> dict:
    record = logging.LogRecord("providers.send", logging.INFO, __file__, 1, record_args["msg"], record_args.get("args"), None)
    for key, value in extra.items():
        setattr(record, key, value)
    for f in (ContextIdsFilter(), RedactSecretsFilter()):
        f.filter(record)
    line = JsonFormatter().format(record)
    assert "\n" not in line
    return json.loads(line)


def test_a_log_line_is_one_json_object_with_the_ids_and_no_secret():
    with log_context(request_id="req-1", correlation_id="order-9"):
        data = _format({"msg": "POST with Authorization: Bearer abcdefghijklmnop and %s", "args": ("password=hunter2",)},
                       api_key="live_123456789", config={"auth_token": "tok", "region": "eu"}, to="+33600000000")
    assert data["message"].startswith("POST with Authorization: ***") and data["message"].endswith("password=***")
    assert "abcdefghijklmnop" not in data["message"]
    assert data["request_id"] == "req-1" and data["correlation_id"] == "order-9"
    assert data["level"] == "INFO" and data["logger"] == "providers.send" and data["ts"].endswith("+00:00")
    assert data["api_key"] == "***" and data["config"] == {"auth_token": "***", "region": "eu"}
    assert "hunter2" not in json.dumps(data) and "live_123" not in json.dumps(data)


def test_outside_a_request_the_ids_are_empty_and_a_nested_context_restores_them():
    assert _format({"msg": "beat"})["request_id"] == ""
    with log_context(request_id="outer"):
        with log_context(request_id="inner"):
            assert _format({"msg": "x"})["request_id"] == "inner"
        data = _format({"msg": "y"})
    assert data["request_id"] == "outer" and data["correlation_id"] == "outer"


@pytest.mark.postgres
@pytest.mark.django_db
def test_every_answer_names_its_request_id(client):
    given = client.get("/health/live", HTTP_X_REQUEST_ID="edge-7f3a")
    assert given["X-Request-ID"] == "edge-7f3a"
    made = client.get("/health/live")
    assert len(made["X-Request-ID"]) == 32
    hostile = client.get("/health/live", HTTP_X_REQUEST_ID='x" injected\nline')
    assert hostile["X-Request-ID"] != 'x" injected\nline' and len(hostile["X-Request-ID"]) == 32
