"""Validators of JSON list/dict columns (migrations name them as notifications.models.<name>)."""
from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from common.validators import validate_string_dict  # noqa: F401  (migration 0001 names it here)

from ..enums import Channel, EventCategory


# --- validators --------------------------------------------------------------------


def validate_channel_list(value: Any) -> None:
    if not isinstance(value, list):
        raise ValidationError("Expected a list of channels.")
    unknown = [item for item in value if item not in Channel.values]
    if unknown:
        raise ValidationError(f"Unknown channel(s): {', '.join(map(str, unknown))}. Valid: {', '.join(Channel.values)}.")
    if len(set(value)) != len(value):
        raise ValidationError("A channel is listed twice.")


def validate_string_list(value: Any) -> None:
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise ValidationError("Expected a list of non-empty strings.")


def validate_category_list(value: Any) -> None:
    validate_string_list(value)
    unknown = [item for item in value if item not in EventCategory.values]
    if unknown:
        raise ValidationError(f"Unknown categor(ies): {', '.join(unknown)}.")


def validate_days_of_week(value: Any) -> None:
    if not isinstance(value, list) or not value:
        raise ValidationError("Expected a non-empty list of days (0 = Monday … 6 = Sunday).")
    if not all(isinstance(day, int) and not isinstance(day, bool) and 0 <= day <= 6 for day in value):
        raise ValidationError("Days are integers from 0 (Monday) to 6 (Sunday).")


def validate_variable_mapping(value: Any) -> None:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ValidationError('Expected an object mapping template variables to event paths, e.g. {"task.title": "data.taskTitle"}.')


