"""Plivo, MessageBird, OneSignal and Vonage Voice against loopback peers speaking their APIs
(with a realistic answer time), and the Google Workspace SMTP relay preset against an
aiosmtpd relay that requires STARTTLS and SMTP AUTH, as Google's does."""
from __future__ import annotations

import asyncio
import base64
import ssl
import threading
import time
import uuid
from decimal import Decimal

import jwt
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from common.exceptions import ProviderPermanentError, ProviderTransientError
from notifications.enums import Channel
from providers.base import DeliveryEventType, OutboundMessage
from providers.registry import registry

from .peers import Reply, _self_signed

LATENCY = 0.05  # seconds: the peers answer like a nearby API, not instantly


def slow(reply):
    def answer(req):
        time.sleep(LATENCY)
        return reply(req) if callable(reply) else reply
    return answer


def _sms(to: str = "+447400123456", text: str = "Deploy finished") -> OutboundMessage:
    return OutboundMessage(channel=Channel.SMS, to=to, text=text, idempotency_key="41")


# --- Plivo -----------------------------------------------------------------------------------

PLIVO_ID = "MAXXXXXXXXXXXXXXXXXX"


def _plivo(url: str):
    return registry.get("plivo_sms")(config={"base_url": url, "from_number": "+14155550122"},
                                     credentials={"auth_id": PLIVO_ID, "auth_token": "plivo-secret-token"})


def test_plivo_sends_with_basic_auth_and_polls_the_state_and_price(peer):
    plivo = peer().on("POST", rf"/v1/Account/{PLIVO_ID}/Message/", slow(Reply(202, {
        "api_id": "db342550", "message": "message(s) queued", "message_uuid": ["db3ce55a-7f1d-11e1-8ea7-1231380bc196"]})))
    plivo.on("GET", rf"/v1/Account/{PLIVO_ID}/Message/db3ce55a-7f1d-11e1-8ea7-1231380bc196/", slow(Reply(200, {
        "message_state": "delivered", "total_amount": "0.03500", "to_number": "447400123456", "error_code": "0"})))
    provider = _plivo(plivo.url)

    result = provider.send(_sms(text="Réunion à 15h"))
    (call,) = plivo.calls("POST")
    assert call.json == {"src": "14155550122", "dst": "447400123456", "text": "Réunion à 15h", "type": "sms"}
    assert call.header("Authorization") == "Basic " + base64.b64encode(f"{PLIVO_ID}:plivo-secret-token".encode()).decode()
    assert result.provider_message_id == "db3ce55a-7f1d-11e1-8ea7-1231380bc196" and result.segments == 1

    event = provider.get_delivery_status(result.provider_message_id)
    assert (event.event, event.cost_amount, event.cost_currency, event.reason) == (DeliveryEventType.DELIVERED, Decimal("0.035"), "USD", "")


@pytest.mark.parametrize("status, error, code", [
    (401, ProviderPermanentError, "auth"), (400, ProviderPermanentError, "400"), (429, ProviderTransientError, "429"),
    (503, ProviderTransientError, "503"),
])
def test_plivo_errors(peer, status, error, code):
    plivo = peer().on("POST", rf"/v1/Account/{PLIVO_ID}/Message/", slow(Reply(status, {"api_id": "x", "error": "refused"},
                                                                              {"Retry-After": "7"})))
    with pytest.raises(error) as err:
        _plivo(plivo.url).send(_sms())
    assert err.value.code == code and "plivo-secret-token" not in str(err.value.detail)
    if status == 429:
        assert err.value.retry_after == 7.0


def test_plivo_health_check_tells_refused_credentials_apart(peer):
    plivo = peer().on("GET", rf"/v1/Account/{PLIVO_ID}/", slow(Reply(401, {"error": "Authentication credentials invalid"})))
    assert _plivo(plivo.url).health_check().credentials_refused is True
    plivo.on("GET", rf"/v1/Account/{PLIVO_ID}/", slow(Reply(200, {"cash_credits": "12.50", "account_type": "standard"})))
    result = _plivo(plivo.url).health_check()
    assert result.ok and result.detail == "credits 12.50" and not result.credentials_refused


# --- MessageBird (Bird) ------------------------------------------------------------------------


def _bird(url: str):
    return registry.get("messagebird_sms")(config={"base_url": url, "originator": "Troubadour"},
                                           credentials={"access_key": "live_bird_access_key"})


def test_messagebird_sends_with_its_access_key_and_polls_each_recipients_status(peer):
    bird = peer().on("POST", "/messages", slow(Reply(201, {"id": "e8077d803532c0b5937c639b60216938",
                                                          "recipients": {"totalCount": 1, "totalSentCount": 1}})))
    bird.on("GET", "/messages/e8077d803532c0b5937c639b60216938", slow(Reply(200, {"id": "e8077d803532c0b5937c639b60216938", "recipients": {
        "items": [{"recipient": 447400123456, "status": "delivery_failed", "statusReason": "unknown subscriber", "statusErrorCode": 1}]}})))
    provider = _bird(bird.url)

    result = provider.send(_sms(text="Déploiement ✓"))
    (call,) = bird.calls("POST", "/messages")
    assert call.header("Authorization") == "AccessKey live_bird_access_key"
    assert call.json == {"recipients": ["447400123456"], "originator": "Troubadour", "body": "Déploiement ✓",
                         "datacoding": "unicode", "reference": "41"}
    assert result.provider_message_id == "e8077d803532c0b5937c639b60216938"

    event = provider.get_delivery_status(result.provider_message_id)
    assert (event.event, event.reason, event.recipient) == (DeliveryEventType.FAILED, "unknown subscriber (error 1)", "+447400123456")


@pytest.mark.parametrize("status, bird_code, code", [(401, 2, "auth"), (422, 9, "invalid_recipient"), (500, None, "500")])
def test_messagebird_errors(peer, status, bird_code, code):
    body = {"errors": [{"code": bird_code, "description": "refused", "parameter": "x"}]} if bird_code else {}
    bird = peer().on("POST", "/messages", slow(Reply(status, body)))
    with pytest.raises(ProviderPermanentError if status < 500 else ProviderTransientError) as err:
        _bird(bird.url).send(_sms())
    assert err.value.code == code


# --- OneSignal ---------------------------------------------------------------------------------


def _onesignal(url: str):
    return registry.get("onesignal")(config={"base_url": url, "app_id": "5eb5a37e-b458-11e3-ac11-000c2940e62c"},
                                     credentials={"rest_api_key": "os_v2_app_secret_key"})


def _push(**kw) -> OutboundMessage:
    return OutboundMessage(channel=Channel.PUSH, to="42", title="Incident", text="Disk full on db-1", criticality="CRITICAL",
                           action_url="https://troubadour.test/incidents/7", data={"incident": "7"}, idempotency_key="99", **kw)


def test_onesignal_targets_the_users_external_id_and_polls_the_outcome(peer):
    onesignal = peer().on("POST", "/notifications", slow(Reply(200, {"id": "b98881cc-1e94-4366-bbd9-db8f3429292b", "external_id": None})))
    onesignal.on("GET", "/notifications/b98881cc-1e94-4366-bbd9-db8f3429292b", slow(Reply(200, {
        "id": "b98881cc-1e94-4366-bbd9-db8f3429292b", "successful": 2, "failed": 0, "errored": 0, "remaining": 0})))
    provider = _onesignal(onesignal.url)

    result = provider.send(_push(locale="fr"))
    (call,) = onesignal.calls("POST", "/notifications")
    body = call.json
    assert call.header("Authorization") == "Key os_v2_app_secret_key"
    assert body["include_aliases"] == {"external_id": ["42"]} and body["target_channel"] == "push"
    assert body["headings"] == {"en": "Incident", "fr": "Incident"} and body["contents"]["fr"] == "Disk full on db-1"
    assert (body["url"], body["data"], body["ttl"], body["priority"]) == ("https://troubadour.test/incidents/7", {"incident": "7"}, 900, 10)
    assert uuid.UUID(body["idempotency_key"]) and body["idempotency_key"] == provider._body(_push())["idempotency_key"]
    assert result.provider_message_id == "b98881cc-1e94-4366-bbd9-db8f3429292b"

    event = provider.get_delivery_status(result.provider_message_id)
    assert event.event == DeliveryEventType.DELIVERED
    (poll,) = onesignal.calls("GET")
    assert poll.query == {"app_id": ["5eb5a37e-b458-11e3-ac11-000c2940e62c"]}


def test_onesignal_without_a_subscribed_device_fails_that_message_and_401_is_the_credentials(peer):
    onesignal = peer().on("POST", "/notifications", slow(Reply(200, {"id": "", "errors": ["All included players are not subscribed"]})))
    with pytest.raises(ProviderPermanentError) as err:
        _onesignal(onesignal.url).send(_push())
    assert err.value.code == "no_subscription" and "not subscribed" in err.value.detail
    onesignal.on("POST", "/notifications", slow(Reply(401, {"errors": ["Access denied. Please include an 'Authorization: ...' header"]})))
    with pytest.raises(ProviderPermanentError) as err:
        _onesignal(onesignal.url).send(_push())
    assert err.value.code == "auth"


# --- Vonage Voice --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vonage_key() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


def test_vonage_voice_places_a_call_with_talk_and_a_dtmf_input(peer, tmp_path, monkeypatch, vonage_key):
    private, public = vonage_key
    vonage = peer(tls_dir=tmp_path / "tls").on("POST", "/v1/calls", slow(Reply(201, {
        "uuid": "63f61863-4a51-4f6b-86e1-46edebcf9356", "status": "started", "direction": "outbound",
        "conversation_uuid": "CON-f972836a-550f-45fa-956c-12a2ab5b7d22"})))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(vonage.ca_path))
    provider = registry.get("vonage_voice")(config={"api_host": vonage.host, "from_number": "+14155550133"},
                                            credentials={"application_id": "aaaaaaaa-bbbb-cccc-dddd-0123456789ab", "private_key": private})
    message = OutboundMessage(channel=Channel.VOICE, to="+33612345678", text="Le serveur db-1 est tombé.", locale="fr",
                              require_acknowledgment=True, acknowledgment_digit="1", idempotency_key="5")

    result = provider.send(message)

    (call,) = vonage.calls("POST", "/v1/calls")
    claims = jwt.decode(call.header("Authorization").removeprefix("Bearer "), public, algorithms=["RS256"])
    assert claims["application_id"] == "aaaaaaaa-bbbb-cccc-dddd-0123456789ab"
    body = call.json
    assert body["to"] == [{"number": "33612345678", "type": "phone"}] and body["from"] == {"number": "14155550133", "type": "phone"}
    assert body["event_url"] == ["https://troubadour.test/webhooks/vonage/voice/event/"]
    talk, prompt, dtmf = body["ncco"]
    assert (talk["action"], talk["text"], talk["language"]) == ("talk", "Le serveur db-1 est tombé.", "fr-FR")
    assert prompt["text"] == "Appuyez sur 1 pour confirmer la réception de cette notification."
    assert dtmf["action"] == "input" and dtmf["type"] == ["dtmf"] and dtmf["dtmf"]["maxDigits"] == 1
    assert dtmf["eventUrl"] == ["https://troubadour.test/webhooks/vonage/voice/event/"]
    assert result.provider_message_id == "63f61863-4a51-4f6b-86e1-46edebcf9356"


def test_vonage_voice_refused_credentials(peer, tmp_path, monkeypatch, vonage_key):
    vonage = peer(tls_dir=tmp_path / "tls").on("POST", "/v1/calls", slow(Reply(401, {"type": "UNAUTHORIZED", "title": "Unauthorized"})))
    vonage.on("GET", "/v1/calls", slow(Reply(401, {"type": "UNAUTHORIZED", "title": "Unauthorized"})))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(vonage.ca_path))
    provider = registry.get("vonage_voice")(config={"api_host": vonage.host, "from_number": "+14155550133"},
                                            credentials={"application_id": "app-1", "private_key": vonage_key[0]})
    with pytest.raises(ProviderPermanentError) as err:
        provider.send(OutboundMessage(channel=Channel.VOICE, to="+33612345678", text="x"))
    assert err.value.code == "auth"
    assert provider.health_check().credentials_refused is True


# --- Google Workspace SMTP relay -------------------------------------------------------------------


class _Relay:
    """What a Google-like relay saw: the EHLO name, the authenticated login and each message."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes, str, str]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(LATENCY)
        with self.lock:
            login = session.auth_data.login.decode() if session.auth_data else ""
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content, session.host_name, login))
        return "250 2.0.0 OK  1700000000 relay"


def _authenticator(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == b"alerts@acme.example" and auth_data.password == b"app-password-123"
    return AuthResult(success=ok, handled=False, auth_data=auth_data)


@pytest.fixture
def google_relay(tmp_path, monkeypatch):
    import socket

    cert, key, ca = _self_signed(tmp_path / "tls")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))  # the client verifies the relay's certificate
    relay = _Relay()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        relay.port = probe.getsockname()[1]
    controller = Controller(relay, hostname="127.0.0.1", port=relay.port, tls_context=context, require_starttls=True,
                            authenticator=_authenticator, auth_require_tls=True)
    controller.start()
    yield relay
    controller.stop()


def _google(port: int, password: str = "app-password-123"):
    return registry.get("google_workspace_relay")(
        config={"host": "127.0.0.1", "port": port, "from_email": "Acme alerts <alerts@acme.example>", "helo_name": "mail.acme.example"},
        credentials={"username": "alerts@acme.example", "password": password})


def test_google_workspace_relay_preset_and_its_defaults(google_relay):
    preset = registry.get("google_workspace_relay")(config={"from_email": "alerts@acme.example"})
    assert (preset.config["host"], preset.config["port"], preset.config["use_tls"]) == ("smtp-relay.gmail.com", 587, True)
    assert preset.config["helo_name"] == "troubadour.test"  # the site's host name, not the container's

    result = _google(google_relay.port).send(OutboundMessage(channel=Channel.EMAIL, to="ada@example.com", subject="Outage",
                                                             text="db-1 is down", idempotency_key="3"))
    ((mail_from, rcpts, content, ehlo, login),) = google_relay.messages
    assert (mail_from, rcpts, ehlo, login) == ("alerts@acme.example", ["ada@example.com"], "mail.acme.example", "alerts@acme.example")
    assert b"Subject: Outage" in content and b"X-Troubadour-Delivery: 3" in content
    assert result.provider_message_id.startswith("<")


def test_google_workspace_relay_refusing_the_app_password(google_relay):
    with pytest.raises(ProviderPermanentError) as err:
        _google(google_relay.port, password="wrong").send(OutboundMessage(channel=Channel.EMAIL, to="ada@example.com", subject="x", text="y"))
    assert err.value.code == "auth" and google_relay.messages == []
    check = _google(google_relay.port, password="wrong").health_check()
    assert not check.ok and check.credentials_refused
    assert _google(google_relay.port).health_check().ok
