import pytest

from narrations.models import ConversationStyle
from narrations.segmenter import (
    MAX_SEGMENT_CHARS,
    NARRATOR,
    ScriptLine,
    Segmenter,
    build_script,
)
from narrations.styles import get_style


def lines(content, names=("Mira", "Tom")):
    return Segmenter(names).story_lines(content)


def test_paragraphs_become_segments():
    out = lines("The sea was calm.\n\nThe wind rose.\r\n\r\n  \n\nNight fell.")
    assert out == [
        ScriptLine(NARRATOR, "The sea was calm."),
        ScriptLine(NARRATOR, "The wind rose."),
        ScriptLine(NARRATOR, "Night fell."),
    ]


def test_name_colon_lines_are_attributed():
    out = lines('The door creaked.\nMira: "Hello?"\ntom: Who is there?\nNobody answered.')
    assert out == [
        ScriptLine(NARRATOR, "The door creaked."),
        ScriptLine("Mira", "Hello?"),
        ScriptLine("Tom", "Who is there?"),
        ScriptLine(NARRATOR, "Nobody answered."),
    ]


@pytest.mark.parametrize(
    "text, speaker, spoken",
    [
        ('"Come in," said Tom.', "Tom", "Come in"),
        ('"Come in," Tom said.', "Tom", "Come in"),
        ('"Where are you?" asked Mira.', "Mira", "Where are you?"),
        ('Mira whispered, "Stay close."', "Mira", "Stay close."),
        ("“Curly quotes,” replied Tom.", "Tom", "Curly quotes"),
    ],
)
def test_quoted_dialogue_is_attributed_to_the_character(text, speaker, spoken):
    assert ScriptLine(speaker, spoken) in lines(text)
    assert all(line.speaker != NARRATOR or "said" not in line.text for line in lines(text))


def test_dialogue_inside_narration_keeps_the_narration_around_it():
    out = lines('The lamp flickered. "Is that you?" asked Mira. The shadows did not answer.')
    assert out == [
        ScriptLine(NARRATOR, "The lamp flickered."),
        ScriptLine("Mira", "Is that you?"),
        ScriptLine(NARRATOR, "The shadows did not answer."),
    ]


def test_unattributed_or_unknown_speakers_stay_with_the_narrator():
    out = lines('"Nobody knows," said the wind. Stranger: "Hi."', names=("Mira",))
    assert [line.speaker for line in out] == [NARRATOR]
    assert '"Nobody knows,"' in out[0].text


def test_story_without_characters_is_all_narrator():
    out = lines('Tom: "Hello."\n\n"Yes," said Tom.', names=())
    assert {line.speaker for line in out} == {NARRATOR}


def test_long_paragraphs_are_split_at_sentences():
    sentence = "The waves rolled over the stones again and again. "
    out = lines(sentence * 60)
    assert len(out) > 1
    assert all(len(line.text) <= MAX_SEGMENT_CHARS for line in out)
    assert " ".join(line.text for line in out) == (sentence * 60).strip()


@pytest.mark.parametrize("code", ConversationStyle.values)
def test_script_opens_with_the_style_greeting_and_closes_with_its_sign_off(code):
    style = get_style(code)
    script = build_script(
        title="The Lantern", content='Mira: "Hi."', character_names=["Mira"], style=style, inviter_name="Ada"
    )
    assert script[0] == ScriptLine(NARRATOR, style.greeting(title="The Lantern", inviter_name="Ada"))
    assert script[1] == ScriptLine("Mira", "Hi.")
    assert script[-1] == ScriptLine(NARRATOR, style.farewell(inviter_name="Ada"))
    assert "Ada" in script[0].text and "The Lantern" in script[0].text


def test_intro_differs_between_styles():
    intros = {
        code: build_script(title="T", content="x", character_names=[], style=get_style(code))[0].text
        for code in ConversationStyle.values
    }
    assert len(set(intros.values())) == 8
