"""Seed 004 §4.2 channel definitions as data: the admin API and console show them, routing
takes its opt-in channels and the trace's cost tier from them."""
from __future__ import annotations

import pytest

from common.channels import CHANNEL_DEFINITIONS, CostTier
from notifications.enums import Channel
from notifications.models import ChannelConfiguration, Notification
from notifications.services import event_emit

from .intake_support import EVENT, intake_event_type

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def test_the_definitions_are_the_seeds():
    table = {c: (d.supports_rich_content, d.supports_actions, d.supports_attachments, d.requires_opt_in, d.cost_tier)
             for c, d in CHANNEL_DEFINITIONS.items()}
    assert table == {
        Channel.IN_APP: (True, True, False, False, CostTier.FREE),
        Channel.EMAIL: (True, True, True, False, CostTier.LOW),
        Channel.PUSH: (False, True, False, True, CostTier.LOW),
        Channel.SMS: (False, False, False, True, CostTier.MEDIUM),
        Channel.WHATSAPP: (True, True, True, True, CostTier.MEDIUM),
        Channel.VOICE: (False, False, False, True, CostTier.HIGH),
    }


def test_the_channel_configuration_api_and_the_console_show_the_definition(auth_client, client, organization):
    from django.contrib.auth import get_user_model

    config = ChannelConfiguration.objects.create(organization=organization, channel=Channel.VOICE)
    body = auth_client.get("/api/v1/admin/channel-configurations/").json()
    (item,) = [i for i in body["results"] if i["id"] == config.pk]
    assert item["definition"] == {"code": "VOICE", "name": "Voice Call", "supports_rich_content": False,
                                  "supports_actions": False, "supports_attachments": False, "requires_opt_in": True,
                                  "cost_tier": "high"}
    staff = get_user_model().objects.create_superuser(username="ops", email="ops@example.com", password="pass-word-123")
    client.force_login(staff)
    html = client.get("/admin/notifications/channelconfiguration/").content.decode()
    assert "cost tier" in html and ">high<" in html


def test_routing_reads_opt_in_and_cost_from_the_definitions(organization, user):
    from notifications.engine.routing import OPT_IN_CHANNELS

    assert OPT_IN_CHANNELS == (Channel.SMS, Channel.WHATSAPP, Channel.VOICE)
    intake_event_type(allowed_channels=[Channel.IN_APP, Channel.EMAIL, Channel.PUSH, Channel.SMS, Channel.WHATSAPP])
    event_emit(organization=organization, type=EVENT, channels=[Channel.WHATSAPP, Channel.EMAIL],
               recipients=[{"phone": "+14155550100", "email": "guest@example.com"}])
    trace = Notification.objects.get().trace
    # WhatsApp needs consent (§4.2) and none is on record: a bare number gets nothing
    assert trace["WHATSAPP"]["used"] is False and trace["WHATSAPP"]["cost_tier"] == "medium"
    assert trace["EMAIL"]["used"] is True and trace["EMAIL"]["cost_tier"] == "low"
