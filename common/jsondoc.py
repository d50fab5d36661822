"""JSON documents from outside (REST bodies, AMQP events, incoming webhooks), decoded safely.

Python's decoder accepts what the rest of the stack cannot take: a document nested deeper than
the interpreter's recursion limit (RecursionError, not ValueError), lone UTF-16 surrogates
("\\ud800": PostgreSQL cannot encode them), NUL characters (text and jsonb refuse U+0000) and
NaN/Infinity (not JSON; jsonb refuses them).
Each is refused here, at the door, as a bad document.
"""
from __future__ import annotations

import json
import re
from typing import Any

# Deep enough for any event or settings document; far below the interpreter's recursion limit,
# so code that walks a document recursively after it was accepted cannot fail either.
MAX_DEPTH = 64
_SURROGATE = re.compile("[\ud800-\udfff]")


class JSONDocumentError(ValueError):
    pass


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "NUL characters (\\u0000) are not allowed."
    if _SURROGATE.search(text):
        return "Unpaired UTF-16 surrogates (e.g. \\ud800) are not allowed."
    return None


def json_document_problem(value: Any) -> str | None:
    """Why a decoded document cannot be accepted (too deep, NUL, lone surrogate), or None."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            problem = _text_problem(item)
            if problem:
                return problem
        elif isinstance(item, (dict, list)):
            if depth > MAX_DEPTH:
                return f"The document is nested more than {MAX_DEPTH} levels deep."
            if isinstance(item, dict):
                for key, child in item.items():
                    problem = _text_problem(key) if isinstance(key, str) else None
                    if problem:
                        return problem
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)
    return None


def _refuse_constant(name: str) -> Any:
    raise JSONDocumentError(f"{name} is not a JSON value.")


def json_decode(raw: str | bytes) -> Any:
    """Decode and check a document; every problem is a JSONDocumentError (a ValueError)."""
    try:
        value = json.loads(raw, parse_constant=_refuse_constant)
    except RecursionError:
        raise JSONDocumentError(f"The document is nested more than {MAX_DEPTH} levels deep.") from None
    problem = json_document_problem(value)
    if problem:
        raise JSONDocumentError(problem)
    return value
