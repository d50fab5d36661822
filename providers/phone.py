"""E.164 validation shared by SMS, WhatsApp and voice providers."""
from __future__ import annotations

import phonenumbers

from common.exceptions import ProviderPermanentError


def normalize_e164(number: str) -> str:
    """'+1 415 555 0100' → '+14155550100'; anything not a valid E.164 number is permanent."""
    raw = (number or "").strip()
    raw = raw.removeprefix("whatsapp:")
    if not raw.startswith("+"):
        raise ProviderPermanentError(f"Phone number {number!r} is not in E.164 format (+<country><number>).", code="invalid_recipient")
    try:
        parsed = phonenumbers.parse(raw, None)
    except phonenumbers.NumberParseException:
        raise ProviderPermanentError(f"Phone number {number!r} cannot be parsed.", code="invalid_recipient") from None
    if not phonenumbers.is_valid_number(parsed):
        raise ProviderPermanentError(f"Phone number {number!r} is not a valid number.", code="invalid_recipient")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
