"""The WHATSAPP field group (seed 004 §4.7) from the event to the request Meta's loopback peer
receives: template parameters from the event's variables (header/body/button), media, reply and
URL buttons, and free text only inside the 24-hour window a customer's message opens."""
from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest
from django.test import Client

from notifications.enums import Channel, DeliveryStatus
from providers.whatsapp.window import window_close

from .payload_support import LATENCY, payload_event_type, trigger
from .peers import Reply

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

APP_SECRET = "meta-app-secret-for-tests"
MESSAGES = "/v21.0/1055/messages"


@pytest.fixture
def graph(peer, make_provider, user):
    user.phone = "+33612345678"
    user.save(update_fields=["phone"])
    window_close(business_number_id="1055", customer="33612345678")  # the cache outlives a test run
    server = peer(latency=LATENCY).on("POST", MESSAGES, lambda req: Reply(200, {
        "messaging_product": "whatsapp", "contacts": [{"input": req.json["to"], "wa_id": req.json["to"]}],
        "messages": [{"id": f"wamid.{len(server.calls())}"}]}))
    make_provider("meta_whatsapp", config={"base_url": server.url, "phone_number_id": "1055"},
                  secrets={"access_token": "EAAG-meta-token", "app_secret": APP_SECRET})
    return server


def test_a_shipped_template_goes_out_with_its_parameters_filled_from_the_event(graph, organization, user):
    from notifications.services import event_emit
    from notifications.engine.delivery import deliver_batch
    from notifications.models import NotificationDelivery

    result = event_emit(organization=organization, type="api_key.expiring", recipient_ids=[user.pk], channels=["WHATSAPP"],
                        data={"keyName": "ci-deploy", "expiresAt": "2026-12-24"}, action_url="/settings/api-keys")
    deliver_batch(delivery_ids=list(NotificationDelivery.objects.filter(notification_id=result.notifications[0][0])
                                    .values_list("pk", flat=True)))
    delivery = NotificationDelivery.objects.get(notification_id=result.notifications[0][0])
    assert delivery.status == DeliveryStatus.SENT, delivery.error
    template = graph.calls()[-1].json["template"]
    assert template["name"] == "troubadour_api_key_expiring"
    (body,) = template["components"]
    assert body["type"] == "body"
    assert [p["text"] for p in body["parameters"]] == ["ci-deploy", "2026-12-24", "https://troubadour.test/settings/api-keys"]


def test_template_header_media_and_buttons_reach_meta(graph, organization, user):
    payload_event_type(extra={Channel.WHATSAPP: {"template_name": "deploy_done", "template_language": "en_US",
                                                 "header_parameters": ["{{ deploy.id }}"],
                                                 "body_parameters": ["{{ deploy.name }}"]}})
    deliveries = trigger(organization=organization, user=user, channels=[Channel.WHATSAPP], options={"WHATSAPP": {
        "buttons": [{"type": "url", "text": "Open", "url": "https://app.example.com/deploys/7"},
                    {"type": "reply", "text": "Roll back", "id": "rollback-7"}]}})
    assert deliveries[Channel.WHATSAPP].status == DeliveryStatus.SENT, deliveries[Channel.WHATSAPP].error
    template = graph.calls()[-1].json["template"]
    assert template["language"] == {"code": "en_US"}
    assert template["components"] == [
        {"type": "header", "parameters": [{"type": "text", "text": "D-7"}]},
        {"type": "body", "parameters": [{"type": "text", "text": "apollo-7"}]},
        {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "https://app.example.com/deploys/7"}]},
        {"type": "button", "sub_type": "quick_reply", "index": "1", "parameters": [{"type": "payload", "payload": "rollback-7"}]},
    ]

    # a document as the header of a template without a header of its own
    trigger(organization=organization, user=user, channels=[Channel.WHATSAPP], options={"WHATSAPP": {
        "template_name": "report_ready", "media_url": "https://cdn.example.com/r.pdf", "media_type": "document",
        "template_components": [{"type": "body", "parameters": [{"type": "text", "text": "weekly"}]}]}})
    template = graph.calls()[-1].json["template"]
    assert template["name"] == "report_ready"
    assert template["components"][0] == {"type": "header", "parameters": [
        {"type": "document", "document": {"link": "https://cdn.example.com/r.pdf"}}]}


def _inbound(client: Client, *, wa_id: str) -> int:
    body = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"phone_number_id": "1055"},
        "messages": [{"from": wa_id, "id": "wamid.in", "timestamp": str(int(time.time()) - 60), "type": "text",
                      "text": {"body": "hello"}}]}}]}]}).encode()
    signature = hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return client.post("/webhooks/meta/whatsapp/", body, content_type="application/json",
                       HTTP_X_HUB_SIGNATURE_256=f"sha256={signature}").status_code


def test_free_text_only_inside_the_window_the_customers_message_opened(graph, organization, user):
    payload_event_type()  # this template names no WhatsApp template: free text
    deliveries = trigger(organization=organization, user=user, channels=[Channel.WHATSAPP])
    delivery = deliveries[Channel.WHATSAPP]
    assert delivery.status == DeliveryStatus.FAILED and "24-hour customer service window" in delivery.error
    assert graph.calls() == []

    assert _inbound(Client(), wa_id="33612345678") == 200  # the customer writes: the window opens
    deliveries = trigger(organization=organization, user=user, channels=[Channel.WHATSAPP], options={"WHATSAPP": {
        "media_url": "https://cdn.example.com/graph.png", "media_type": "image"}})
    assert deliveries[Channel.WHATSAPP].status == DeliveryStatus.SENT, deliveries[Channel.WHATSAPP].error
    sent = graph.calls()[-1].json
    assert sent["type"] == "image"
    assert sent["image"] == {"link": "https://cdn.example.com/graph.png", "caption": "Deploy apollo-7 finished."}

    trigger(organization=organization, user=user, channels=[Channel.WHATSAPP], options={"WHATSAPP": {
        "buttons": [{"type": "reply", "text": "Ack", "id": "ack"}, {"type": "reply", "text": "Snooze", "id": "snooze"}]}})
    interactive = graph.calls()[-1].json["interactive"]
    assert interactive["type"] == "button" and interactive["body"] == {"text": "Deploy apollo-7 finished."}
    assert [b["reply"] for b in interactive["action"]["buttons"]] == [{"id": "ack", "title": "Ack"},
                                                                      {"id": "snooze", "title": "Snooze"}]


def test_a_forged_inbound_message_opens_no_window(graph, organization, user):
    client = Client()
    body = json.dumps({"entry": [{"changes": [{"value": {"metadata": {"phone_number_id": "1055"},
                                                         "messages": [{"from": "33612345678", "timestamp": "1"}]}}]}]})
    assert client.post("/webhooks/meta/whatsapp/", body, content_type="application/json",
                       HTTP_X_HUB_SIGNATURE_256="sha256=" + "0" * 64).status_code == 403
    payload_event_type()
    assert trigger(organization=organization, user=user, channels=[Channel.WHATSAPP])[Channel.WHATSAPP].status == DeliveryStatus.FAILED
