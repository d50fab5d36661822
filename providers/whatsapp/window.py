"""WhatsApp's 24-hour customer service window: free text (not a template) may be sent to a
number only within 24 hours of that number's last message to us.

The inbound messages Meta's webhook reports open the window (a cache entry per business phone
number and customer, expiring with the window); a send of free text outside it is refused
before any call, with the reason, instead of being answered by Meta's error 131047.
"""
from __future__ import annotations

from django.core.cache import cache

WINDOW_SECONDS = 24 * 3600


def _key(business_number_id: str, customer: str) -> str:
    return f"whatsapp:window:{business_number_id}:{customer.lstrip('+')}"


def window_record(*, business_number_id: str, customer: str, seconds_left: int = WINDOW_SECONDS) -> None:
    if seconds_left > 0:
        cache.set(_key(business_number_id, customer), 1, timeout=seconds_left)


def window_open(*, business_number_id: str, customer: str) -> bool:
    return bool(cache.get(_key(business_number_id, customer)))


def window_close(*, business_number_id: str, customer: str) -> None:
    cache.delete(_key(business_number_id, customer))
