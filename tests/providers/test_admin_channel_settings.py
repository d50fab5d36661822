"""Channel settings saved through the staff console are checked by the service the API saves
them with: an organization's channel configuration (`channel_settings_clean` and the selection
keys) and a template channel's options (`template_extra_clean`, in the TemplateChannel form and
in the template editor). A bad value or an unknown option key is a form error and nothing is
saved; a good one is saved cleaned. Through the Django admin with a real (logged-in) client."""
from __future__ import annotations

import json

import pytest
from django.test import Client

from notifications.enums import Channel
from notifications.models import ChannelConfiguration, TemplateChannel, TemplateVersion
from tests.factories import UserFactory

from .payload_support import payload_event_type

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

CONFIG_ADD = "/admin/notifications/channelconfiguration/add/"


@pytest.fixture
def staff_client() -> Client:
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def _configuration_form(organization, channel: str, settings: dict, **extra) -> dict[str, str]:
    return {"organization": str(organization.pk), "channel": channel, "enabled": "on", "rate_limit_action": "HOLD",
            "fallback_channels": "[]", "settings": json.dumps(settings), "default_provider": "",
            "criticality_routing-TOTAL_FORMS": "0", "criticality_routing-INITIAL_FORMS": "0",
            "criticality_routing-MIN_NUM_FORMS": "0", "criticality_routing-MAX_NUM_FORMS": "1000", **extra}


def _errors(response) -> str:
    assert response.status_code == 200, response.status_code  # the form again, not a redirect
    form = response.context["adminform"].form
    return json.dumps(form.errors)


def test_organization_channel_settings_are_checked_like_the_api_checks_them(staff_client, organization):
    for settings, named in (({"from": "A sender id far too long"}, "from"), ({"unicode": "perhaps"}, "unicode"),
                            ({"max_segments": 99}, "max_segments"), ({"provider_strategy": "cheapest"}, "provider_strategy")):
        response = staff_client.post(CONFIG_ADD, _configuration_form(organization, Channel.SMS, settings))
        assert named in _errors(response), settings
    assert not ChannelConfiguration.objects.filter(organization=organization).exists()

    response = staff_client.post(CONFIG_ADD, _configuration_form(organization, Channel.SMS, {
        "from": "ACME", "unicode": False, "max_segments": 3, "provider_strategy": "region", "region": "GB", "requiresOptIn": False}))
    assert response.status_code == 302, _errors(response)
    saved = ChannelConfiguration.objects.get(organization=organization, channel=Channel.SMS)
    assert saved.settings == {"from": "ACME", "unicode": False, "max_segments": 3, "provider_strategy": "region",
                              "region": "GB", "requiresOptIn": False}

    # a change is checked the same way and leaves the stored settings alone when refused
    email = ChannelConfiguration.objects.create(organization=organization, channel=Channel.EMAIL, settings={"track_clicks": False})
    response = staff_client.post(f"/admin/notifications/channelconfiguration/{email.pk}/change/",
                                 _configuration_form(organization, Channel.EMAIL, {"track_clicks": "maybe", "reply_to": "not an address"}))
    errors = _errors(response)
    assert "track_clicks" in errors and "reply_to" in errors
    email.refresh_from_db()
    assert email.settings == {"track_clicks": False}


def _template_channel_form(block: TemplateChannel, extra: dict) -> dict[str, str]:
    data = {"template": str(block.template_id), "channel": block.channel, "action_url": block.action_url, "extra": json.dumps(extra)}
    for name in ("subject", "title", "body", "body_html", "action_label"):
        for lang in ("en", "fr"):
            data[f"{name}_{lang}"] = getattr(block, f"{name}_{lang}") or ""
    return data


def test_template_channel_options_are_checked_like_the_template_service_checks_them(staff_client):
    template = payload_event_type()
    block = TemplateChannel.objects.get(template=template, channel=Channel.WHATSAPP)
    url = f"/admin/notifications/templatechannel/{block.pk}/change/"
    for extra, named in (({"template_name": "deploy_done", "body_parameters": ["{{ deploy.secret }}"]}, "deploy.secret"),
                         ({"tempalte_name": "deploy_done"}, "tempalte_name"),
                         ({"media_url": "javascript:alert(1)"}, "media_url"),
                         ({"buttons": [{"type": "call", "text": "Ring"}]}, "buttons")):
        errors = _errors(staff_client.post(url, _template_channel_form(block, extra)))
        assert named in errors, (extra, errors)
    block.refresh_from_db()
    assert block.extra == {}

    sms = TemplateChannel.objects.get(template=template, channel=Channel.SMS)
    errors = _errors(staff_client.post(f"/admin/notifications/templatechannel/{sms.pk}/change/",
                                       _template_channel_form(sms, {"max_segments": "lots"})))
    assert "max_segments" in errors

    good = {"template_name": "deploy_done", "template_language": "en_US", "body_parameters": ["{{ deploy.name }}"]}
    response = staff_client.post(url, _template_channel_form(block, good))
    assert response.status_code == 302, _errors(response)
    block.refresh_from_db()
    assert block.extra == good


def test_the_template_editor_refuses_bad_channel_options_too(staff_client):
    template = payload_event_type()
    data = {"name": template.name, "description": "", "default_criticality": "MEDIUM", "is_active": "on", "sample": "",
            "preview_locale": "en"}
    for block in TemplateChannel.objects.filter(template=template):
        for lang in ("en", "fr"):
            for name in ("subject", "title", "body", "body_html", "action_label"):
                data[f"{block.channel}__{lang}__{name}"] = getattr(block, f"{name}_{lang}") or ""
        data[f"{block.channel}__action_url"] = block.action_url
    data["SMS__extra"] = json.dumps({"max_segments": 0, "sender": "ACME"})
    response = staff_client.post(f"/admin/notifications/notificationtemplate/{template.pk}/change/", data)
    assert response.status_code == 400
    assert "max_segments" in response.content.decode() and "sender" in response.content.decode()
    assert TemplateVersion.objects.filter(template=template).count() == 0
    assert TemplateChannel.objects.get(template=template, channel=Channel.SMS).extra == {}
