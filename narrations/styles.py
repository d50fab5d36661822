"""The conversation-style catalogue.

A conversation style is the relationship between the inviter and the invitee. It decides how
the narrator greets the listener and signs off, how fast and with what pauses the story is
read, and which ElevenLabs voice settings are used. Engines read everything they need from a
`StyleSpec`; nothing else in the code branches on a style code.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from common.exceptions import ValidationError

from .models import ConversationStyle


@dataclass(frozen=True)
class VoiceSettings:
    """ElevenLabs `voice_settings` (all in 0..1, except speed: 0.7..1.2, 1.0 is normal)."""

    stability: float
    similarity_boost: float
    style: float
    speed: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class StyleSpec:
    code: str
    label: str
    description: str
    # Greeting wording. `salutation` takes {invitee}; the anonymous form is used when the
    # listener's name is unknown (shared narrations serve every invitee of a style).
    salutation: str
    salutation_anonymous: str
    # Takes {inviter}; omitted when the inviter is unknown.
    from_line: str
    # Takes {title}.
    lead_in: str
    sign_off: str
    # Pacing: narration speed and the silence between two segments.
    words_per_minute: int
    pause_ms: int
    voice: VoiceSettings

    def greeting(self, *, title: str, inviter_name: str | None = None, invitee_name: str | None = None) -> str:
        parts = [self.salutation.format(invitee=invitee_name) if invitee_name else self.salutation_anonymous]
        if inviter_name:
            parts.append(self.from_line.format(inviter=inviter_name))
        parts.append(self.lead_in.format(title=title))
        return " ".join(parts)

    def farewell(self, *, inviter_name: str | None = None) -> str:
        return self.sign_off.format(inviter=inviter_name or "")

    def estimate_duration_ms(self, text: str) -> int:
        words = max(1, len(text.split()))
        return round(words * 60_000 / self.words_per_minute)


STYLES: dict[str, StyleSpec] = {
    spec.code: spec
    for spec in (
        StyleSpec(
            code=ConversationStyle.RESPECTFUL.value,
            label="Respectful",
            description="Warm and courteous, for elders, mentors and people you hold in high regard.",
            salutation="Good day, {invitee}.",
            salutation_anonymous="Good day.",
            from_line="{inviter} would be honoured to share a story with you.",
            lead_in="It is called {title}.",
            sign_off="Thank you kindly for listening. It would mean a great deal to hear your thoughts.",
            words_per_minute=145,
            pause_ms=700,
            voice=VoiceSettings(stability=0.75, similarity_boost=0.80, style=0.10, speed=0.92),
        ),
        StyleSpec(
            code=ConversationStyle.BUSINESS.value,
            label="Business",
            description="Clear and to the point, for colleagues, clients and partners.",
            salutation="Hello {invitee}.",
            salutation_anonymous="Hello.",
            from_line="{inviter} has shared a story with you for your review.",
            lead_in="Title: {title}.",
            sign_off="That concludes the story. Your feedback is welcome at your convenience.",
            words_per_minute=165,
            pause_ms=450,
            voice=VoiceSettings(stability=0.85, similarity_boost=0.75, style=0.00, speed=1.00),
        ),
        StyleSpec(
            code=ConversationStyle.JOVIAL.value,
            label="Jovial",
            description="Cheerful and upbeat, for friendly acquaintances and good company.",
            salutation="Hey there, {invitee}!",
            salutation_anonymous="Hey there!",
            from_line="{inviter} has a story they just had to share with you.",
            lead_in="Settle in, this one is called {title}.",
            sign_off="And that's the tale! Hope it put a smile on your face.",
            words_per_minute=175,
            pause_ms=400,
            voice=VoiceSettings(stability=0.45, similarity_boost=0.75, style=0.55, speed=1.05),
        ),
        StyleSpec(
            code=ConversationStyle.PLAYFUL.value,
            label="Playful",
            description="Lively and teasing, full of fun, for people who love a bit of mischief.",
            salutation="Psst, {invitee}!",
            salutation_anonymous="Psst, you!",
            from_line="{inviter} sneaked a story in here just for you.",
            lead_in="Ready? Here comes {title}!",
            sign_off="The end! Or is it? Your turn to add the next twist.",
            words_per_minute=180,
            pause_ms=350,
            voice=VoiceSettings(stability=0.35, similarity_boost=0.70, style=0.70, speed=1.08),
        ),
        StyleSpec(
            code=ConversationStyle.CLOSE_FRIENDS.value,
            label="Close friends",
            description="Relaxed and familiar, like a story told between best friends.",
            salutation="Hi {invitee}, it's me.",
            salutation_anonymous="Hi, it's me.",
            from_line="It's {inviter}, and I had to tell you this one.",
            lead_in="It's called {title}.",
            sign_off="Okay, that's it. Tell me what you think, I want to hear everything.",
            words_per_minute=170,
            pause_ms=450,
            voice=VoiceSettings(stability=0.50, similarity_boost=0.80, style=0.45, speed=1.03),
        ),
        StyleSpec(
            code=ConversationStyle.PARENT_TO_CHILD.value,
            label="Parent to child",
            description="Gentle and unhurried, a bedtime-story voice for a parent reading to a child.",
            salutation="Hello, my dear {invitee}.",
            salutation_anonymous="Hello, my dear.",
            from_line="{inviter} has a story for you tonight.",
            lead_in="Get cosy, because this story is called {title}.",
            sign_off="The end. Sweet dreams, and remember how much you are loved.",
            words_per_minute=130,
            pause_ms=900,
            voice=VoiceSettings(stability=0.80, similarity_boost=0.85, style=0.25, speed=0.88),
        ),
        StyleSpec(
            code=ConversationStyle.CHILD_TO_PARENT.value,
            label="Child to parent",
            description="Affectionate and proud, a child sharing a story with a parent.",
            salutation="Hi {invitee}!",
            salutation_anonymous="Hi!",
            from_line="It's {inviter}, and I want you to hear my story.",
            lead_in="It's called {title}.",
            sign_off="That's my story. I hope you liked it. Love you!",
            words_per_minute=160,
            pause_ms=550,
            voice=VoiceSettings(stability=0.55, similarity_boost=0.80, style=0.40, speed=1.00),
        ),
        StyleSpec(
            code=ConversationStyle.SIBLINGS.value,
            label="Siblings",
            description="Teasing and loyal, the way brothers and sisters tell each other stories.",
            salutation="Oi, {invitee}!",
            salutation_anonymous="Oi, you!",
            from_line="{inviter} here, and yes, you have to listen to this.",
            lead_in="It's called {title}.",
            sign_off="Done. Don't tell Mum I made you listen to the whole thing.",
            words_per_minute=175,
            pause_ms=400,
            voice=VoiceSettings(stability=0.45, similarity_boost=0.75, style=0.50, speed=1.05),
        ),
    )
}


def get_style(code: str) -> StyleSpec:
    try:
        return STYLES[code]
    except KeyError:
        raise ValidationError(
            {"conversation_style": [f"Unknown conversation style {code!r}; choose one of: {', '.join(STYLES)}."]}
        ) from None


def style_catalogue() -> list[dict[str, str]]:
    """The catalogue for pickers in the UI and the API: code, label, one-line description and a
    sample of how the narrator opens in that style."""
    return [
        {"code": s.code, "label": s.label, "description": s.description,
         "sample": f"{s.salutation_anonymous} {s.from_line.format(inviter='Sam')}"}
        for s in STYLES.values()
    ]
