"""Incoming webhooks: a validly signed call is accepted once. A copy sent again within the
signature's five minutes (by someone who captured it, or twice at once) is a 409 and creates
nothing. Driven against the real server over HTTP."""
from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from accounts.models import MembershipRole
from notifications.engine.webhooks_outgoing import SIGNATURE_HEADER, webhook_signature
from notifications.enums import AuditAction
from notifications.models import Notification, NotificationAuditLog
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

from .conftest import token_session

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture
def incoming(live_server, field_keys):
    organization = OrganizationFactory()
    owner = UserFactory()
    MembershipFactory(user=owner, organization=organization, role=MembershipRole.OWNER)
    made = token_session(owner).post(live_server.url + "/api/v1/admin/webhooks/",
                                     json={"name": "alerts", "direction": "INCOMING"}, timeout=10)
    assert made.status_code == 201, made.text
    hook = made.json()
    hook["post_url"] = f"{live_server.url}/webhooks/incoming/{hook['public_id']}/"
    hook["owner"] = owner
    return hook


def _body(owner, title: str = "Rotate keys") -> bytes:
    return json.dumps({"type": "task.assigned", "recipient_ids": [str(owner.pk)], "data": {"taskTitle": title}}).encode()


def _post(hook, body: bytes, signature: str) -> requests.Response:
    return requests.post(hook["post_url"], data=body, timeout=15,
                         headers={"Content-Type": "application/json", SIGNATURE_HEADER: signature})


@pytest.mark.django_db(transaction=True)
def test_a_replayed_signed_request_is_409_and_creates_nothing(incoming):
    body = _body(incoming["owner"])
    signature = webhook_signature(incoming["secret"], body)
    first = _post(incoming, body, signature)
    assert first.status_code == 202, first.text
    created = Notification.objects.count()
    assert created == 1
    received = NotificationAuditLog.objects.filter(action=AuditAction.WEBHOOK_RECEIVED).count()
    t, v1 = (part.split("=", 1)[1] for part in signature.split(","))
    for replay in (signature,                                   # the captured header as is
                   f"t={t},v1={'0' * 64},v1={v1}",               # padded with another v1 value
                   f"t={t} , v1={v1.upper()}"):                  # re-spelled
        again = _post(incoming, body, replay)
        assert again.status_code == 409, (replay, again.text)
        assert again.json()["detail"]
    assert Notification.objects.count() == created
    assert NotificationAuditLog.objects.filter(action=AuditAction.WEBHOOK_RECEIVED).count() == received
    # The sender's next call, signed anew (even with the same body), goes through.
    time.sleep(1.05)
    fresh = _post(incoming, body, webhook_signature(incoming["secret"], body))
    assert fresh.status_code == 202 and Notification.objects.count() == created + 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_copies_of_one_signed_request_create_one_event(incoming):
    body = _body(incoming["owner"], "Race")
    signature = webhook_signature(incoming["secret"], body)
    with ThreadPoolExecutor(max_workers=6) as pool:
        codes = sorted(r.status_code for r in pool.map(lambda _: _post(incoming, body, signature), range(6)))
    assert codes == [202] + [409] * 5
    assert Notification.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_forged_or_stale_call_is_still_403_and_does_not_burn_the_real_signature(incoming):
    body = _body(incoming["owner"], "Forged first")
    signature = webhook_signature(incoming["secret"], body)
    t = signature.split(",")[0].split("=")[1]
    assert _post(incoming, body, f"t={t},v1={'f' * 64}").status_code == 403
    assert _post(incoming, body, webhook_signature(incoming["secret"], body, timestamp=int(t) - 400)).status_code == 403
    assert _post(incoming, body, signature).status_code == 202
    assert Notification.objects.count() == 1
