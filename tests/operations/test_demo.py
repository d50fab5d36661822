"""`make run`'s demo data shows every feature, through the same services as the API, and the
README's curl example works against it as written."""
from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from providers.models import ProviderOutbox

from accounts.models import User
from notifications.demo import DEMO_API_KEY
from notifications.engine.delivery import deliver_batch
from notifications.enums import (
    DELIVERY_SUCCESS_STATUSES,
    AuditAction,
    AuditOutcome,
    Channel,
    DeliveryStatus,
    PreferenceLevel,
)
from notifications.models import (
    ChannelPreference,
    DeadLetter,
    EscalationChain,
    NotificationAuditLog,
    NotificationDelivery,
    NotificationPreference,
    QuietHours,
)
from providers.models import NotificationProvider

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _seed() -> None:
    with open(os.devnull, "w") as devnull:
        call_command("seed_demo", stdout=devnull)
        call_command("seed_demo", stdout=devnull)  # idempotent


def test_the_demo_shows_every_feature():
    _seed()
    people = {u.username: u for u in User.objects.filter(username__in=["ada", "grace", "linus"])}
    assert len(people) == 3 and all(u.phone and u.timezone != "UTC" for u in people.values())
    assert NotificationPreference.objects.filter(level=PreferenceLevel.ORGANIZATION).count() == 1
    assert NotificationPreference.objects.filter(level=PreferenceLevel.USER, user=people["ada"]).count() == 1
    assert ChannelPreference.objects.filter(preference__user=people["linus"], digest_frequency="DAILY").exists()
    assert QuietHours.objects.get(user=people["grace"]).schedules.count() == 1
    assert EscalationChain.objects.get(name="Demo incident escalation").levels.count() == 3
    channels = set(NotificationProvider.objects.values_list("channel", flat=True))
    assert {Channel.SMS, Channel.PUSH, Channel.WHATSAPP, Channel.VOICE} <= channels
    assert NotificationProvider.objects.filter(config__simulate_outage=True).count() == 1
    assert DeadLetter.objects.count() == 2
    assert NotificationDelivery.objects.filter(status=DeliveryStatus.DIGESTED).exists()

    # The organization's SMS provider is down: the seeded SMS deliveries fail over to the platform's.
    pending_sms = list(NotificationDelivery.objects.filter(channel=Channel.SMS, status=DeliveryStatus.PENDING)
                       .values_list("pk", flat=True))
    assert pending_sms
    deliver_batch(delivery_ids=pending_sms)
    sent = NotificationDelivery.objects.filter(pk__in=pending_sms, status__in=DELIVERY_SUCCESS_STATUSES)
    assert sent.count() == len(pending_sms)
    outage = NotificationProvider.objects.get(config__simulate_outage=True)
    failovers = NotificationAuditLog.objects.filter(action=AuditAction.PROVIDER_FAILOVER, provider=outage,
                                                    delivery_id__in=pending_sms, outcome=AuditOutcome.SUCCESS)
    assert failovers.count() == len(pending_sms)
    assert ProviderOutbox.objects.filter(channel=Channel.SMS, provider_code="log_sms").count() == len(pending_sms)


def test_the_readme_curl_example_works_against_the_demo():
    _seed()
    readme = (ROOT / "README.md").read_text()
    # The first event example (the quick start); later sections show audiences and subscribers.
    curl = re.findall(r"curl -X POST http://127\.0\.0\.1:8000/api/v1/events/.*?\}\}'", readme, re.S)[0]
    assert '"recipient_ids"' in curl
    args = shlex.split(curl.replace("\\\n", " "))
    headers = dict(h.split(": ", 1) for h in (args[i + 1] for i, a in enumerate(args) if a == "-H"))
    body = json.loads(args[args.index("-d") + 1])
    assert headers["Authorization"] == "Api-Key $KEY"
    assert f"KEY={DEMO_API_KEY}" in readme  # the README names the demo key
    ada = User.objects.get(username="ada")
    # On the fresh database of `make run`, Ada is user 2; here the sequence has moved on.
    assert body["recipient_ids"] == ["2"]
    body["recipient_ids"] = [str(ada.pk)]
    client = APIClient()
    response = client.post("/api/v1/events/", body, format="json", HTTP_AUTHORIZATION=f"Api-Key {DEMO_API_KEY}",
                           HTTP_IDEMPOTENCY_KEY=headers["Idempotency-Key"])
    assert response.status_code == 202, response.content
    [item] = response.json()["notifications"]
    assert item["recipient_id"] == str(ada.pk)
