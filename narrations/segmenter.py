"""Turns a story into a narration script: who says which line, in what order.

Rules (deliberately simple, predictable for authors):
- paragraphs are separated by blank lines; each becomes at least one segment;
- a line `Name: "text"` (or `Name: text`) where Name is one of the story's characters is
  that character's line;
- a quotation with an attribution next to it — `"text," said Name`, `"text," Name said`,
  `Name said, "text"` — is that character's line, the attribution itself is dropped;
- everything else, including quotations nobody is named for, is read by the Narrator;
- the style's greeting opens the script and its sign-off closes it.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from .styles import StyleSpec

NARRATOR = "Narrator"
# Long stretches are split at sentence ends so no single TTS request becomes huge.
MAX_SEGMENT_CHARS = 800

_VERBS = (
    "said|says|asked|asks|replied|replies|answered|whispered|shouted|cried|called|added|exclaimed|"
    "murmured|muttered|laughed|yelled|sighed|continued|insisted|explained|began|agreed"
)
_QUOTE = re.compile(r"[\"“]([^\"“”]+)[\"”]")
_PARAGRAPHS = re.compile(r"\n\s*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")


@dataclass(frozen=True)
class ScriptLine:
    speaker: str
    text: str


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _is_noise(text: str) -> bool:
    return not re.search(r"\w", text)


def _split_long(text: str) -> list[str]:
    if len(text) <= MAX_SEGMENT_CHARS:
        return [text]
    chunks: list[str] = []
    current = ""
    for sentence in _SENTENCE_END.split(text):
        if current and len(current) + 1 + len(sentence) > MAX_SEGMENT_CHARS:
            chunks.append(current)
            current = sentence
        else:
            current = f"{current} {sentence}".strip()
    if current:
        chunks.append(current)
    return chunks


class Segmenter:
    def __init__(self, character_names: Iterable[str]) -> None:
        names = sorted({n.strip() for n in character_names if n and n.strip()}, key=len, reverse=True)
        # Canonical spelling for a case-insensitive match ("mira" in the text → "Mira").
        self._canonical = {n.lower(): n for n in names}
        self._line: re.Pattern[str] | None
        self._after: re.Pattern[str] | None
        self._before: re.Pattern[str] | None
        if names:
            alternation = "|".join(re.escape(n) for n in names)
            self._line = re.compile(rf"^\s*(?P<name>{alternation})\s*:\s*(?P<text>.+?)\s*$", re.IGNORECASE)
            self._after = re.compile(
                rf"\s*,?\s*(?:(?:{_VERBS})\s+(?P<name>{alternation})\b|(?P<name2>{alternation})\s+(?:{_VERBS})\b)"
                r"\s*[.,;:!?]?",
                re.IGNORECASE,
            )
            self._before = re.compile(rf"\b(?P<name>{alternation})\s+(?:{_VERBS})\s*[,:]?\s*$", re.IGNORECASE)
        else:
            self._line = self._after = self._before = None

    def _speaker(self, match: re.Match[str]) -> str:
        groups = match.groupdict()
        return self._canonical[(groups.get("name") or groups["name2"]).lower()]

    def _lines_of_text(self, text: str) -> list[ScriptLine]:
        """Narration with attributed quotations split out."""
        out: list[ScriptLine] = []
        pending = ""  # narrator text not yet emitted
        pos = 0
        for quote in _QUOTE.finditer(text):
            before_text = pending + text[pos : quote.start()]
            speaker = None
            consumed_until = quote.end()
            if self._after is not None:
                after = self._after.match(text, quote.end())
                if after:
                    speaker = self._speaker(after)
                    consumed_until = after.end()
                elif self._before is not None:
                    before = self._before.search(before_text)
                    if before:
                        speaker = self._speaker(before)
                        before_text = before_text[: before.start()]
            if speaker is None:
                pending = before_text + text[quote.start() : quote.end()]
                pos = quote.end()
                continue
            narration = _clean(before_text)
            if narration and not _is_noise(narration):
                out.append(ScriptLine(NARRATOR, narration))
            spoken = _clean(quote.group(1)).rstrip(",")
            if spoken:
                out.append(ScriptLine(speaker, spoken))
            pending = ""
            pos = consumed_until
        rest = _clean(pending + text[pos:])
        rest = rest.lstrip(",;: ") if out else rest
        if rest and not _is_noise(rest):
            out.append(ScriptLine(NARRATOR, rest))
        return out

    def _paragraph(self, paragraph: str) -> list[ScriptLine]:
        out: list[ScriptLine] = []
        narration: list[str] = []

        def flush() -> None:
            if narration:
                out.extend(self._lines_of_text(" ".join(narration)))
                narration.clear()

        for raw in paragraph.splitlines():
            if not raw.strip():
                continue
            match = self._line.match(raw) if self._line is not None else None
            if match:
                flush()
                spoken = _clean(match.group("text")).strip("\"“”")
                if spoken:
                    out.append(ScriptLine(self._speaker(match), spoken))
            else:
                narration.append(raw.strip())
        flush()
        return out

    def story_lines(self, content: str) -> list[ScriptLine]:
        lines: list[ScriptLine] = []
        for paragraph in _PARAGRAPHS.split(content.replace("\r\n", "\n")):
            for line in self._paragraph(paragraph):
                lines.extend(ScriptLine(line.speaker, chunk) for chunk in _split_long(line.text))
        return lines


def build_script(
    *,
    title: str,
    content: str,
    character_names: Iterable[str],
    style: StyleSpec,
    inviter_name: str | None = None,
    invitee_name: str | None = None,
) -> list[ScriptLine]:
    """The whole narration: the style's greeting, the story, the style's sign-off."""
    intro = ScriptLine(NARRATOR, style.greeting(title=title, inviter_name=inviter_name, invitee_name=invitee_name))
    outro = ScriptLine(NARRATOR, style.farewell(inviter_name=inviter_name))
    return [intro, *Segmenter(character_names).story_lines(content), outro]
