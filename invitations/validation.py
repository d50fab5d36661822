"""Validation of an invitation batch: every item is checked, every error reported, nothing saved."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email

from narrations.models import ConversationStyle

MAX_MESSAGE_LENGTH = 2000
_LOCALE_RE = re.compile(r"^[a-z]{2,3}([-_][A-Za-z0-9]{2,8})?$")
_STYLES = frozenset(ConversationStyle.values)


@dataclass(frozen=True)
class InviteeItem:
    """One validated, normalized invitee of a batch."""

    index: int
    email: str
    phone: str
    conversation_style: str
    character_id: int | None
    message: str
    locale: str


def max_batch() -> int:
    return int(getattr(settings, "INVITATION_MAX_BATCH", 500))


def normalize_email(value: str) -> str:
    # Addresses are compared case-insensitively everywhere (dedup, pending uniqueness).
    return value.strip().lower()


def normalize_phone(value: str) -> str:
    """Return the E.164 form of an international number, or raise ValueError with a message."""
    raw = value.strip()
    if not raw.startswith("+"):
        raise ValueError("Enter the phone number in international E.164 format, e.g. +14155550100.")
    try:
        parsed = phonenumbers.parse(raw, None)
    except phonenumbers.NumberParseException:
        raise ValueError("Enter a valid phone number in E.164 format, e.g. +14155550100.") from None
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError("This phone number is not a valid number.")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def validate_message(value: Any, errors: dict[str, list[str]], field: str = "message") -> str:
    if value in (None, ""):
        return ""
    if not isinstance(value, str):
        errors.setdefault(field, []).append("Must be text.")
        return ""
    if len(value) > MAX_MESSAGE_LENGTH:
        errors.setdefault(field, []).append(f"Keep the message under {MAX_MESSAGE_LENGTH} characters.")
    return value.strip()


def validate_style(value: Any) -> str | None:
    """The style code if it is one of the catalogue's, else None."""
    return value if isinstance(value, str) and value in _STYLES else None


def style_error(value: Any) -> str:
    if value in (None, ""):
        return "Choose a conversation style."
    return f"Unknown conversation style {value!r}. Choose one of: {', '.join(ConversationStyle.values)}."


def validate_items(
    raw_items: Any, *, default_locale: str
) -> tuple[list[InviteeItem], dict[str, dict[str, list[str]]], list[str]]:
    """Check the shape and every field of each item; cross-item and database checks come later.

    Returns (items, per-item errors keyed by the item's index as a string, batch-level errors).
    """
    if not isinstance(raw_items, list):
        return [], {}, ["Send a list of invitations."]
    limit = max_batch()
    if not raw_items:
        return [], {}, ["Send at least one invitation."]
    if len(raw_items) > limit:
        return [], {}, [f"Send at most {limit} invitations at once (got {len(raw_items)})."]

    items: list[InviteeItem] = []
    item_errors: dict[str, dict[str, list[str]]] = {}
    for index, raw in enumerate(raw_items):
        errors: dict[str, list[str]] = {}
        if not isinstance(raw, dict):
            item_errors[str(index)] = {"non_field_errors": ["Each invitation must be an object."]}
            continue

        email = raw.get("email") or ""
        phone = raw.get("phone") or ""
        if not isinstance(email, str):
            errors.setdefault("email", []).append("Must be text.")
            email = ""
        if not isinstance(phone, str):
            errors.setdefault("phone", []).append("Must be text.")
            phone = ""
        email, phone = normalize_email(email), phone.strip()
        if not email and not phone and not errors:
            errors.setdefault("non_field_errors", []).append("Give an email address or a phone number.")
        if email:
            try:
                if len(email) > 254:
                    raise DjangoValidationError("too long")
                validate_email(email)
            except DjangoValidationError:
                errors.setdefault("email", []).append("Enter a valid email address.")
        if phone:
            try:
                phone = normalize_phone(phone)
            except ValueError as exc:
                errors.setdefault("phone", []).append(str(exc))

        style = validate_style(raw.get("conversation_style"))
        if style is None:
            errors.setdefault("conversation_style", []).append(style_error(raw.get("conversation_style")))

        character_id = raw.get("character_id")
        if character_id in (None, ""):
            character_id = None
        elif isinstance(character_id, bool) or not isinstance(character_id, (int, str)) or not str(character_id).isdigit():
            errors.setdefault("character_id", []).append("Must be the id of one of the story's characters.")
            character_id = None
        else:
            character_id = int(character_id)

        message = validate_message(raw.get("message"), errors)

        locale = raw.get("locale") or default_locale
        if not isinstance(locale, str) or not _LOCALE_RE.match(locale):
            errors.setdefault("locale", []).append("Use a language code such as 'en' or 'fr-CA'.")
            locale = default_locale

        if errors:
            item_errors[str(index)] = errors
            continue
        items.append(
            InviteeItem(
                index=index,
                email=email,
                phone=phone,
                conversation_style=style,  # type: ignore[arg-type]
                character_id=character_id,
                message=message,
                locale=locale,
            )
        )
    return items, item_errors, []


def find_duplicates(items: list[InviteeItem]) -> dict[int, str]:
    """Items naming an invitee already named earlier in the same batch: index → message."""
    seen_email: dict[str, int] = {}
    seen_phone: dict[str, int] = {}
    duplicates: dict[int, str] = {}
    for item in items:
        first = None
        if item.email and item.email in seen_email:
            first = seen_email[item.email]
        elif item.phone and item.phone in seen_phone:
            first = seen_phone[item.phone]
        if first is not None:
            duplicates[item.index] = f"This invitee already appears in this request (item {first})."
            continue
        if item.email:
            seen_email[item.email] = item.index
        if item.phone:
            seen_phone[item.phone] = item.index
    return duplicates
