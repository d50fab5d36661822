"""OpenAPI helpers shared by the apps' API modules."""
from __future__ import annotations

from typing import Any

from drf_spectacular.utils import inline_serializer
from rest_framework import serializers


def cursor_page(serializer_class: type[serializers.BaseSerializer]) -> serializers.Serializer:
    """The schema of a cursor-paginated answer: `{next, previous, results: [<serializer_class>]}`.

    A view that paginates by hand (an APIView, not a generic list view) must declare this
    instead of `serializer_class(many=True)`, or the documented shape is a bare array.
    """
    name = serializer_class.__name__.removesuffix("Serializer")
    return inline_serializer(
        name=f"Paginated{name}List",
        fields={
            "next": serializers.URLField(allow_null=True, help_text="The next page, or null on the last one."),
            "previous": serializers.URLField(allow_null=True),
            "results": serializer_class(many=True),
        },
    )


ERROR_SCHEMA = {
    "type": "object",
    "description": '`{"detail": "..."}`, or per-field errors `{"field": ["message"]}` (nested per item for lists).',
    "properties": {"detail": {}},
    "additionalProperties": True,
}


def document_error_responses(result: dict, generator, request, public: bool) -> dict:
    """Postprocessing hook: every operation may answer a 4xx with the error body of common.api.

    Bad input (400), authentication (401/403), unknown objects (404), conflicts (409/410/422)
    and throttling (429) share one shape; declaring the `4XX` range keeps the documented
    answers honest without repeating it on every view.
    """
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            if not any(str(code).startswith("4") for code in responses):
                responses["4XX"] = {
                    "description": "The request was refused; nothing was changed.",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                }
    return result


# --- tags, headers, examples, security descriptions -------------------------------------------------

_API_PREFIX = "/api/v1/"

TAG_DESCRIPTIONS = {
    "events": "Trigger notifications: one event, any number of recipients.",
    "notifications": "The signed-in user's in-app inbox, traces and the live stream.",
    "preferences": "Channel preferences of the signed-in user (resolved global → user).",
    "quiet-hours": "Quiet hours and do-not-disturb of the signed-in user.",
    "presence": "Presence heartbeats (online/away/dnd) that routing takes into account.",
    "push-subscriptions": "Web Push subscriptions of the signed-in user's browsers.",
    "stories": "Stories and their collaborator invitations.",
    "invitations": "Invitations: managed by the inviter, answered by token.",
    "conversation-styles": "The conversation styles a narration can be told in.",
    "webhooks": "Incoming webhooks that turn a third party's POST into an event.",
}

IDEMPOTENCY_KEY_PARAMETER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "maxLength": 255},
    "description": (
        "Makes a retry safe. The same key with the same body within 24 h answers the first answer "
        "again, with the header `Idempotency-Replay: true`; the same key with another body → 422; "
        "while the first request is still being processed → 409."
    ),
    "example": "task-42-assigned",
}

SECURITY_DESCRIPTIONS = {
    "ApiKeyAuth": (
        "**Organization API key** — for services. Type the whole header value, scheme included: "
        "`Api-Key <key>`. Keys are created by an organization admin in the admin (API keys); "
        "a key acts for its organization only."
    ),
    "tokenAuth": (
        "**Personal token** — for a person's scripts and apps. Type the whole header value, scheme "
        "included: `Token <token>`. A staff token may trigger events for any organization."
    ),
    "cookieAuth": "**Browser session** — used automatically after signing in at `/accounts/login/`.",
}

# Request bodies that work as written against the demo data (`make run`): the documentation
# test posts each of them.
REQUEST_EXAMPLES: dict[tuple[str, str], dict[str, Any]] = {
    ("/api/v1/events/", "post"): {
        "type": "task.assigned",
        "recipient_ids": ["2"],
        "channels": ["IN_APP", "EMAIL"],
        "resource": {"type": "task", "id": "T-42", "name": "Fix login"},
        "data": {"taskTitle": "Fix login", "assignerName": "Grace", "projectName": "Apollo"},
        "correlation_id": "checkout-7f3a",
    },
    ("/api/v1/quiet-hours/", "put"): {
        "enabled": True, "timezone": "Europe/Paris", "default_action": "HOLD", "allow_critical": True,
        "schedules": [{"start": "22:00", "end": "07:00"}],
    },
    ("/api/v1/preferences/", "put"): {
        "preferences": [{"category": "COLLABORATION", "channels": {"EMAIL": False, "SMS": False}}],
    },
    ("/api/v1/presence/heartbeat/", "post"): {"status": "AWAY"},
}


def resource_tag(path: str) -> str:
    """`/api/v1/admin/providers/{id}/` → `admin: providers`; `/api/v1/events/` → `events`."""
    if not path.startswith(_API_PREFIX):
        return path.strip("/").split("/")[0] or "api"
    parts = [p for p in path[len(_API_PREFIX):].split("/") if p and not p.startswith("{")]
    if not parts:
        return "api"
    if parts[0] == "admin" and len(parts) > 1:
        return f"admin: {parts[1]}"
    return parts[0]


def document_operations(result: dict, generator, request, public: bool) -> dict:
    """Postprocessing hook: operations grouped by resource, the Idempotency-Key header on the
    trigger, security schemes that say what to type in the Authorize dialog, example bodies."""
    used: set[str] = set()
    for path, path_item in result.get("paths", {}).items():
        for method, operation in path_item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            tag = resource_tag(path)
            operation["tags"] = [tag]
            used.add(tag)
            if (path, method) == ("/api/v1/events/", "post"):
                params = operation.setdefault("parameters", [])
                if not any(p.get("name") == "Idempotency-Key" for p in params):
                    params.append(IDEMPOTENCY_KEY_PARAMETER)
            example = REQUEST_EXAMPLES.get((path, method))
            content = operation.get("requestBody", {}).get("content", {})
            if example is not None and "application/json" in content:
                content["application/json"]["examples"] = {"demo": {"summary": "Works against the demo data", "value": example}}
    result["tags"] = [
        {"name": tag, **({"description": TAG_DESCRIPTIONS[tag]} if tag in TAG_DESCRIPTIONS else {})}
        for tag in sorted(used, key=lambda t: (t.startswith("admin: "), t))
    ]
    schemes = result.get("components", {}).get("securitySchemes", {})
    for name, description in SECURITY_DESCRIPTIONS.items():
        if name in schemes:
            schemes[name]["description"] = description
    return result
