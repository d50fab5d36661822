"""E.164 validation and the carriers' opt-out keywords, shared by SMS, WhatsApp and voice providers."""
from __future__ import annotations

import phonenumbers

from common.exceptions import ProviderPermanentError

# CTIA / carrier opt-out and opt-in keywords (Twilio's defaults), compared on the whole reply.
STOP_KEYWORDS = {"STOP", "STOPALL", "STOP ALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "OPT OUT", "REVOKE", "ARRET", "ARRÊT"}
START_KEYWORDS = {"START", "UNSTOP", "YES", "SUBSCRIBE"}


def optout_keyword(body: str) -> str:
    """"stop", "start" or "" for an inbound SMS or WhatsApp message body."""
    word = " ".join((body or "").strip().upper().split()).rstrip(".!")
    if word in STOP_KEYWORDS:
        return "stop"
    if word in START_KEYWORDS:
        return "start"
    return ""


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
