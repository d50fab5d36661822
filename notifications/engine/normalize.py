"""One normalization of incoming event payloads, shared by the REST API and the AMQP consumer.

Publishers use either the API's snake_case names or the seed's camelCase ones
(`recipientIds`, `organizationId`, `suggestedCriticality`, `suggestedChannels`, flat
`actorId`/`resourceType`, ...). Everything is mapped to the API's snake_case shape here,
before validation, so both entry points validate exactly the same thing.
"""
from __future__ import annotations

import re
from typing import Any

# camelCase / seed name -> canonical name. Canonical names map to themselves implicitly.
_ALIASES: dict[str, str] = {
    "eventType": "type",
    "event_type": "type",
    "recipientIds": "recipient_ids",
    "userIds": "recipient_ids",
    "organizationId": "organization_id",
    "teamId": "team_id",
    "projectId": "project_id",
    "suggestedCriticality": "criticality",
    "suggested_criticality": "criticality",
    "suggestedChannels": "channels",
    "suggested_channels": "channels",
    "deduplicationKey": "deduplication_key",
    "correlationId": "correlation_id",
    "scheduledFor": "scheduled_for",
    "expiresAt": "expires_at",
    "eventCategory": "category",
    "event_category": "category",
}

# Flat seed fields folded into the nested `actor` / `resource` objects of the API.
_ACTOR_FLAT = {"actorId": "id", "actor_id": "id", "actorType": "type", "actor_type": "type"}
_RESOURCE_FLAT = {
    "resourceType": "type", "resource_type": "type",
    "resourceId": "id", "resource_id": "id",
    "resourceName": "name", "resource_name": "name",
}
_NESTED_KEYS = {"actor": {"actorId": "id", "actorType": "type"}, "resource": {"resourceId": "id", "resourceType": "type", "resourceName": "name"}}
_RECIPIENT_KEYS = {"phoneNumber": "phone", "phone_number": "phone", "displayName": "name", "timeZone": "timezone"}

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def _snake(name: str) -> str:
    return _CAMEL.sub("_", name).lower()


def event_payload_normalize(raw: Any, *, routing_key: str | None = None) -> Any:
    """Return the payload with canonical snake_case keys.

    A non-dict payload is returned unchanged so that validation reports it. The
    routing key stands in for a missing `type` (the bus routes by event type). Unknown
    keys are kept (snake_cased) so the serializer can ignore them; `data` is never
    rewritten, it belongs to the publisher.
    """
    if not isinstance(raw, dict):
        return raw
    out: dict[str, Any] = {}
    actor: dict[str, Any] = {}
    resource: dict[str, Any] = {}
    for key, value in raw.items():
        if not isinstance(key, str):
            continue
        if key in _ACTOR_FLAT:
            actor.setdefault(_ACTOR_FLAT[key], value)
            continue
        if key in _RESOURCE_FLAT:
            resource.setdefault(_RESOURCE_FLAT[key], value)
            continue
        name = _ALIASES.get(key) or (key if key in ("data", "metadata") else _snake(key))
        name = _ALIASES.get(name, name)
        if name in out and key != name and name in raw:
            # Both spellings sent: the canonical one wins.
            continue
        out[name] = value
    for name, flat in (("actor", actor), ("resource", resource)):
        nested = out.get(name)
        if isinstance(nested, dict):
            out[name] = {_NESTED_KEYS[name].get(k, k): v for k, v in nested.items()}
            for k, v in flat.items():
                out[name].setdefault(k, v)
        elif flat and nested is None:
            out[name] = flat
    recipients = out.get("recipients")
    if isinstance(recipients, list):
        out["recipients"] = [
            {_RECIPIENT_KEYS.get(k, _snake(k)) if isinstance(k, str) else k: v for k, v in item.items()}
            if isinstance(item, dict) else item
            for item in recipients
        ]
    if routing_key and not out.get("type"):
        out["type"] = routing_key
    # A user id may come as a number; the API speaks strings.
    if isinstance(out.get("recipient_ids"), list):
        out["recipient_ids"] = [str(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in out["recipient_ids"]]
    for key in ("organization_id", "team_id", "project_id"):
        if isinstance(out.get(key), int) and not isinstance(out.get(key), bool):
            out[key] = str(out[key])
    return out
