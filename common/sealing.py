"""Values sealed while they wait in the database: credentials that must reach one message only.

An invitation link carries its token, and the token is the invitee's credential. The link has
to survive from the request that creates the invitation to the worker that sends it (and to
each retry or replay), so it is kept in the notification's data **sealed**: Fernet-encrypted
with `FIELD_ENCRYPTION_KEYS` (or, without them, a key derived from `SECRET_KEY`), bound to
its organization, and deleted once every delivery went out. A copy of the database alone
opens nothing. The delivery engine unseals it only to render the message, and scrubs the
clear value from everything it stores afterwards (rendered content, provider answers,
errors, dead letters).
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

PREFIX = "sealed:v1:"
REDACTED = "[redacted]"
# What a reader (admin, API, dead letter) sees in place of a sealed value.
MASK = "[sealed]"
# The random part of a sealed value (the token in a link) is what scrubbing removes, wherever it
# appears: an escaped or re-encoded copy of the whole link cannot slip through.
_CREDENTIAL_PART = re.compile(r"[A-Za-z0-9_-]{20,}")


def _fernet() -> MultiFernet:
    configured = [k.encode() if isinstance(k, str) else k for k in getattr(settings, "FIELD_ENCRYPTION_KEYS", []) or []]
    derived = base64.urlsafe_b64encode(hashlib.sha256(b"troubadour-sealed-values:" + settings.SECRET_KEY.encode()).digest())
    # Configured keys encrypt; the derived one still opens what was sealed before they were set.
    return MultiFernet([Fernet(k) for k in [*configured, derived]])


def organization_scope(organization_id: int) -> str:
    return f"organization:{organization_id}"


def value_seal(value: str, *, scope: str) -> str:
    """Seal ``value`` for ``scope`` (e.g. ``"org:12"``): only that scope can open it again."""
    token = _fernet().encrypt(json.dumps({"s": scope, "v": value}).encode()).decode()
    return PREFIX + token


def is_sealed(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def value_unseal(value: str, *, scope: str) -> str | None:
    """The clear value, or None when it cannot be opened (other scope, unknown key, tampered)."""
    if not is_sealed(value):
        return None
    try:
        opened = json.loads(_fernet().decrypt(value[len(PREFIX):].encode()))
    except (InvalidToken, ValueError):
        return None
    if not isinstance(opened, dict) or opened.get("s") != scope or not isinstance(opened.get("v"), str):
        return None
    return opened["v"]


def data_unseal(data: Any, *, scope: str) -> tuple[Any, list[str]]:
    """``data`` with every sealed value opened (or emptied if it cannot be), and the clear values."""
    secrets: list[str] = []

    def walk(value: Any) -> Any:
        if is_sealed(value):
            opened = value_unseal(value, scope=scope)
            if opened:
                secrets.append(opened)
            return opened or ""
        if isinstance(value, Mapping):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return walk(data), secrets


def has_sealed(data: Any) -> bool:
    if is_sealed(data):
        return True
    if isinstance(data, Mapping):
        return any(has_sealed(v) for v in data.values())
    if isinstance(data, list):
        return any(has_sealed(v) for v in data)
    return False


def data_mask(data: Any) -> Any:
    """``data`` for display: sealed values read ``[sealed]``."""
    if is_sealed(data):
        return MASK
    if isinstance(data, Mapping):
        return {k: data_mask(v) for k, v in data.items()}
    if isinstance(data, list):
        return [data_mask(v) for v in data]
    return data


def data_drop_sealed(data: Any) -> Any:
    """``data`` without its sealed values: what stays once the message they were for went out."""
    if isinstance(data, Mapping):
        return {k: data_drop_sealed(v) for k, v in data.items() if not is_sealed(v)}
    if isinstance(data, list):
        return [data_drop_sealed(v) for v in data if not is_sealed(v)]
    return data


def _needles(secrets: Iterable[str]) -> list[str]:
    needles: set[str] = set()
    for secret in secrets:
        if not secret:
            continue
        # A link keeps its readable part ("https://…/i/[redacted]"); a value with no random
        # part is replaced whole.
        needles.update(_CREDENTIAL_PART.findall(secret) or [secret])
    return sorted(needles, key=len, reverse=True)


def scrub(value: Any, secrets: Iterable[str]) -> Any:
    """``value`` (text or JSON-like) with every clear secret, and its random part, replaced."""
    needles = _needles(secrets)
    if not needles:
        return value

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            for needle in needles:
                if needle in item:
                    item = item.replace(needle, REDACTED)
            return item
        if isinstance(item, Mapping):
            return {k: walk(v) for k, v in item.items()}
        if isinstance(item, (list, tuple)):
            return [walk(v) for v in item]
        return item

    return walk(value)


# --- model fields ---------------------------------------------------------------------------

from django.db import models  # noqa: E402  (fields below only; the helpers above need no ORM)


class SealedTextField(models.TextField):
    """Text sealed at rest (read back in clear through the ORM; lookups on it cannot match)."""

    def _scope(self) -> str:
        return f"field:{self.model._meta.label_lower}.{self.name}"

    def from_db_value(self, value, expression, connection):
        if is_sealed(value):
            return value_unseal(value, scope=self._scope()) or ""
        return value

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        return value_seal(value, scope=self._scope()) if value else value


class SealedJSONField(SealedTextField):
    """A JSON document sealed at rest (stored as sealed text)."""

    # What the type checker's Django plugin reads as the attribute's type (a text column underneath).
    _pyi_private_set_type: Any
    _pyi_private_get_type: Any

    def from_db_value(self, value, expression, connection):
        text = super().from_db_value(value, expression, connection)
        if text in (None, ""):
            return {}
        try:
            return json.loads(text)
        except ValueError:
            return {}

    def to_python(self, value):
        return value

    def get_prep_value(self, value):
        if value is None:
            return None
        return value_seal(json.dumps(value, default=str), scope=self._scope())

    def value_to_string(self, obj):
        return json.dumps(self.value_from_object(obj), default=str)
