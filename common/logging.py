"""Logging: secrets masked before anything is written, and JSON lines carrying request and
correlation ids from the HTTP request or AMQP message through Celery to the provider call."""
from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from pythonjsonlogger.json import JsonFormatter as _JsonFormatterBase

# Invitation links are credentials: their token never reaches a log line (request logs of the
# landing page and of the by-token API, a provider's error echoing a message, ...).
_INVITATION_PATHS = re.compile(r"(/i/|/by-token/)[A-Za-z0-9_-]+")

_PATTERNS = [
    re.compile(r"(?i)(authorization|api[_-]?key|token|secret|password|auth_token)(\"?\s*[:=]\s*\"?)([^\s\"',}]+)"),
    re.compile(r"(?i)(Bearer|Basic|Token|Api-Key)\s+[A-Za-z0-9._~+/=-]{8,}"),
]


def redact(text: str) -> str:
    # Scheme + credential first ("Authorization: Bearer xyz"), then key=value pairs.
    text = _INVITATION_PATHS.sub(lambda m: f"{m.group(1)}***", text)
    text = _PATTERNS[1].sub(lambda m: f"{m.group(1)} ***", text)
    return _PATTERNS[0].sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)


class RedactSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is not our business here
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


# --- structured logs: one JSON object per line, with the request and correlation ids ---------------

REQUEST_ID: ContextVar[str] = ContextVar("request_id", default="")
CORRELATION_ID: ContextVar[str] = ContextVar("correlation_id", default="")
# Celery message headers that carry the ids from the publishing process to the task.
REQUEST_ID_HEADER = "troubadour_request_id"
CORRELATION_ID_HEADER = "troubadour_correlation_id"
_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,100}$")


def clean_id(value: Any) -> str:
    """An id taken from outside (a header, a message): kept if it is short and plain, else dropped."""
    text = str(value or "").strip()
    return text if _ID_PATTERN.match(text) else ""


def new_id() -> str:
    return uuid.uuid4().hex


@contextmanager
def log_context(*, request_id: str = "", correlation_id: str = "") -> Iterator[None]:
    """Within the block, every log line carries these ids (and Celery tasks published from it)."""
    tokens = [REQUEST_ID.set(clean_id(request_id) or new_id())]
    tokens.append(CORRELATION_ID.set(clean_id(correlation_id) or CORRELATION_ID.get() or REQUEST_ID.get()))
    try:
        yield
    finally:
        CORRELATION_ID.reset(tokens[1])
        REQUEST_ID.reset(tokens[0])


def bind_correlation_id(value: Any) -> None:
    """An event named its own correlation id: it follows the rest of this request or task."""
    cleaned = clean_id(value)
    if cleaned:
        CORRELATION_ID.set(cleaned)


class ContextIdsFilter(logging.Filter):
    """Adds request_id and correlation_id (empty outside a request, task or message)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        record.correlation_id = CORRELATION_ID.get()
        return True


_SECRET_KEYS = re.compile(r"(?i)(authorization|api[_-]?key|token|secret|password|auth_token|credential)")


def _redact_value(key: str, value: Any) -> Any:
    if _SECRET_KEYS.search(key):
        return "***"
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_value(key, v) for v in value]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    # Anything else is written as its text (Django's `request` extra: "<WSGIRequest: GET '/i/…'>").
    return redact(str(value))


class JsonFormatter(_JsonFormatterBase):
    """python-json-logger's formatter: `ts, level, logger, message, request_id, correlation_id`
    plus any `extra={...}` fields, whose secrets are masked like the message's."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("rename_fields", {"asctime": "ts", "levelname": "level", "name": "logger"})
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(correlation_id)s", **kwargs)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds")

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        return {k: (v if k in ("message", "ts", "level", "logger") else _redact_value(k, v)) for k, v in log_data.items()}

    def formatException(self, ei) -> str:  # noqa: N802  (logging's name)
        formatted = super().formatException(ei)
        return redact(formatted if isinstance(formatted, str) else "\n".join(formatted))
