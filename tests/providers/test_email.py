from __future__ import annotations

import email
import email.policy
import socket
import threading

import pytest
from aiosmtpd.controller import Controller

from common.exceptions import ProviderPermanentError, ProviderTransientError
from notifications.enums import Channel
from providers.base import Attachment, OutboundMessage
from providers.registry import registry

from .peers import Reply


class _Inbox:
    def __init__(self):
        self.messages: list[tuple[str, list[str], email.message.EmailMessage]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 OK"


@pytest.fixture
def smtp_server():
    inbox = _Inbox()
    with socket.socket() as probe:  # aiosmtpd's start-up self-check needs a real port number
        probe.bind(("127.0.0.1", 0))
        inbox.port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=inbox.port)
    controller.start()
    yield inbox
    controller.stop()


def _message(**overrides) -> OutboundMessage:
    base = dict(channel=Channel.EMAIL, to="ada@example.com", subject="Your task", text="Plain body", html="<p>HTML body</p>",
                reply_to="team@example.com", idempotency_key="42", track_opens=True, track_clicks=False,
                attachments=[Attachment("notes.txt", b"hello attachment", "text/plain")],
                unsubscribe_url="https://troubadour.test/u/token/")
    base.update(overrides)
    return OutboundMessage(**base)


def test_smtp_provider_delivers_a_mime_message_with_both_parts_and_one_click_unsubscribe(smtp_server):
    provider = registry.get("smtp")(config={"host": "127.0.0.1", "port": smtp_server.port, "from_email": "Troubadour <no-reply@troubadour.test>"})
    result = provider.send(_message())

    assert len(smtp_server.messages) == 1
    mail_from, rcpts, msg = smtp_server.messages[0]
    assert rcpts == ["ada@example.com"] and mail_from == "no-reply@troubadour.test"
    assert msg["Subject"] == "Your task"
    assert msg["Reply-To"] == "team@example.com"
    assert msg["List-Unsubscribe"] == "<https://troubadour.test/u/token/>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["Message-ID"] == result.provider_message_id
    assert msg.get_body(("plain",)).get_content().strip() == "Plain body"
    assert msg.get_body(("html",)).get_content().strip() == "<p>HTML body</p>"
    attachments = list(msg.iter_attachments())
    assert [(a.get_filename(), a.get_content()) for a in attachments] == [("notes.txt", "hello attachment")]


def test_smtp_provider_unreachable_is_transient():
    provider = registry.get("smtp")(config={"host": "127.0.0.1", "port": 1, "timeout": 2})
    with pytest.raises(ProviderTransientError):
        provider.send(_message())


@pytest.mark.postgres
def test_unsubscribe_link_is_built_for_a_known_user(smtp_server, user):
    provider = registry.get("smtp")(config={"host": "127.0.0.1", "port": smtp_server.port})
    provider.send(_message(unsubscribe_url="", metadata={"user_id": user.pk, "category": "SECURITY"}))
    header = str(smtp_server.messages[0][2]["List-Unsubscribe"]).strip()
    assert header.startswith("<https://troubadour.test/u/") and header.endswith("/>")


def _sendgrid(peer_url: str):
    return registry.get("sendgrid")(config={"api_url": f"{peer_url}/v3/", "from_email": "no-reply@troubadour.test"},
                                    credentials={"api_key": "SG.test-key-0123456789"})


def test_sendgrid_send_maps_every_option_to_the_v3_mail_send_payload(peer):
    sendgrid = peer().on("POST", "/v3/mail/send", Reply(202, b"", {"X-Message-Id": "sg-abc"}))
    result = _sendgrid(sendgrid.url).send(_message())

    (call,) = sendgrid.calls("POST", "/v3/mail/send")
    assert call.header("Authorization") == "Bearer SG.test-key-0123456789"
    body = call.json
    assert body["subject"] == "Your task"
    assert body["reply_to_list"] == [{"email": "team@example.com"}]
    assert {c["type"]: c["value"] for c in body["content"]} == {"text/plain": "Plain body", "text/html": "<p>HTML body</p>"}
    assert body["tracking_settings"]["open_tracking"]["enable"] is True
    assert body["tracking_settings"]["click_tracking"]["enable"] is False
    assert body["attachments"][0]["filename"] == "notes.txt"
    assert body["headers"]["List-Unsubscribe"] == "<https://troubadour.test/u/token/>"
    assert body["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert body["personalizations"][0]["to"] == [{"email": "ada@example.com"}]
    assert body["custom_args"]["delivery_id"] == "42"
    assert result.provider_message_id == body["personalizations"][0]["custom_args"]["anymail_id"]  # echoed by tracking webhooks


@pytest.mark.parametrize("status, error", [(503, ProviderTransientError), (429, ProviderTransientError),
                                           (401, ProviderPermanentError), (400, ProviderPermanentError)])
def test_sendgrid_error_classes(peer, status, error):
    sendgrid = peer().on("POST", "/v3/mail/send", Reply(status, {"errors": [{"message": "nope"}]}))
    with pytest.raises(error):
        _sendgrid(sendgrid.url).send(_message())


def test_sendgrid_batch_is_one_call_with_per_recipient_headers_and_metadata(peer):
    sendgrid = peer().on("POST", "/v3/mail/send", Reply(202))
    messages = [_message(to=f"user{i}@example.com", idempotency_key=str(100 + i), attachments=[],
                         unsubscribe_url=f"https://troubadour.test/u/t{i}/") for i in range(3)]
    results = _sendgrid(sendgrid.url).send_batch(messages)

    (call,) = sendgrid.calls("POST", "/v3/mail/send")  # one request for three messages
    personalizations = call.json["personalizations"]
    assert [p["to"][0]["email"] for p in personalizations] == ["user0@example.com", "user1@example.com", "user2@example.com"]
    assert [p["headers"]["List-Unsubscribe"] for p in personalizations] == [f"<https://troubadour.test/u/t{i}/>" for i in range(3)]
    assert [p["custom_args"]["delivery_id"] for p in personalizations] == ["100", "101", "102"]
    assert len({r.provider_message_id for r in results}) == 3


def test_mailgun_and_postmark_accept_an_api_url(peer):
    mailgun = peer().on("POST", r"/v3/mg\.example\.com/messages", Reply(200, {"id": "<mg-1@mg.example.com>", "message": "Queued"}))
    provider = registry.get("mailgun")(config={"api_url": f"{mailgun.url}/v3/", "sender_domain": "mg.example.com"},
                                       credentials={"api_key": "key-123"})
    assert provider.send(_message(attachments=[])).provider_message_id == "<mg-1@mg.example.com>"

    postmark = peer().on("POST", "/email", Reply(200, {"To": "ada@example.com", "MessageID": "pm-1", "ErrorCode": 0, "Message": "OK"}))
    provider = registry.get("postmark")(config={"api_url": f"{postmark.url}/"}, credentials={"server_token": "pm-token"})
    assert provider.send(_message(attachments=[])).provider_message_id == "pm-1"
    assert postmark.calls()[0].header("X-Postmark-Server-Token") == "pm-token"


def test_amazon_ses_sends_the_raw_mime_through_the_sesv2_api(peer):
    import base64

    ses = peer().on("POST", "/v2/email/outbound-emails", Reply(200, {"MessageId": "0100018c-ses-id"}))
    provider = registry.get("amazon_ses")(config={"endpoint_url": ses.url, "region": "eu-west-1", "configuration_set_name": "tracking"},
                                          credentials={"access_key_id": "AKIDTEST", "secret_access_key": "ses-secret"})
    result = provider.send(_message())

    (call,) = ses.calls("POST", "/v2/email/outbound-emails")
    assert call.header("Authorization").startswith("AWS4-HMAC-SHA256 Credential=AKIDTEST/") and "/eu-west-1/ses/" in call.header("Authorization")
    assert "ses-secret" not in call.body.decode()
    assert call.json["ConfigurationSetName"] == "tracking"
    mime = email.message_from_bytes(base64.b64decode(call.json["Content"]["Raw"]["Data"]), policy=email.policy.default)
    assert mime["To"] == "ada@example.com" and mime["Reply-To"] == "team@example.com"
    assert mime["List-Unsubscribe"] == "<https://troubadour.test/u/token/>"
    assert mime.get_body(("html",)).get_content().strip() == "<p>HTML body</p>"
    assert [a.get_filename() for a in mime.iter_attachments()] == ["notes.txt"]
    assert result.provider_message_id == "0100018c-ses-id"


def test_amazon_ses_throttling_is_transient_and_a_rejected_message_permanent(peer):
    ses = peer().on("POST", "/v2/email/outbound-emails", Reply(429, {"message": "Maximum sending rate exceeded."},
                                                                {"x-amzn-ErrorType": "TooManyRequestsException"}))
    provider = registry.get("amazon_ses")(config={"endpoint_url": ses.url}, credentials={"access_key_id": "AKID", "secret_access_key": "s"})
    with pytest.raises(ProviderTransientError):
        provider.send(_message(attachments=[]))
    ses.on("POST", "/v2/email/outbound-emails", Reply(400, {"message": "Email address is not verified."},
                                                       {"x-amzn-ErrorType": "MessageRejected"}))
    with pytest.raises(ProviderPermanentError):
        provider.send(_message(attachments=[]))


def test_amazon_ses_batch_sends_each_recipient_its_own_message(peer):
    ses = peer().on("POST", "/v2/email/outbound-emails", lambda req: Reply(200, {"MessageId": f"ses-{len(ses.calls())}"}))
    provider = registry.get("amazon_ses")(config={"endpoint_url": ses.url}, credentials={"access_key_id": "AKID", "secret_access_key": "s"})
    messages = [_message(to=f"user{i}@example.com", attachments=[], unsubscribe_url=f"https://troubadour.test/u/t{i}/") for i in range(2)]
    results = provider.send_batch(messages)
    assert [type(r).__name__ for r in results] == ["SendResult", "SendResult"]
    assert len({r.provider_message_id for r in results}) == 2


def test_smtp_provider_greets_with_its_helo_name(smtp_server):
    greetings = []

    async def handle_EHLO(server, session, envelope, hostname, responses):
        greetings.append(hostname)
        session.host_name = hostname
        return responses

    smtp_server.handle_EHLO = handle_EHLO
    provider = registry.get("smtp")(config={"host": "127.0.0.1", "port": smtp_server.port, "helo_name": "mail.troubadour.test",
                                           "from_email": "no-reply@troubadour.test"})
    provider.send(_message(attachments=[]))
    assert greetings == ["mail.troubadour.test"] and len(smtp_server.messages) == 1
    assert provider.health_check().ok
