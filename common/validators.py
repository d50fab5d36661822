"""Validators of JSON columns shared by more than one app."""
from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError


def validate_string_dict(value: Any) -> None:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ValidationError("Expected an object of strings.")
