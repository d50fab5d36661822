"""Provider credentials at rest, and the one place they are resolved.

Encryption: Fernet with `settings.FIELD_ENCRYPTION_KEYS` (comma separated, newest first;
MultiFernet decrypts with any and encrypts with the first, so keys rotate by prepending).
Without keys, DEBUG and the embedded run derive one from SECRET_KEY; production refuses to
store a secret rather than store it weakly.

Resolution precedence, per credential key (first non-empty wins):
  1. the record's own encrypted `secrets`;
  2. the record's `secret_env_refs` ({"auth_token": "ACME_TWILIO_TOKEN"}): that variable;
  3. for an organization's record, the global record of the same provider code
     (its secrets, then its env refs) — an organization may override only some keys;
  4. the provider's default environment variables (`BaseProvider.env_credentials`).
Environment references (2, and a global record's in 3) read only variables named in
`settings.PROVIDER_SECRET_ENV_ALLOWLIST`, and never the platform's own keys (SECRET_KEY, the
database, broker and cache URLs, the field encryption keys…), even if listed: a record that
names another variable is refused when saved and resolves nothing from it at send time.
Steps 3 and 4 only apply while an organization's record talks to the same endpoints as the
platform: a record whose config points elsewhere (`CONNECTION_PARAMS`) gets its own
credentials only, or an organization admin could have the platform's keys sent to a host
of their choosing.
Nothing here logs a value.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterable
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .registry import registry

MASK = "********"
# Config keys that decide where a provider connects, hence where its credentials are sent.
CONNECTION_PARAMS = ("base_url", "api_url", "endpoint_url", "rest_host", "api_host", "host")


class SecretsUnavailable(ImproperlyConfigured):
    pass


def _keys() -> list[bytes]:
    keys = [k.encode() if isinstance(k, str) else k for k in getattr(settings, "FIELD_ENCRYPTION_KEYS", []) or []]
    if keys:
        return keys
    if settings.DEBUG or os.environ.get("TROUBADOUR_EMBEDDED") == "1" or not getattr(settings, "DATABASE_URL", ""):
        # Development only: stable across restarts, useless without SECRET_KEY.
        digest = hashlib.sha256(b"troubadour-provider-secrets:" + settings.SECRET_KEY.encode()).digest()
        return [base64.urlsafe_b64encode(digest)]
    raise SecretsUnavailable(
        "FIELD_ENCRYPTION_KEYS is not set: generate one with "
        "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`."
    )


def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(k) for k in _keys()])


def secrets_encrypt(values: dict[str, Any]) -> str:
    """Encrypt a credential dict for `NotificationProvider.secrets`. Empty dict → ""."""
    clean = {k: v for k, v in (values or {}).items() if v not in (None, "")}
    if not clean:
        return ""
    return _fernet().encrypt(json.dumps(clean, sort_keys=True).encode()).decode()


def secrets_decrypt(token: str) -> dict[str, Any]:
    if not token:
        return {}
    try:
        return json.loads(_fernet().decrypt(token.encode()))
    except InvalidToken:
        # Never echo the token; the key set is what is wrong.
        raise SecretsUnavailable("Stored provider secrets cannot be decrypted with FIELD_ENCRYPTION_KEYS.") from None


def secrets_rotate(token: str) -> str:
    """Re-encrypt with the newest key (after prepending a key to FIELD_ENCRYPTION_KEYS)."""
    return _fernet().rotate(token.encode()).decode() if token else ""


def mask_value(value: Any) -> str:
    text = str(value or "")
    if not text:
        return ""
    # Long random tokens keep their last 4 characters so operators can tell keys apart.
    return f"{MASK}{text[-4:]}" if len(text) >= 16 else MASK


def mask_secrets(values: dict[str, Any]) -> dict[str, str]:
    return {k: mask_value(v) for k, v in (values or {}).items()}


def mask_record_secrets(record) -> dict[str, str]:
    """Masked view of a record's stored secrets, for the admin and the API."""
    try:
        values = secrets_decrypt(record.secrets or "")
    except SecretsUnavailable:
        return {"error": "undecryptable"}
    masked = mask_secrets(values)
    for key, env_name in (record.secret_env_refs or {}).items():
        masked.setdefault(key, f"env:{env_name}")
    return masked


# The platform's own secrets and connection strings: never a provider credential, whatever the
# allowlist says (a record referencing SECRET_KEY would mail it to any endpoint it names).
ENV_NEVER_REFERENCED = frozenset({
    "SECRET_KEY", "DJANGO_SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL", "EVENT_BUS_URL", "REDIS_URL",
    "FIELD_ENCRYPTION_KEYS", "METRICS_TOKEN", "EMAIL_HOST_PASSWORD", "ANYMAIL_WEBHOOK_SECRET", "VAPID_PRIVATE_KEY",
})


def env_reference_problem(name: object) -> str | None:
    """Why a provider record may not read environment variable `name`, or None if it may."""
    if not isinstance(name, str) or not name:
        return "Values must be environment variable names."
    allowed = set(getattr(settings, "PROVIDER_SECRET_ENV_ALLOWLIST", ()) or ())
    if name.upper() in ENV_NEVER_REFERENCED or name.upper().startswith(("DJANGO_", "POSTGRES", "PG")):
        return f"{name} is one of the platform's own secrets; it can never be a provider credential."
    if name not in allowed:
        return f"{name} is not in PROVIDER_SECRET_ENV_ALLOWLIST."
    return None


def env_references_check(refs: object) -> list[str]:
    """Problems of a record's `secret_env_refs` ({param: VARIABLE}); empty when all are allowed."""
    if not refs:
        return []
    if not isinstance(refs, dict):
        return ["Must be an object of parameter names to environment variable names."]
    return [f"{key}: {problem}" for key, name in refs.items() if (problem := env_reference_problem(name))]


def _layer(record) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, env_name in (getattr(record, "secret_env_refs", None) or {}).items():
        if env_reference_problem(env_name):
            continue  # stored before the allowlist, or the allowlist shrank: resolve nothing from it
        env_value = os.environ.get(str(env_name), "")
        if env_value:
            values[key] = env_value
    values.update({k: v for k, v in secrets_decrypt(getattr(record, "secrets", "") or "").items() if v not in (None, "")})
    return values


def own_credentials(record) -> dict[str, Any]:
    """A record's own secrets and environment references, nothing inherited."""
    return _layer(record)


def resolve_credentials(provider_record=None, *, code: str | None = None, global_records: Iterable[Any] | None = None) -> dict[str, Any]:
    """Credentials for one provider record (or, with `code` only, for the environment default).

    `global_records` lets a caller that already loaded the global records avoid a query.
    """
    code = code or provider_record.code
    cls = registry.get(code)
    organization_record = provider_record is not None and provider_record.organization_id is not None
    platform = None
    if organization_record:
        if global_records is None:
            from .models import NotificationProvider

            global_records = NotificationProvider.objects.filter(organization__isnull=True, code=code, is_active=True).order_by("priority", "pk")[:1]
        platform = next((r for r in global_records if r.code == code and r.organization_id is None), None)
        own = _layer(provider_record)
        if redirects_connection({**(provider_record.config or {}), **own},
                                {**(platform.config or {}), **_layer(platform)} if platform is not None else {}):
            return own
    resolved: dict[str, Any] = {}
    for key, env_name in cls.env_credentials.items():
        if os.environ.get(env_name):
            resolved[key] = os.environ[env_name]
    if platform is not None:
        resolved.update(_layer(platform))
    if provider_record is not None:
        resolved.update(_layer(provider_record))
    return resolved


def redirects_connection(own: dict[str, Any], reference: dict[str, Any]) -> bool:
    """Do these settings (config and credentials: `BaseProvider.setting` reads both) connect
    somewhere else than the reference ones — the platform record's, or the provider's default
    endpoints when there is none?"""
    return any(own.get(key) not in (None, "") and own.get(key) != reference.get(key) for key in CONNECTION_PARAMS)
