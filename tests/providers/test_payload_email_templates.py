"""The ESP's own stored template (seed 004 §4.4 "provider-side template id + data") from the
event to the requests Mailgun's and Postmark's loopback peers receive: the template named as
each ESP names it, the event's template data as its variables."""
from __future__ import annotations

import json

import pytest

from notifications.enums import Channel, DeliveryStatus

from .payload_support import LATENCY, payload_event_type, trigger
from .peers import Reply

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

DATA = {"deploy": "apollo-7", "count": 3, "owner": {"name": "Ada"}}


def test_mailgun_gets_the_template_name_and_its_variables(peer, make_provider, organization, user):
    server = peer(latency=LATENCY).on("POST", r"/v3/mg\.example\.com/messages",
                                      Reply(200, {"id": "<mg-7@mg.example.com>", "message": "Queued. Thank you."}))
    make_provider("mailgun", config={"api_url": f"{server.url}/v3/", "sender_domain": "mg.example.com",
                                     "from_email": "no-reply@mg.example.com"}, secrets={"api_key": "key-payload"})
    payload_event_type()
    delivery = trigger(organization=organization, user=user, channels=[Channel.EMAIL],
                       options={"EMAIL": {"template_id": "deploy-finished", "template_data": DATA}})[Channel.EMAIL]
    assert delivery.status == DeliveryStatus.SENT, delivery.error
    (call,) = server.calls()
    form = call.form
    assert form["template"] == ["deploy-finished"]
    # anymail hands the data to Mailgun as template variables filled per recipient
    assert {key: form[f"v:{key}"] for key in DATA} == {key: [f"%recipient.{key}%"] for key in DATA}
    assert json.loads(form["recipient-variables"][0]) == {user.email: DATA}
    assert form["to"] == [user.email]


def test_postmark_gets_the_template_id_or_alias_and_its_model(peer, make_provider, organization, user):
    server = peer(latency=LATENCY).on("POST", "/email/withTemplate/?", lambda req: Reply(200, {
        "To": user.email, "MessageID": f"pm-{len(server.calls())}", "ErrorCode": 0, "Message": "OK"}))
    make_provider("postmark", config={"api_url": f"{server.url}/", "from_email": "no-reply@troubadour.test"},
                  secrets={"server_token": "pm-payload-token"})
    payload_event_type()
    delivery = trigger(organization=organization, user=user, channels=[Channel.EMAIL],
                       options={"EMAIL": {"template_id": "36371", "template_data": DATA}})[Channel.EMAIL]
    assert delivery.status == DeliveryStatus.SENT, delivery.error
    sent = server.calls()[-1].json
    assert sent["TemplateId"] == 36371 and sent["TemplateModel"] == DATA and sent["To"] == user.email
    assert server.calls()[-1].header("X-Postmark-Server-Token") == "pm-payload-token"

    trigger(organization=organization, user=user, channels=[Channel.EMAIL],
            options={"EMAIL": {"template_id": "deploy-finished", "template_data": {"deploy": "apollo-8"}}})
    sent = server.calls()[-1].json
    assert sent["TemplateAlias"] == "deploy-finished" and sent["TemplateModel"] == {"deploy": "apollo-8"}
