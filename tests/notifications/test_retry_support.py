"""Fixtures and builders shared by the reliability tests (retry, sweeper, escalation,
digest, scheduling, dead letters, crash). No tests here."""
from __future__ import annotations

import json
import time
from collections import Counter
from threading import Lock
from typing import Any

import pytest

from notifications.enums import Channel, DeliveryStatus, EventCategory, NotificationStatus
from notifications.models import Notification, NotificationDelivery
from providers.models import NotificationProvider
from tests.providers.peers import HttpPeer, Recorded, Reply

WA_PATH = r"/v21\.0/[^/]+/messages"


@pytest.fixture
def eager_celery():
    """Tasks run in-process when published (the on_commit publish still decides when)."""
    from config.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield app
    app.conf.task_always_eager = previous


class WhatsAppSink:
    """A loopback Meta Graph API: counts messages by delivery id (biz_opaque_callback_data).

    `fail_with` makes it answer an error status instead (503: transient, 400: permanent).
    """

    def __init__(self) -> None:
        self.peer = HttpPeer()
        self.by_delivery: Counter[str] = Counter()
        self.fail_with: int | None = None
        self.delay = 0.0  # seconds per request, like a provider's round trip
        self._lock = Lock()
        self._n = 0
        self.peer.on("POST", WA_PATH, self._reply)

    def _reply(self, request: Recorded) -> Reply:
        if self.delay:
            time.sleep(self.delay)
        if self.fail_with:
            return Reply(self.fail_with, {"error": {"message": "unavailable" if self.fail_with >= 500 else "bad recipient",
                                                     "code": 131000 if self.fail_with < 500 else 2}})
        if not request.body:
            # A request cut off by its sender's death (a worker killed mid-send): no message was
            # made, and nobody is left to read the answer.
            return Reply(400, {"error": {"message": "empty request", "code": 100}})
        body = json.loads(request.body)
        with self._lock:
            self._n += 1
            self.by_delivery[str(body.get("biz_opaque_callback_data", ""))] += 1
            n = self._n
        return Reply(200, {"messaging_product": "whatsapp", "contacts": [{"wa_id": body.get("to", "")}],
                           "messages": [{"id": f"wamid.{n}"}]})

    @property
    def total(self) -> int:
        """Messages accepted (counted by delivery id)."""
        with self._lock:
            return sum(self.by_delivery.values())

    @property
    def requests(self) -> int:
        return len(self.peer.requests)


@pytest.fixture
def wa_sink(db, monkeypatch):
    """A global meta_whatsapp provider record pointed at a loopback sink."""
    monkeypatch.setenv("WHATSAPP_ACCESS_TOKEN", "test-whatsapp-token")
    sink = WhatsAppSink()
    sink.peer.start()
    NotificationProvider.objects.create(
        organization=None, code="meta_whatsapp", channel=Channel.WHATSAPP, name="WhatsApp sink",
        config={"base_url": sink.peer.url, "phone_number_id": "1000"}, priority=0,
    )
    yield sink
    sink.peer.stop()


def make_notification(*, organization, recipient=None, event_type: str = "task.assigned", **fields: Any) -> Notification:
    defaults: dict[str, Any] = dict(
        category=EventCategory.PROJECT_MANAGEMENT, title="Fix login", body="Task T-1 is yours.",
        status=NotificationStatus.PROCESSING, resource_type="task", resource_id="T-1",
    )
    defaults.update(fields)
    if recipient is not None:
        defaults.setdefault("recipient_email", recipient.email)
        defaults.setdefault("recipient_phone", recipient.phone)
    return Notification.objects.create(organization=organization, recipient=recipient, event_type=event_type, **defaults)


def make_delivery(notification: Notification, channel: str = Channel.EMAIL, **fields: Any) -> NotificationDelivery:
    address = {
        Channel.EMAIL: notification.recipient_email,
        Channel.SMS: notification.recipient_phone, Channel.WHATSAPP: notification.recipient_phone,
        Channel.VOICE: notification.recipient_phone,
    }.get(channel, str(notification.recipient_id or ""))
    defaults: dict[str, Any] = dict(status=DeliveryStatus.PENDING, recipient_address=address)
    defaults.update(fields)
    return NotificationDelivery.objects.create(
        notification=notification, organization_id=notification.organization_id, channel=channel, **defaults
    )
