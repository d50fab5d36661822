"""SMS segment arithmetic (3GPP TS 23.038): what a message will cost in parts.

GSM-7 fits 160 septets in one part, 153 per part when concatenated (the UDH takes 7);
characters of the extension table take two septets. Anything outside GSM-7 forces UCS-2:
70 UTF-16 units alone, 67 per part (astral characters such as emoji take two units).
"""
from __future__ import annotations

from dataclasses import dataclass

GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = set("^{}\\[~]|€\f")


@dataclass(frozen=True)
class SegmentInfo:
    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int

    @property
    def unicode(self) -> bool:
        return self.encoding == "UCS-2"


def is_gsm7(text: str) -> bool:
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENDED for ch in text)


def count_segments(text: str) -> SegmentInfo:
    if is_gsm7(text):
        units = sum(2 if ch in GSM7_EXTENDED else 1 for ch in text)
        single, multi, encoding = 160, 153, "GSM-7"
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, multi, encoding = 70, 67, "UCS-2"
    if units == 0:
        return SegmentInfo(encoding, 0, 1)
    if units <= single:
        return SegmentInfo(encoding, units, 1)
    return SegmentInfo(encoding, units, -(-units // multi))
