"""One exception tree for the whole project; the API maps it to HTTP once (common.api)."""
from __future__ import annotations

from typing import Any


class TroubadourError(Exception):
    status_code = 400
    default_detail = "Request could not be processed."

    def __init__(self, detail: Any = None, *, code: str | None = None) -> None:
        self.detail = detail if detail is not None else self.default_detail
        self.code = code
        super().__init__(str(self.detail))


class ValidationError(TroubadourError):
    """Bad input. `detail` is a message, or a dict/list of per-field / per-item errors."""

    status_code = 400


class PermissionDenied(TroubadourError):
    status_code = 403
    default_detail = "You do not have permission to do this."


class NotFound(TroubadourError):
    status_code = 404
    default_detail = "Not found."


class Conflict(TroubadourError):
    status_code = 409
    default_detail = "Conflict."


class Gone(TroubadourError):
    status_code = 410
    default_detail = "This resource is no longer available."


class Unprocessable(TroubadourError):
    status_code = 422


class RateLimited(TroubadourError):
    status_code = 429
    default_detail = "Too many requests."

    def __init__(self, detail: Any = None, *, code: str | None = None, retry_after: int | None = None) -> None:
        super().__init__(detail, code=code)
        self.retry_after = retry_after  # seconds; the API answers it as Retry-After


class ProviderError(TroubadourError):
    """A provider (email, SMS, TTS, ...) refused or failed a call."""

    status_code = 502

    def __init__(self, detail: Any = None, *, code: str | None = None, response: Any = None) -> None:
        super().__init__(detail, code=code)
        self.response = response


class ProviderTransientError(ProviderError):
    """Timeouts, connection errors, 429, 5xx: worth another provider or a later retry."""


class ProviderPermanentError(ProviderError):
    """Invalid recipient, auth, validation: retrying will not help."""
