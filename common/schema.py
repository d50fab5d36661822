"""OpenAPI helpers shared by the apps' API modules."""
from __future__ import annotations

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
