"""Dotted paths into JSON documents ("alert.assignees.0"), read and written the same way
everywhere: template variable mapping (rendering) and incoming webhook mapping."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def path_get(source: Any, path: str) -> Any:
    """The value at ``path`` (list items by index), or None when any step is missing."""
    current = source
    for bit in path.split("."):
        if isinstance(current, Mapping) and bit in current:
            current = current[bit]
        elif isinstance(current, list | tuple) and bit.isdigit() and int(bit) < len(current):
            current = current[int(bit)]
        else:
            return None
    return current


def path_set(target: dict[str, Any], path: str, value: Any) -> None:
    """Set ``path`` in ``target``, creating (or replacing non-dict) intermediate objects."""
    bits = path.split(".")
    node = target
    for bit in bits[:-1]:
        child = node.get(bit)
        if not isinstance(child, dict):
            child = node[bit] = {}
        node = child
    node[bits[-1]] = value
