"""Server-side requests to tenant-chosen URLs: outgoing webhooks (and their /test/ endpoint)
never reach the platform's own network — not through a literal address, a translation prefix,
a second DNS answer (rebinding) or a bad port — and their errors reveal nothing about it.

The server is the real one (`live_server`, HTTP); the "network" is a scripted resolver whose
public answers are routed to loopback peers, so nothing here leaves the machine."""
from __future__ import annotations

import datetime as dt
import ipaddress
import signal
import socket

import pytest
import requests

from accounts.models import MembershipRole
from common import outbound
from notifications.engine.webhooks_outgoing import SIGNATURE_HEADER, webhook_signature_verify
from notifications.tasks import webhooks_dispatch_task
from notifications.enums import WebhookAuthType, WebhookDirection
from notifications.models import Notification, Webhook
from notifications.services import event_emit
from tests.conftest import start_worker, wait_until
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory
from tests.providers.peers import HttpPeer, Reply

from .conftest import token_session

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

WEBHOOKS = "/api/v1/admin/webhooks/"
PUBLIC_IP = "93.184.216.34"  # answered by the scripted resolver, routed to a loopback peer


def _owner():
    organization = OrganizationFactory()
    user = UserFactory()
    MembershipFactory(user=user, organization=organization, role=MembershipRole.OWNER)
    return organization, user


@pytest.fixture
def peer():
    server = HttpPeer().on("POST", r"/.*", Reply(200, {"ok": True})).start()
    yield server
    server.stop()


@pytest.fixture
def internal():
    """A service on the platform's loopback that no tenant may reach (an admin port, a cache)."""
    server = HttpPeer().on("POST", r"/.*", Reply(200, {"secret": "internal"})).on("GET", r"/.*", Reply(200)).start()
    yield server
    server.stop()


# --- which addresses are public ---------------------------------------------------------------------


@pytest.mark.parametrize("address", [
    "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
    "192.0.0.8", "198.18.0.1", "224.0.0.1", "255.255.255.255",
    "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1",
    "::ffff:127.0.0.1", "::ffff:8.8.8.8",           # IPv4-mapped
    "::7f00:1", "::a9fe:a9fe",                       # IPv4-compatible ::127.0.0.1, ::169.254.169.254
    "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe",         # NAT64 of loopback and of the metadata service
    "64:ff9b:1::a00:1",                              # local-use NAT64
    "2002:7f00:1::1", "2002:a9fe:a9fe::",            # 6to4
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",          # Teredo
    "2001:db8::1",
])
def test_non_public_addresses_are_refused_even_with_the_loopback_allowance(address, settings):
    settings.OUTBOUND_ALLOW_LOOPBACK = False
    assert outbound.address_refusal(address)
    settings.OUTBOUND_ALLOW_LOOPBACK = True
    if ipaddress.ip_address(address) not in (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")):
        # The test-only allowance opens loopback itself, never a disguise of it nor anything else.
        assert outbound.address_refusal(address)


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "2a00:1450:4007:80b::200e"])
def test_public_addresses_pass(address, settings):
    settings.OUTBOUND_ALLOW_LOOPBACK = False
    assert outbound.address_refusal(address) == ""


# --- saving ---------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("url", [
    "https://hooks.example.com:0/in", "https://hooks.example.com:65536/in", "https://hooks.example.com:99999/in",
    "http://[64:ff9b::7f00:1]/in", "http://[2002:7f00:1::]/in", "http://[::7f00:1]/in", "http://[::ffff:127.0.0.1]:8000/in",
    "http://169.254.169.254/latest/meta-data/", "http://[fe80::1]/in", "http://100.64.0.1/in", "http://127.0.0.1:6379/",
    "http://localhost:5432/", "ftp://hooks.example.com/in", "https://user:pw@hooks.example.com/in",
])
def test_saving_an_unusable_or_internal_url_is_a_400_naming_the_field(live_server, settings, field_keys, url):
    settings.OUTBOUND_ALLOW_LOOPBACK = False
    organization, owner = _owner()
    client = token_session(owner)
    made = client.post(live_server.url + WEBHOOKS, json={"name": "x", "direction": "OUTGOING", "url": url}, timeout=10)
    assert made.status_code == 400, made.text
    assert "url" in made.json()
    assert not Webhook.objects.exists()
    good = client.post(live_server.url + WEBHOOKS, json={"name": "x", "direction": "OUTGOING",
                                                         "url": "https://hooks.example.com/in"}, timeout=10)
    assert good.status_code == 201
    patched = client.patch(live_server.url + WEBHOOKS + f"{good.json()['id']}/", json={"url": url}, timeout=10)
    assert patched.status_code == 400 and "url" in patched.json()
    assert Webhook.objects.get().url == "https://hooks.example.com/in"


# --- DNS rebinding -----------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_dns_rebinding_never_reaches_loopback(live_server, settings, field_keys, resolver, peer, internal):
    """The name answers a public address when it is checked and 127.0.0.1 ever after: the post
    goes to the checked address (a peer standing in for the public host), never to the
    loopback service, and the name is looked up once."""
    settings.OUTBOUND_ALLOW_LOOPBACK = False
    port = internal.server.server_address[1]
    resolver.answers["rebind.example.test"] = [PUBLIC_IP, "127.0.0.1"]
    resolver.route(PUBLIC_IP, ("127.0.0.1", peer.server.server_address[1]))
    organization, owner = _owner()
    client = token_session(owner)
    made = client.post(live_server.url + WEBHOOKS, json={
        "name": "rebinding", "direction": "OUTGOING", "url": f"http://rebind.example.test:{port}/hook"}, timeout=10)
    assert made.status_code == 201, made.text
    tested = client.post(live_server.url + WEBHOOKS + f"{made.json()['id']}/test/", timeout=30).json()
    assert tested["delivered"] is True, tested
    [call] = peer.calls("POST")
    assert call.header("Host") == f"rebind.example.test:{port}"  # the name, not the address, is what is sent
    assert webhook_signature_verify(made.json()["secret"], call.header(SIGNATURE_HEADER), call.body)
    assert resolver.lookups.count("rebind.example.test") == 1
    # The next round looks up again, gets 127.0.0.1 and refuses before connecting.
    again = client.post(live_server.url + WEBHOOKS + f"{made.json()['id']}/test/", timeout=30).json()
    assert again["delivered"] is False and again["error"] == outbound.PUBLIC_ERROR
    assert internal.calls() == [] and len(peer.calls()) == 1


def test_pinned_https_keeps_sni_and_certificate_checks_on_the_name(tmp_path, settings, resolver):
    """Connecting to the checked address must not weaken TLS: the certificate is verified for
    the host name (SNI too); a certificate for another name is refused."""
    settings.OUTBOUND_ALLOW_LOOPBACK = True
    good = _tls_peer(tmp_path / "good", "hooks.example.test")
    wrong = _tls_peer(tmp_path / "wrong", "elsewhere.example.test")
    try:
        for name, server in (("hooks.example.test", good), ("elsewhere-alias.example.test", wrong)):
            resolver.answers[name] = ["127.0.0.1"]
        target = outbound.url_resolve_public(f"https://hooks.example.test:{good[0].server.server_address[1]}/hook")
        with outbound.pinned_session(target) as session:
            answer = session.post(f"https://hooks.example.test:{good[0].server.server_address[1]}/hook", json={},
                                  verify=str(good[1]), timeout=5)
        assert answer.status_code == 200
        [call] = good[0].calls()
        assert call.header("Host") == f"hooks.example.test:{good[0].server.server_address[1]}"
        url = f"https://elsewhere-alias.example.test:{wrong[0].server.server_address[1]}/hook"
        with outbound.pinned_session(outbound.url_resolve_public(url)) as session, pytest.raises(requests.exceptions.SSLError):
            session.post(url, json={}, verify=str(wrong[1]), timeout=5)
        assert wrong[0].calls() == []
    finally:
        good[0].stop()
        wrong[0].stop()


def test_a_pinned_session_sends_nowhere_else_and_follows_no_redirect(settings, resolver, peer, internal):
    settings.OUTBOUND_ALLOW_LOOPBACK = True
    peer.on("POST", r"/moved", Reply(307, b"", {"Location": f"{internal.url}/steal"}))
    target = outbound.url_resolve_public(f"{peer.url}/moved")
    with outbound.pinned_session(target) as session:
        answer = session.post(f"{peer.url}/moved", data=b"signed body", timeout=5)
        assert answer.status_code == 307  # reported, not followed
        with pytest.raises(requests.exceptions.InvalidURL):
            session.post(f"{internal.url}/steal", data=b"signed body", timeout=5)
    assert internal.calls() == []


def test_resolution_is_time_bounded(settings, monkeypatch):
    settings.OUTBOUND_ALLOW_LOOPBACK = False
    real = socket.getaddrinfo
    release = __import__("threading").Event()

    def slow(host, *args, **kwargs):
        if host == "slow.example.test":
            release.wait(10)
            raise socket.gaierror("late")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", slow)
    started = dt.datetime.now()
    with pytest.raises(outbound.OutboundRefused):
        outbound.url_resolve_public("https://slow.example.test/hook", timeout=0.5)
    release.set()
    assert (dt.datetime.now() - started).total_seconds() < 3


# --- no oracle ------------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_test_endpoint_answers_alike_for_unresolvable_closed_and_internal(live_server, settings, field_keys, resolver):
    """Whether the name resolves, the port is closed or the address is internal, /test/ and the
    stored error say the same thing: the endpoint is no scanner of the platform's network."""
    settings.OUTBOUND_ALLOW_LOOPBACK = False
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()  # nothing listens there any more
    resolver.answers["nowhere.example.test"] = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    resolver.answers["closed.example.test"] = [PUBLIC_IP]
    resolver.route(PUBLIC_IP, ("127.0.0.1", closed_port))
    resolver.answers["internal.example.test"] = ["10.0.0.5"]
    organization, owner = _owner()
    client = token_session(owner)
    answers = []
    for host in ("nowhere.example.test", "closed.example.test", "internal.example.test"):
        made = client.post(live_server.url + WEBHOOKS, json={"name": host, "direction": "OUTGOING",
                                                             "url": f"https://{host}/hook"}, timeout=10)
        assert made.status_code == 201, made.text
        tested = client.post(live_server.url + WEBHOOKS + f"{made.json()['id']}/test/", timeout=30)
        assert tested.status_code == 200
        body = tested.json()
        body.pop("delivery_id")
        answers.append(body)
    assert answers[0] == answers[1] == answers[2] == {"delivered": False, "status_code": None, "error": outbound.PUBLIC_ERROR}
    assert set(Webhook.objects.values_list("last_error", flat=True)) == {outbound.PUBLIC_ERROR}
    listed = client.get(live_server.url + WEBHOOKS, timeout=10).json()["results"]
    assert {row["last_error"] for row in listed} == {outbound.PUBLIC_ERROR}


# --- one bad webhook never stops the others ---------------------------------------------------------------------


@pytest.mark.rabbitmq
@pytest.mark.django_db(transaction=True)
def test_a_bad_webhook_in_a_dispatch_batch_does_not_stop_the_others(tmp_path, settings, monkeypatch, field_keys, peer, celery_purge):
    """Rows saved before the port and address checks existed (a port out of range, a NAT64
    address, a secret nobody can decrypt) sit in one dispatch batch with two organizations'
    healthy webhooks: a real worker delivers the healthy ones."""
    settings.OUTBOUND_ALLOW_LOOPBACK = True
    monkeypatch.setenv("OUTBOUND_ALLOW_LOOPBACK", "true")
    org_a, owner_a = _owner()
    org_b, owner_b = _owner()
    bad = [
        Webhook.objects.create(organization=org_a, name="bad port", direction=WebhookDirection.OUTGOING,
                               url="http://hooks.example.com:99999/in", auth_type=WebhookAuthType.NONE, retry_enabled=False),
        Webhook.objects.create(organization=org_a, name="nat64", direction=WebhookDirection.OUTGOING,
                               url="http://[64:ff9b::7f00:1]/in", auth_type=WebhookAuthType.NONE, retry_enabled=False),
        Webhook.objects.create(organization=org_b, name="undecryptable", direction=WebhookDirection.OUTGOING,
                               url=f"{peer.url}/undecryptable", auth_type=WebhookAuthType.HMAC_SHA256,
                               secret="not-a-fernet-token", retry_enabled=False),
    ]
    good = [
        Webhook.objects.create(organization=org, name="good", direction=WebhookDirection.OUTGOING,
                               url=f"{peer.url}/{org.slug}", auth_type=WebhookAuthType.NONE)
        for org in (org_a, org_b)
    ]
    # Notifications of both organizations, dispatched as one batch (webhooks off while they are made).
    Webhook.objects.update(is_active=False)
    settings.CELERY_TASK_ALWAYS_EAGER = True  # delivered in-process now, so nothing else is queued
    ids = []
    for org, owner in ((org_a, owner_a), (org_b, owner_b)):
        emitted = event_emit(organization=org, type="task.assigned", recipient_ids=[str(owner.pk)], channels=["IN_APP"],
                             data={"taskTitle": "x"})
        ids.extend(pk for pk, _recipient, _status in emitted.notifications)
    settings.CELERY_TASK_ALWAYS_EAGER = False
    Webhook.objects.update(is_active=True)
    assert Notification.objects.filter(pk__in=ids).count() == 2
    worker = start_worker(tmp_path, name="ssrf-batch")
    try:
        webhooks_dispatch_task.delay([[pk, "notification.created"] for pk in ids])
        wait_until(lambda: len(peer.calls("POST", r"/org-.*")) >= 2, timeout=60, message="both healthy webhooks")
    finally:
        worker.kill(signal.SIGTERM)
    assert sorted(c.path for c in peer.calls("POST")) == sorted(f"/{org.slug}" for org in (org_a, org_b))
    for hook in bad:
        hook.refresh_from_db()
        assert hook.failure_count == 1 and hook.last_error == outbound.PUBLIC_ERROR
    for hook in good:
        hook.refresh_from_db()
        assert hook.last_success_at is not None and hook.failure_count == 0


def _tls_peer(directory, name: str):
    """An HTTPS peer on 127.0.0.1 whose certificate names only `name`; returns (peer, ca path)."""
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "peer.crt", directory / "peer.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    server = HttpPeer().on("POST", r"/.*", Reply(200, {"ok": True}))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    server.server.socket = context.wrap_socket(server.server.socket, server_side=True)
    server.scheme = "https"
    return server.start(), cert_path


# --- Web Push endpoints -------------------------------------------------------------------------------------------


def _browser_keys() -> dict:
    from tests.providers.test_push import Browser, b64

    browser = Browser()
    return {"p256dh": browser.p256dh, "auth": b64(browser.auth_secret)}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("endpoint", [
    "http://push.example.com/device",             # https only
    "https://127.0.0.1:6379/device", "https://[::1]/device", "https://localhost/device",
    "https://169.254.169.254/latest/", "https://[64:ff9b::a9fe:a9fe]/", "https://[2002:a9fe:a9fe::]/",
    "https://push.example.com:0/device", "https://push.example.com:70000/device", "javascript:alert(1)",
])
def test_subscribing_an_internal_or_plain_http_push_endpoint_is_a_400(live_server, settings, endpoint):
    settings.OUTBOUND_ALLOW_LOOPBACK = False
    _organization, owner = _owner()
    client = token_session(owner)
    from providers.models import PushSubscription

    answer = client.post(live_server.url + "/api/v1/push-subscriptions/", json={"endpoint": endpoint, "keys": _browser_keys()},
                         timeout=10)
    assert answer.status_code == 400 and "endpoint" in answer.json(), answer.text
    assert not PushSubscription.objects.exists()
    fine = client.post(live_server.url + "/api/v1/push-subscriptions/",
                       json={"endpoint": "https://push.example.com/device", "keys": _browser_keys()}, timeout=10)
    assert fine.status_code == 201


@pytest.fixture
def vapid_key(settings):
    from tests.providers.test_push import b64

    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    settings.VAPID_PRIVATE_KEY = b64(key.private_numbers().private_value.to_bytes(32, "big"))
    settings.VAPID_SUBJECT = "mailto:ops@troubadour.test"


def _push_message(user):
    from notifications.enums import Channel
    from providers.base import OutboundMessage

    return OutboundMessage(channel=Channel.PUSH, to=str(user.pk), title="Incident", text="Database down", idempotency_key="7")


@pytest.mark.django_db
def test_web_push_sends_check_each_endpoint_again(settings, resolver, vapid_key, peer, internal):
    """Rows already stored (or a name that now answers 127.0.0.1) are checked at send time: an
    internal answer, a plain-http public endpoint and a redirect never reach the internal service."""
    from common.exceptions import ProviderPermanentError
    from providers.models import PushSubscription
    from providers.registry import registry

    settings.OUTBOUND_ALLOW_LOOPBACK = False
    _organization, user = _owner()
    internal_port = internal.server.server_address[1]
    resolver.answers["push.rebind.example.test"] = ["127.0.0.1"]
    resolver.answers["push.plain.example.test"] = [PUBLIC_IP]
    resolver.route(PUBLIC_IP, ("127.0.0.1", internal_port))  # were the http one sent, the internal peer would see it
    for endpoint in (f"https://push.rebind.example.test:{internal_port}/device",
                     f"http://push.plain.example.test:{internal_port}/device",
                     f"https://[::ffff:127.0.0.1]:{internal_port}/device"):
        PushSubscription.objects.create(user=user, endpoint=endpoint, **_browser_keys())
    with pytest.raises(ProviderPermanentError) as refused:
        registry.get("webpush")().send(_push_message(user))
    assert refused.value.code == "endpoint_refused" and str(internal_port) not in str(refused.value.detail)
    assert internal.calls() == []
    assert PushSubscription.objects.filter(user=user).count() == 3  # refused, not deleted: the owner can fix DNS

    # A push service that answers with a redirect to the internal service: reported, not followed.
    settings.OUTBOUND_ALLOW_LOOPBACK = True  # this push service is a loopback peer
    PushSubscription.objects.filter(user=user).delete()
    peer.on("POST", r"/device", Reply(307, b"", {"Location": f"{internal.url}/steal"}))
    PushSubscription.objects.create(user=user, endpoint=f"{peer.url}/device", **_browser_keys())
    with pytest.raises(ProviderPermanentError):
        registry.get("webpush")().send(_push_message(user))
    assert len(peer.calls("POST")) == 1 and internal.calls() == []
