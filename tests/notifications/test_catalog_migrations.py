"""Data migrations that change shipped template copy: an install gets the shipped template, an
older install gets the new copy where it still had the old one, and an operator's edit is kept."""
from __future__ import annotations

import dataclasses
import importlib

import pytest
from django.apps import apps

from notifications.catalogue import EVENTS_BY_KEY
from notifications.models import EventType, TemplateChannel
from notifications.taxonomy import LANGUAGES, channel_content, content_digest

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

migration = importlib.import_module("notifications.migrations.0007_story_invitation_stop_link_and_declined")
EVENT = EVENTS_BY_KEY["story.invitation"]
# What was shipped before 0007: the same copy with the platform's generic footer.
OLD = {language: channel_content(dataclasses.replace(EVENT, extra={}), "EMAIL", language) for language in LANGUAGES}
NEW = {language: channel_content(EVENT, "EMAIL", language) for language in LANGUAGES}


def _email_row() -> TemplateChannel:
    return TemplateChannel.objects.get(template__key="story.invitation", template__organization__isnull=True, channel="EMAIL")


def _columns(row: TemplateChannel) -> dict[str, str]:
    return {column: row.__dict__[column] for column in ["body", *migration.PREVIOUS_EMAIL]}


def _set_old(**overrides: str) -> None:
    values = {f"{name}_{language}": OLD[language][name] for language in LANGUAGES for name in ("body", "body_html")}
    values["body"] = OLD["en"]["body"]
    TemplateChannel.objects.filter(pk=_email_row().pk).rewrite(False).update(**{**values, **overrides})


def test_a_fresh_install_has_the_shipped_story_invitation_email():
    row = _email_row()
    for language in LANGUAGES:
        for name in ("subject", "body", "body_html", "action_label"):
            assert row.__dict__[f"{name}_{language}"] == NEW[language][name], (name, language)
    assert "invite.stop_url" in row.body_en and "invite.stop_url" in row.body_html_fr
    assert EventType.objects.get(key="story.invitation").variable_mapping["invite.stop_url"] == "data.stopUrl"


def test_the_frozen_digests_are_those_of_the_copy_shipped_before():
    for column, digest in migration.PREVIOUS_EMAIL.items():
        name, _, language = column.rpartition("_")
        assert content_digest(OLD[language][name]) == digest, column


def test_an_untouched_older_install_gets_the_stop_link():
    _set_old()
    EventType.objects.filter(key="story.invitation").update(variable_mapping={"story.title": "data.storyTitle", "x.mine": "data.mine"})

    migration.forward(apps, None)

    row = _email_row()
    assert row.__dict__["body"] == NEW["en"]["body"]
    for language in LANGUAGES:
        assert row.__dict__[f"body_{language}"] == NEW[language]["body"]
        assert row.__dict__[f"body_html_{language}"] == NEW[language]["body_html"]
    mapping = EventType.objects.get(key="story.invitation").variable_mapping
    assert mapping == {"story.title": "data.storyTitle", "x.mine": "data.mine", "invite.stop_url": "data.stopUrl"}


def test_an_operators_edited_template_is_never_overwritten():
    _set_old(body_en="Hello {{ inviter.name }} wants you to hear {{ story.title }}.", body="Hello, edited.",
             body_html_fr="<p>Notre propre modèle</p>")

    migration.forward(apps, None)

    row = _email_row()
    assert row.__dict__["body_en"] == "Hello {{ inviter.name }} wants you to hear {{ story.title }}."
    assert row.__dict__["body"] == "Hello, edited."
    assert row.__dict__["body_html_fr"] == "<p>Notre propre modèle</p>"
    # the columns still holding the old shipped copy get the new one
    assert row.__dict__["body_html_en"] == NEW["en"]["body_html"] and row.__dict__["body_fr"] == NEW["fr"]["body"]

    edited_now = _columns(_email_row())
    migration.forward(apps, None)  # running again changes nothing
    assert _columns(_email_row()) == edited_now


def test_an_operator_edit_of_the_current_template_survives_the_migration():
    TemplateChannel.objects.filter(pk=_email_row().pk).update(body_html_en="<p>Ours</p>")
    migration.forward(apps, None)
    assert _email_row().__dict__["body_html_en"] == "<p>Ours</p>"
