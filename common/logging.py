"""A log filter that masks anything that looks like a credential before it is written."""
from __future__ import annotations

import logging
import re

_PATTERNS = [
    re.compile(r"(?i)(authorization|api[_-]?key|token|secret|password|auth_token)(\"?\s*[:=]\s*\"?)([^\s\"',}]+)"),
    re.compile(r"(?i)(Bearer|Basic|Token|Api-Key)\s+[A-Za-z0-9._~+/=-]{8,}"),
]


def redact(text: str) -> str:
    # Scheme + credential first ("Authorization: Bearer xyz"), then key=value pairs.
    text = _PATTERNS[1].sub(lambda m: f"{m.group(1)} ***", text)
    return _PATTERNS[0].sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)


class RedactSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is not our business here
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True
