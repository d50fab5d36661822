"""Organization webhooks: administration, incoming calls turned into events, and signed
outgoing notification events received by a real HTTP server on loopback, which checks every
signature with `webhook_signature_verify` and the secret the create answer showed once."""
from __future__ import annotations

import json
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography.fernet import Fernet
from rest_framework.test import APIClient

from accounts.models import MembershipRole
from notifications.engine.webhooks_outgoing import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    webhook_signature,
    webhook_signature_verify,
    webhooks_dispatch,
)
from notifications.enums import AuditAction, AuditOutcome, Channel, NotificationStatus
from notifications.models import Notification, NotificationAuditLog, Webhook
from notifications.services import event_emit
from tests.conftest import start_worker, wait_until

from .intake_support import member

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

WEBHOOKS = "/api/v1/admin/webhooks/"
EVENT = "task.assigned"  # shipped with the catalog (category PROJECT_MANAGEMENT, in-app templates)


class Receiver:
    """An HTTP endpoint on loopback that records each call and answers from a script of codes."""

    def __init__(self) -> None:
        self.calls: list[dict] = []
        self.codes: list[int] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    receiver.calls.append({"path": self.path, "headers": dict(self.headers), "body": body})
                    code = receiver.codes.pop(0) if receiver.codes else 200
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def received(self, path: str = "/hook") -> list[dict]:
        with self.lock:
            return [c for c in self.calls if c["path"] == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    peer = Receiver()
    yield peer
    peer.close()


@pytest.fixture
def keys(settings, monkeypatch):
    key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [key]
    monkeypatch.setenv("FIELD_ENCRYPTION_KEYS", key)  # for a worker process started by the test


@pytest.fixture
def loopback_allowed(settings, monkeypatch):
    # Production refuses non-public targets; the receiver here lives on 127.0.0.1.
    settings.OUTBOUND_ALLOW_LOOPBACK = True
    monkeypatch.setenv("OUTBOUND_ALLOW_LOOPBACK", "true")


@pytest.fixture
def eager(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _outgoing(auth_client, url: str, **extra) -> dict:
    response = auth_client.post(WEBHOOKS, {"name": "Ops", "direction": "OUTGOING", "url": url, **extra}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def _verified(call: dict, secret: str) -> dict:
    assert webhook_signature_verify(secret, call["headers"][SIGNATURE_HEADER], call["body"]), call["headers"]
    return json.loads(call["body"])


# --- administration ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_generated_secret_is_shown_once_and_never_again(auth_client, organization, keys):
    created = _outgoing(auth_client, "https://hooks.example.com/troubadour")
    secret = created["secret"]
    assert secret.startswith("whsec_") and len(secret) > 30 and created["has_secret"] is True
    assert created["incoming_url"] is None
    webhook = Webhook.objects.get(pk=created["id"])
    assert webhook.organization_id == organization.pk and secret not in webhook.secret  # encrypted at rest

    answers = [
        auth_client.get(WEBHOOKS + f"{webhook.pk}/"),
        auth_client.get(WEBHOOKS),
        auth_client.patch(WEBHOOKS + f"{webhook.pk}/", {"event_categories": ["SECURITY"]}, format="json"),
    ]
    for answer in answers:
        assert answer.status_code == 200, answer.content
        assert secret not in answer.content.decode() and '"secret"' not in answer.content.decode()
    assert answers[0].json()["has_secret"] is True
    assert answers[2].json()["event_categories"] == ["SECURITY"]
    audit = NotificationAuditLog.objects.filter(webhook=webhook, action=AuditAction.WEBHOOK_CONFIGURED)
    assert audit.count() == 2
    assert secret not in json.dumps(list(audit.values("details", "error_message", "actor_label")))


@pytest.mark.django_db
def test_other_organizations_get_404_and_members_403(auth_client, organization, other_user, keys):
    created = _outgoing(auth_client, "https://hooks.example.com/a")
    other_admin = _client(other_user)
    for method, suffix in (("get", ""), ("patch", ""), ("delete", ""), ("post", "test/")):
        response = getattr(other_admin, method)(WEBHOOKS + f"{created['id']}/{suffix}", {}, format="json")
        assert response.status_code == 404, (method, suffix)
    assert other_admin.get(WEBHOOKS).json()["results"] == []
    plain = _client(member(organization, role=MembershipRole.MEMBER))
    assert plain.get(WEBHOOKS).status_code == 403
    assert plain.post(WEBHOOKS, {"name": "x", "direction": "OUTGOING", "url": "https://a.example"}, format="json").status_code == 403
    assert Webhook.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("body,field", [
    ({"direction": "OUTGOING", "url": "ftp://files.example.com/x"}, "url"),
    ({"direction": "OUTGOING", "url": "https://a.example", "event_types": ["no.such.event"]}, "event_types"),
    ({"direction": "OUTGOING", "url": "https://a.example", "event_categories": ["GOSSIP"]}, "event_categories"),
    ({"direction": "INCOMING", "auth_type": "NONE"}, "auth_type"),
])
def test_invalid_webhook_is_400_and_nothing_is_saved(auth_client, keys, body, field):
    response = auth_client.post(WEBHOOKS, {"name": "x", **body}, format="json")
    assert response.status_code == 400 and field in response.json(), response.content
    assert not Webhook.objects.exists()
    assert not NotificationAuditLog.objects.filter(action=AuditAction.WEBHOOK_CONFIGURED).exists()


# --- incoming ---------------------------------------------------------------------------------------------


@pytest.fixture
def incoming(auth_client, keys):
    response = auth_client.post(WEBHOOKS, {"name": "Monitoring", "direction": "INCOMING",
                                           "settings": {"defaults": {"channels": ["IN_APP"]}}}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def _post_signed(client, hook: dict, payload: dict, *, secret: str | bool | None = None, timestamp: int | None = None):
    """POST to the incoming URL, signed with the hook's secret (or `secret`; False: unsigned)."""
    raw = json.dumps(payload).encode()
    headers = {}
    if secret is not False:
        headers["HTTP_X_TROUBADOUR_SIGNATURE"] = webhook_signature(secret or hook["secret"], raw, timestamp=timestamp)
    url = f"/webhooks/incoming/{hook['public_id']}/"
    return client.post(url, raw, content_type="application/json", **headers)


@pytest.mark.django_db
def test_incoming_call_with_a_valid_signature_becomes_an_event(api_client, incoming, organization, user):
    assert incoming["incoming_url"].endswith(f"/webhooks/incoming/{incoming['public_id']}/")
    response = _post_signed(api_client, incoming, {"eventType": EVENT, "recipientIds": [str(user.pk)],
                                                   "data": {"taskTitle": "Rotate keys"}})
    assert response.status_code == 202, response.content
    body = response.json()
    assert set(body) == {"event_id", "notifications"}  # the same answer as POST /api/v1/events/
    [item] = body["notifications"]
    n = Notification.objects.get(pk=item["id"])
    assert (n.organization_id, n.recipient_id, n.event_type, n.channels_requested) == (
        organization.pk, user.pk, EVENT, ["IN_APP"])
    webhook = Webhook.objects.get(pk=incoming["id"])
    assert webhook.last_triggered_at is not None


@pytest.mark.django_db
@pytest.mark.parametrize("how", ["missing", "forged", "stale", "future", "other_body"])
def test_incoming_call_without_a_valid_signature_is_403_and_creates_nothing(api_client, incoming, user, how):
    payload = {"type": EVENT, "recipient_ids": [str(user.pk)]}
    now = int(time.time())
    if how == "missing":
        response = _post_signed(api_client, incoming, payload, secret=False)
    elif how == "forged":
        response = _post_signed(api_client, incoming, payload, secret="whsec_guessed")
    elif how == "stale":
        response = _post_signed(api_client, incoming, payload, timestamp=now - 330)
    elif how == "future":
        response = _post_signed(api_client, incoming, payload, timestamp=now + 330)
    else:
        signature = webhook_signature(incoming["secret"], json.dumps({"type": EVENT, "recipient_ids": []}))
        response = api_client.post("/webhooks/incoming/" + incoming["public_id"] + "/", json.dumps(payload),
                                   content_type="application/json", HTTP_X_TROUBADOUR_SIGNATURE=signature)
    assert response.status_code == 403, response.content
    assert not Notification.objects.exists()
    assert Webhook.objects.get(pk=incoming["id"]).last_triggered_at is None
    assert not NotificationAuditLog.objects.filter(action=AuditAction.WEBHOOK_RECEIVED).exists()


@pytest.mark.django_db
def test_incoming_unknown_or_inactive_is_404_and_bad_payload_400(api_client, auth_client, incoming, user):
    bad = _post_signed(api_client, incoming, {"type": EVENT})
    assert bad.status_code == 400 and "recipient_ids" in bad.json()
    assert not Notification.objects.exists()
    auth_client.patch(WEBHOOKS + f"{incoming['id']}/", {"is_active": False}, format="json")
    assert _post_signed(api_client, incoming, {"type": EVENT, "recipient_ids": [str(user.pk)]}).status_code == 404
    unknown = dict(incoming, public_id="6f1d2b1e-0000-4000-8000-000000000000")
    assert _post_signed(api_client, unknown, {"type": EVENT, "recipient_ids": [str(user.pk)]}).status_code == 404


def test_signature_helper_accepts_a_rotated_secret_and_refuses_garbage():
    body = b'{"a":1}'
    now = int(time.time())
    header = webhook_signature("new", body, timestamp=now)
    both = header + ",v1=" + webhook_signature("old", body, timestamp=now).split("v1=")[1]
    assert webhook_signature_verify("old", both, body) and webhook_signature_verify("new", both, body)
    assert webhook_signature_verify("new", header, body.decode())
    for junk in ("", "v1=abc", "t=abc,v1=00", f"t={now}", "garbage"):
        assert not webhook_signature_verify("new", junk, body)
    assert not webhook_signature_verify("", header, body)


# --- outgoing -------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_delivered_notification_is_posted_signed_to_matching_webhooks_only(
    auth_client, organization, user, receiver, keys, loopback_allowed, eager, django_capture_on_commit_callbacks
):
    everything = _outgoing(auth_client, receiver.url("/all"))
    by_type = _outgoing(auth_client, receiver.url("/typed"), event_types=[EVENT])
    by_category = _outgoing(auth_client, receiver.url("/category"), event_categories=["PROJECT_MANAGEMENT"])
    _outgoing(auth_client, receiver.url("/other-type"), event_types=["incident.created"])
    _outgoing(auth_client, receiver.url("/other-category"), event_categories=["SECURITY"])
    _outgoing(auth_client, receiver.url("/inactive"), is_active=False)

    with django_capture_on_commit_callbacks(execute=True):
        result = event_emit(organization=organization, type=EVENT, recipient_ids=[user.pk], channels=[Channel.IN_APP])
    [(notification_id, _, _)] = result.notifications
    assert Notification.objects.get(pk=notification_id).status == NotificationStatus.DELIVERED

    for hook, path in ((everything, "/all"), (by_type, "/typed"), (by_category, "/category")):
        calls = receiver.received(path)
        assert [c["headers"][EVENT_HEADER] for c in calls] == ["notification.created", "notification.delivered"]
        bodies = [_verified(c, hook["secret"]) for c in calls]
        delivered = bodies[1]
        assert delivered["type"] == "notification.delivered"
        assert delivered["data"] == {
            "notification_id": notification_id, "event_type": EVENT, "category": "PROJECT_MANAGEMENT",
            "criticality": "MEDIUM", "status": "DELIVERED", "recipient_id": str(user.pk),
            "channels": {"IN_APP": "SENT"},  # on the in-app bus; the client's ack makes it DELIVERED
        }
        assert len({c["headers"][DELIVERY_HEADER] for c in calls}) == 2
        # Another webhook's secret does not verify this webhook's calls.
        assert not webhook_signature_verify(everything["secret"] if hook is not everything else by_type["secret"],
                                            calls[0]["headers"][SIGNATURE_HEADER], calls[0]["body"])
    for path in ("/other-type", "/other-category", "/inactive"):
        assert receiver.received(path) == []
    sent = NotificationAuditLog.objects.filter(action=AuditAction.WEBHOOK_SENT, notification_id=notification_id)
    assert sent.count() == 6
    assert Webhook.objects.get(pk=everything["id"]).last_success_at is not None


@pytest.mark.django_db
def test_a_500_is_retried_with_the_same_delivery_id_until_it_succeeds(
    auth_client, organization, user, receiver, keys, loopback_allowed, eager
):
    hook = _outgoing(auth_client, receiver.url(), max_retries=3)
    n_id = event_emit(organization=organization, type=EVENT, recipient_ids=[user.pk]).notifications[0][0]
    receiver.codes = [500, 503]
    report = webhooks_dispatch(events=[[n_id, "notification.failed"]])
    calls = receiver.received()
    assert len(calls) == 3 and report.retrying == 1
    assert len({c["headers"][DELIVERY_HEADER] for c in calls}) == 1  # the receiver can drop duplicates
    assert len({c["body"] for c in calls}) == 1
    assert all(_verified(c, hook["secret"])["type"] == "notification.failed" for c in calls)
    webhook = Webhook.objects.get(pk=hook["id"])
    assert webhook.failure_count == 0 and webhook.last_error == ""
    assert webhook.last_failure_at is not None and webhook.last_success_at >= webhook.last_failure_at
    assert NotificationAuditLog.objects.filter(webhook_id=hook["id"], action=AuditAction.WEBHOOK_SENT).count() == 1
    assert not NotificationAuditLog.objects.filter(webhook_id=hook["id"], action=AuditAction.WEBHOOK_FAILED).exists()


@pytest.mark.django_db
def test_exhausted_retries_are_audited_as_a_failure(auth_client, organization, user, receiver, keys, loopback_allowed, eager):
    hook = _outgoing(auth_client, receiver.url(), max_retries=1)
    n_id = event_emit(organization=organization, type=EVENT, recipient_ids=[user.pk]).notifications[0][0]
    receiver.codes = [500, 502, 200]
    webhooks_dispatch(events=[[n_id, "notification.delivered"]])
    assert len(receiver.received()) == 2  # the first try and one retry
    webhook = Webhook.objects.get(pk=hook["id"])
    assert webhook.failure_count == 2 and webhook.last_error == "HTTP 502" and webhook.last_success_at is None
    failed = NotificationAuditLog.objects.get(webhook_id=hook["id"], action=AuditAction.WEBHOOK_FAILED)
    assert failed.outcome == AuditOutcome.FAILURE and failed.notification_id == n_id
    assert failed.details["status_code"] == 502 and failed.details["attempt"] == 2
    assert hook["secret"] not in json.dumps(failed.details) + failed.error_message


@pytest.mark.django_db
def test_test_endpoint_sends_a_signed_test_event_and_reports_the_answer(auth_client, incoming, receiver, keys, loopback_allowed):
    hook = _outgoing(auth_client, receiver.url())
    answer = auth_client.post(WEBHOOKS + f"{hook['id']}/test/")
    assert answer.status_code == 200
    assert answer.json()["delivered"] is True and answer.json()["status_code"] == 200
    [call] = receiver.received()
    body = _verified(call, hook["secret"])
    assert body["type"] == "webhook.test" and call["headers"][EVENT_HEADER] == "webhook.test"
    receiver.codes = [500]
    failed = auth_client.post(WEBHOOKS + f"{hook['id']}/test/").json()
    assert failed["delivered"] is False and failed["status_code"] == 500
    assert len(receiver.received()) == 2  # a test is not retried
    assert auth_client.post(WEBHOOKS + f"{incoming['id']}/test/").status_code == 400


@pytest.mark.django_db
def test_private_targets_are_refused_in_production(auth_client, receiver, keys, settings):
    settings.OUTBOUND_ALLOW_LOOPBACK = False
    refused = auth_client.post(WEBHOOKS, {"name": "Ops", "direction": "OUTGOING", "url": receiver.url()}, format="json")
    assert refused.status_code == 400 and "url" in refused.json(), refused.content
    settings.OUTBOUND_ALLOW_LOOPBACK = True  # saved while allowed (a development box)...
    hook = _outgoing(auth_client, receiver.url())
    settings.OUTBOUND_ALLOW_LOOPBACK = False  # ...and never reached once it is not
    answer = auth_client.post(WEBHOOKS + f"{hook['id']}/test/").json()
    assert answer["delivered"] is False and answer["error"] == "Could not deliver to the endpoint."
    assert receiver.received() == []


@pytest.mark.rabbitmq
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_posts_the_delivered_event(
    keys, loopback_allowed, receiver, organization, user, auth_client, key_client, tmp_path, celery_purge
):
    hook = _outgoing(auth_client, receiver.url(), event_types=[EVENT])
    worker = start_worker(tmp_path, name="webhooks")
    try:
        response = key_client.post("/api/v1/events/", {"type": EVENT, "recipient_ids": [str(user.pk)],
                                                       "channels": ["IN_APP"]}, format="json")
        assert response.status_code == 202
        calls = wait_until(lambda: len(receiver.received()) >= 2 and receiver.received(), timeout=60,
                           message="created and delivered webhook calls")
    finally:
        worker.kill(signal.SIGTERM)
    events = sorted(_verified(c, hook["secret"])["type"] for c in calls)
    assert events == ["notification.created", "notification.delivered"]


@pytest.mark.django_db
def test_a_custom_in_app_action_calls_the_organization_back(
    auth_client, organization, user, receiver, keys, loopback_allowed, eager, django_capture_on_commit_callbacks
):
    hook = _outgoing(auth_client, receiver.url("/actions"))
    actions = [{"id": "rollback", "label": "Roll back", "action": "custom", "data": {"deploy": "D-7"}},
               {"id": "later", "label": "Later", "action": "dismiss"}]
    with django_capture_on_commit_callbacks(execute=True):
        result = event_emit(organization=organization, type=EVENT, recipient_ids=[user.pk], channels=[Channel.IN_APP],
                            channel_options={"IN_APP": {"actions": actions}})
    [(notification_id, _, _)] = result.notifications

    with django_capture_on_commit_callbacks(execute=True):
        response = auth_client.post(f"/api/v1/notifications/{notification_id}/actions/rollback/")
    assert response.status_code == 200 and response.json()["is_read"] is True
    (call,) = [c for c in receiver.received("/actions") if c["headers"][EVENT_HEADER] == "notification.action"]
    body = _verified(call, hook["secret"])
    assert body["type"] == "notification.action" and body["data"]["notification_id"] == notification_id
    assert body["data"]["action"] == {"id": "rollback", "label": "Roll back", "data": {"deploy": "D-7"}}
    assert NotificationAuditLog.objects.filter(action=AuditAction.DELIVERY_CLICKED, notification_id=notification_id).exists()

    # dismiss archives it and calls nobody; an action the item does not offer is a 404
    assert auth_client.post(f"/api/v1/notifications/{notification_id}/actions/nope/").status_code == 404
    with django_capture_on_commit_callbacks(execute=True):
        assert auth_client.post(f"/api/v1/notifications/{notification_id}/actions/later/").json()["archived_at"]
    assert len([c for c in receiver.received("/actions") if c["headers"][EVENT_HEADER] == "notification.action"]) == 1
    # nobody else may choose it
    stranger = _client(member(organization))
    assert stranger.post(f"/api/v1/notifications/{notification_id}/actions/rollback/").status_code == 404
