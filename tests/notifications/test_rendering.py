"""The rendering sandbox: what a template may do, escaping, locale fallback, SMS segments."""
from __future__ import annotations

import pytest

from common.exceptions import ValidationError
from notifications.engine import rendering
from notifications.enums import Channel
from notifications.models import TemplateChannel

from .test_delivery_support import MAPPING, event_type_with_template

ALLOWED = rendering.allowed_variables_for(MAPPING)


def context(**data):
    return rendering.template_context_build(
        variable_mapping=MAPPING, source={"data": data, "resourceId": "T-9"}, standard={"recipient.name": "Ann"}
    )


@pytest.mark.parametrize(
    "source",
    [
        "{% load static %}{% static 'x' %}",
        "{% load i18n %}",
        "{% debug %}",
        "{% include 'base.html' %}",
        "{% extends 'base.html' %}",
        "{% url 'inbox' %}",
        "{% autoescape off %}{{ task.title }}{% endautoescape %}",
        "{{ task.title|safe }}",
        "{{ task.__class__ }}",
    ],
)
def test_sandbox_refuses_dangerous_constructs(source):
    with pytest.raises(ValidationError):
        rendering.template_validate(channel_contents={"body": source}, allowed_variables=ALLOWED)
    with pytest.raises(ValidationError):
        rendering.template_compile(source)


def test_settings_and_unknown_variables_are_refused_at_save_and_render_empty_at_send():
    source = "Key: {{ settings.SECRET_KEY }}|{{ task.titel }}|{{ task.title }}"
    with pytest.raises(ValidationError) as excinfo:
        rendering.template_validate(channel_contents={"EMAIL": {"body": source}}, allowed_variables=ALLOWED)
    detail = excinfo.value.detail
    assert list(detail) == ["EMAIL.body"]
    assert "settings.SECRET_KEY" in detail["EMAIL.body"][0] and "task.titel" in detail["EMAIL.body"][0]
    # A template saved before a mapping changed still renders: unknown names are empty.
    assert rendering.template_render(source, context(taskTitle="Fix"), html=False) == "Key: ||Fix"


def test_known_variables_loops_and_filters_are_accepted():
    source = (
        "{% if task.title %}{{ task.title|upper|truncatechars:20 }}{% endif %}"
        "{% for word in task.title.split %}{{ word }}{{ forloop.counter }}{% endfor %}"
        "{% with t=task.id %}{{ t }}{% endwith %}{{ project.name|default:'none' }} {{ recipient.name }}"
    )
    rendering.template_validate(channel_contents={"IN_APP": {"title": source}}, allowed_variables=ALLOWED)
    assert rendering.template_render(source, context(taskTitle="fix login"), html=False) == "FIX LOGINfix1login2T-9none Ann"


def test_html_is_autoescaped_and_plain_text_is_not():
    ctx = context(taskTitle='<script>alert("x")</script> & co')
    html = rendering.template_render("<p>{{ task.title }}</p>", ctx, html=True)
    assert html == "<p>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co</p>"
    text = rendering.template_render("{{ task.title }}", ctx, html=False)
    assert text == '<script>alert("x")</script> & co'
    rendered = rendering.content_render(contents={"body": "{{ task.title }}", "body_html": "{{ task.title }}"}, context=ctx)
    assert rendered.body.startswith("<script>") and rendered.body_html.startswith("&lt;script&gt;")


def test_missing_values_render_safely():
    ctx = rendering.template_context_build(variable_mapping=MAPPING, source={"data": {}}, standard={})
    assert ctx == {}
    assert rendering.template_render("Task {{ task.title }} in {{ project.name }}!", ctx, html=False) == "Task  in !"


def test_context_holds_read_only_plain_data():
    ctx = context(taskTitle="Fix", projectName={"nested": ["a", object()]})
    # A template cannot mutate or reach Python objects through the context.
    out = rendering.template_render("{{ task.clear }}{{ task.pop }}{{ task.title }}", ctx, html=False)
    assert out == "Fix"
    assert isinstance(ctx["project"]["name"]["nested"][1], str)


def test_mapping_resolves_nested_event_paths():
    ctx = rendering.template_context_build(
        variable_mapping={"incident.severity": "data.incident.severity", "first.tag": "data.tags.0"},
        source={"data": {"incident": {"severity": "SEV1"}, "tags": ["db", "eu"]}},
    )
    assert rendering.template_render("{{ incident.severity }}/{{ first.tag }}", ctx, html=False) == "SEV1/db"


@pytest.mark.postgres
@pytest.mark.django_db
def test_locale_uses_translation_and_falls_back_to_english():
    _, template = event_type_with_template()
    block = TemplateChannel.objects.get(template=template, channel=Channel.IN_APP)
    fr = rendering.template_channel_contents(block, locale="fr-CA")
    assert fr["title"] == "{{ actor.name }} vous a assigné {{ task.title }}"
    assert fr["body"] == "In {{ project.name }}."  # empty in French: English
    en = rendering.template_channel_contents(block, locale="de")  # not a platform language: English
    assert en["title"] == "{{ actor.name }} assigned you {{ task.title }}"


@pytest.mark.parametrize(
    "text, encoding, segments",
    [
        ("", "GSM-7", 0),
        ("a" * 160, "GSM-7", 1),
        ("a" * 161, "GSM-7", 2),
        ("a" * 306, "GSM-7", 2),
        ("a" * 307, "GSM-7", 3),
        ("€" * 80, "GSM-7", 1),  # extension characters take two septets
        ("€" * 81, "GSM-7", 2),
        ("é" * 70, "GSM-7", 1),  # é is in the GSM-7 basic table
        ("ç" * 70, "UCS-2", 1),
        ("ç" * 71, "UCS-2", 2),
        ("ç" * 134, "UCS-2", 2),
        ("ç" * 135, "UCS-2", 3),
        ("😀" * 35, "UCS-2", 1),  # astral characters take two UTF-16 units
        ("😀" * 36, "UCS-2", 2),
    ],
)
def test_sms_segments(text, encoding, segments):
    info = rendering.sms_segments(text)
    assert (info["encoding"], info["segments"]) == (encoding, segments)
    assert info["characters"] == len(text)
