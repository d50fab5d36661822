import pytest

from common.exceptions import ValidationError
from narrations.models import ConversationStyle
from narrations.styles import STYLES, StyleSpec, get_style, style_catalogue


def test_catalogue_has_the_eight_styles_in_model_order():
    assert list(STYLES) == list(ConversationStyle.values)
    assert len(STYLES) == 8


@pytest.mark.parametrize("code", ConversationStyle.values)
def test_every_style_is_fully_specified(code):
    spec = get_style(code)
    assert isinstance(spec, StyleSpec)
    assert spec.code == code
    for text in (spec.label, spec.description, spec.salutation, spec.salutation_anonymous, spec.from_line,
                 spec.lead_in, spec.sign_off):
        assert text.strip()
    assert "{invitee}" in spec.salutation and "{inviter}" in spec.from_line and "{title}" in spec.lead_in
    assert 100 <= spec.words_per_minute <= 220
    assert 0 < spec.pause_ms <= 1500
    voice = spec.voice.as_dict()
    assert set(voice) == {"stability", "similarity_boost", "style", "speed"}
    assert all(0.0 <= voice[k] <= 1.0 for k in ("stability", "similarity_boost", "style"))
    assert 0.7 <= voice["speed"] <= 1.2


def test_styles_are_distinct():
    specs = list(STYLES.values())
    assert len({s.sign_off for s in specs}) == 8
    assert len({s.description for s in specs}) == 8
    assert len({(s.words_per_minute, s.pause_ms, s.voice) for s in specs}) >= 7
    # A bedtime story is read slower and with longer pauses than a business briefing.
    assert get_style("parent_to_child").words_per_minute < get_style("business").words_per_minute
    assert get_style("parent_to_child").pause_ms > get_style("business").pause_ms


def test_greeting_uses_names_when_given():
    spec = get_style("respectful")
    named = spec.greeting(title="The Lantern", inviter_name="Ada", invitee_name="Grace")
    assert "Grace" in named and "Ada" in named and "The Lantern" in named
    anonymous = spec.greeting(title="The Lantern")
    assert anonymous.startswith(spec.salutation_anonymous)
    assert "{" not in anonymous and "The Lantern" in anonymous


def test_style_catalogue_for_the_ui():
    catalogue = style_catalogue()
    assert [item["code"] for item in catalogue] == list(ConversationStyle.values)
    assert all(set(item) == {"code", "label", "description", "sample"} for item in catalogue)
    assert catalogue[0] == {"code": "respectful", "label": "Respectful", "description": STYLES["respectful"].description,
                            "sample": "Good day. Sam would be honoured to share a story with you."}


def test_unknown_style_is_a_validation_error():
    with pytest.raises(ValidationError) as info:
        get_style("sarcastic")
    assert "conversation_style" in info.value.detail
