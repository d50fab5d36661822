"""An organization's provider records: where their requests may go, and whose credentials
sign them. An Amazon record pointed at a custom endpoint never signs with the platform's AWS
keys (boto3's default chain); organization admins may name only Amazon's endpoints, and no
organization record reaches an internal address, at save time or at send time."""
from __future__ import annotations

import pytest

from accounts.models import MembershipRole
from common.exceptions import ProviderPermanentError
from notifications.enums import Channel
from providers.models import NotificationProvider
from providers.base import OutboundMessage
from providers.selectors import binding_for_record
from providers.services import provider_create, provider_instantiate
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory
from tests.providers.peers import HttpPeer, Reply

from .conftest import token_session

pytestmark = [pytest.mark.postgres]

PROVIDERS = "/api/v1/admin/providers/"
PLATFORM_KEY_ID = "AKIAPLATFORM00000000"
ORG_KEY_ID = "AKIAORGANIZATION0000"


@pytest.fixture
def platform_aws(monkeypatch):
    """The platform's own AWS identity, as boto3's default chain would find it."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", PLATFORM_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "platform-aws-secret-key-0000000000")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def ses_peer():
    """Someone's endpoint that speaks SES v2 and SNS, recording what it is sent."""
    sns_ok = ('<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><PublishResult><MessageId>sns-1'
              "</MessageId></PublishResult><ResponseMetadata><RequestId>r1</RequestId></ResponseMetadata></PublishResponse>")
    server = (HttpPeer().on("POST", "/v2/email/outbound-emails", Reply(200, {"MessageId": "ses-1"}))
              .on("POST", "/", Reply(200, sns_ok, {"Content-Type": "text/xml"})).start())
    yield server
    server.stop()


def _owner():
    organization = OrganizationFactory()
    user = UserFactory()
    MembershipFactory(user=user, organization=organization, role=MembershipRole.OWNER)
    return organization, user


def _email() -> OutboundMessage:
    return OutboundMessage(channel=Channel.EMAIL, to="ada@example.com", subject="Hello", text="Body",
                           from_address="noreply@troubadour.test")


def _sms() -> OutboundMessage:
    return OutboundMessage(channel=Channel.SMS, to="+14155550100", text="Body")


@pytest.mark.django_db
@pytest.mark.parametrize("code, message", [("amazon_ses", _email), ("sns_sms", _sms)])
def test_a_custom_aws_endpoint_never_signs_with_the_platform_keys(settings, platform_aws, ses_peer, field_keys, code, message):
    settings.OUTBOUND_ALLOW_LOOPBACK = True  # the endpoint is a loopback peer
    organization, _owner_user = _owner()
    # The platform's record (Amazon's endpoint, the environment's keys) exists too.
    provider_create(organization_id=None, code=code, name="platform", config={"region": "eu-west-1"})
    record = provider_create(organization_id=organization.pk, code=code, name="theirs",
                             config={"endpoint_url": ses_peer.url, "region": "eu-west-1"})
    provider = provider_instantiate(binding_for_record(record))
    with pytest.raises(ProviderPermanentError) as refused:
        provider.send(message())
    assert refused.value.code == "configuration"
    assert ses_peer.calls() == []  # nothing signed, nothing sent
    health = provider.health_check()
    assert health.ok is False and ses_peer.calls() == []

    # With its own keys the record works, and signs with those only.
    from providers.services import provider_update

    provider_update(provider_id=record.pk, secrets={"access_key_id": ORG_KEY_ID, "secret_access_key": "org-aws-secret-0000"})
    record.refresh_from_db()
    provider_instantiate(binding_for_record(record)).send(message())
    [call] = ses_peer.calls("POST")
    assert call.header("Authorization").startswith(f"AWS4-HMAC-SHA256 Credential={ORG_KEY_ID}/")
    assert PLATFORM_KEY_ID not in str(call.headers) + call.body.decode(errors="replace")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("code, config, secrets", [
    ("amazon_ses", {"endpoint_url": "https://ses.attacker.example/"}, {"access_key_id": ORG_KEY_ID, "secret_access_key": "x" * 20}),
    ("amazon_ses", {"endpoint_url": "https://amazonaws.com.attacker.example/"}, {}),
    ("amazon_ses", {"endpoint_url": "http://email.eu-west-1.amazonaws.com/"}, {}),
    ("sns_sms", {"endpoint_url": "https://127.0.0.1:4566/"}, {}),
    ("sns_sms", {"endpoint_url": "https://[64:ff9b::a9fe:a9fe]/"}, {}),
    ("sendgrid", {"api_url": "http://169.254.169.254/latest/meta-data/"}, {"api_key": "SG.theirs-000000000"}),
    ("sendgrid", {"api_url": "https://api.sendgrid.com:0/v3/"}, {"api_key": "SG.theirs-000000000"}),
    ("twilio_sms", {"base_url": "https://[::ffff:10.0.0.1]"}, {}),
    ("smtp", {}, {"host": "10.0.0.25", "username": "me", "password": "pw-0000000000"}),
    ("smtp", {"host": "localhost"}, {}),
])
def test_organization_admins_cannot_point_a_record_inside_or_away_from_amazon(live_server, settings, field_keys, code, config, secrets):
    settings.OUTBOUND_ALLOW_LOOPBACK = False
    organization, owner = _owner()
    client = token_session(owner)
    answer = client.post(live_server.url + PROVIDERS, json={"code": code, "name": "theirs", "config": config, "secrets": secrets},
                         timeout=10)
    assert answer.status_code == 400 and "config" in answer.json(), answer.text
    assert not NotificationProvider.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_amazon_endpoints_for_organizations_and_any_endpoint_from_platform_staff(live_server, settings, field_keys):
    settings.OUTBOUND_ALLOW_LOOPBACK = False
    organization, owner = _owner()
    own = token_session(owner).post(live_server.url + PROVIDERS, json={
        "code": "amazon_ses", "name": "regional", "config": {"endpoint_url": "https://email.eu-west-1.amazonaws.com"}}, timeout=10)
    assert own.status_code == 201, own.text
    patched = token_session(owner).patch(live_server.url + PROVIDERS + f"{own.json()['id']}/", json={
        "config": {"endpoint_url": "https://ses-proxy.example.net"}}, timeout=10)
    assert patched.status_code == 400
    assert NotificationProvider.objects.get().config == {"endpoint_url": "https://email.eu-west-1.amazonaws.com"}
    staff = UserFactory(is_staff=True, is_superuser=True)
    other = OrganizationFactory()
    made = token_session(staff).post(live_server.url + PROVIDERS, json={
        "code": "sns_sms", "name": "proxied", "organization_id": other.pk,
        "config": {"endpoint_url": "https://sns-proxy.example.net"}}, timeout=10)
    assert made.status_code == 201, made.text


@pytest.mark.django_db(transaction=True)
def test_an_organization_endpoint_that_resolves_inside_is_refused_at_send_and_health_check(live_server, settings, field_keys, resolver):
    """Saved when its name was public (or by an internal caller), the record's host now answers
    127.0.0.1: the health check and sends neither reach it nor say more than "cannot be used"."""
    settings.OUTBOUND_ALLOW_LOOPBACK = False
    internal = HttpPeer().on("GET", r"/.*", Reply(200, {"sid": "AC1"})).on("POST", r"/.*", Reply(201, {"sid": "SM1"})).start()
    try:
        port = internal.server.server_address[1]
        resolver.answers["api.twilio-proxy.example"] = ["127.0.0.1"]
        organization, owner = _owner()
        record = provider_create(organization_id=organization.pk, code="twilio_sms", name="theirs",
                                 config={"base_url": f"http://api.twilio-proxy.example:{port}", "from_number": "+14155550111"},
                                 secrets={"account_sid": "AC" + "1" * 32, "auth_token": "their-token-0000000000"})
        check = token_session(owner).post(live_server.url + PROVIDERS + f"{record.pk}/health-check/", timeout=30)
        assert check.status_code == 200, check.text
        body = check.json()["check"]
        assert body["is_healthy"] is False and body["error_message"] == "Provider twilio_sms: its base_url cannot be used."
        from django.core.exceptions import ImproperlyConfigured

        with pytest.raises(ImproperlyConfigured):
            provider_instantiate(binding_for_record(record))
        assert internal.calls() == []
    finally:
        internal.stop()


@pytest.mark.django_db
def test_an_fcm_key_whose_token_uri_points_inside_is_refused(settings, resolver):
    """google-auth posts a signed assertion to the key's `token_uri`, a value the key's owner
    wrote: one resolving to an internal address is never contacted."""
    from providers.registry import registry
    from providers.models import PushSubscription, PushSubscriptionKind
    from tests.providers.test_push import _service_account

    settings.OUTBOUND_ALLOW_LOOPBACK = False
    internal = HttpPeer().on("POST", r"/.*", Reply(200, {"access_token": "ya29.x", "expires_in": 3600})).start()
    try:
        resolver.answers["oauth.tenant.example"] = ["127.0.0.1"]
        _organization, user = _owner()
        PushSubscription.objects.create(user=user, kind=PushSubscriptionKind.FCM, endpoint="device-token")
        port = internal.server.server_address[1]
        for token_uri in (f"https://oauth.tenant.example:{port}/token", f"http://[::ffff:127.0.0.1]:{port}/token",
                          "http://169.254.169.254/computeMetadata/v1/instance/service-accounts/default/token"):
            provider = registry.get("fcm")(config={"base_url": "https://fcm.googleapis.com"},
                                           credentials={"service_account": _service_account(token_uri)})
            message = OutboundMessage(channel=Channel.PUSH, to=str(user.pk), title="t", text="b")
            with pytest.raises(ProviderPermanentError) as refused:
                provider.send(message)
            assert refused.value.code == "configuration"
        assert internal.calls() == []
    finally:
        internal.stop()
