"""Retries on beat, dead letters and channel fallback (notifications.engine.retry)."""
from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from notifications.engine.delivery import deliver_batch
from notifications.engine.retry import retries_run
from notifications.enums import AuditAction, Channel, DeadLetterStatus, DeliveryStatus
from notifications.models import ChannelConfiguration, DeadLetter, NotificationAuditLog, NotificationDelivery
from tests.factories import MembershipFactory, UserFactory

from .test_retry_support import eager_celery, make_delivery, make_notification, wa_sink  # noqa: F401

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


@pytest.fixture
def phone_user(organization):
    user = UserFactory(phone="+14155550123")
    MembershipFactory(user=user, organization=organization)
    return user


def test_transient_failures_back_off_5_15_min_then_dead_letter(
    organization, phone_user, wa_sink, eager_celery, django_capture_on_commit_callbacks
):
    wa_sink.fail_with = 503
    n = make_notification(organization=organization, recipient=phone_user)
    d = make_delivery(n, Channel.WHATSAPP, max_attempts=3)
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        deliver_batch(delivery_ids=[d.pk])
        d.refresh_from_db()
        assert (d.status, d.attempts) == (DeliveryStatus.PENDING, 1)
        assert timedelta(minutes=4, seconds=30) <= d.next_retry_at - start <= timedelta(minutes=5, seconds=30)

        # Not due yet: the beat tick queues nothing.
        with django_capture_on_commit_callbacks(execute=True):
            assert retries_run()["queued"] == 0
        assert wa_sink.requests == 1

        clock.move_to(start + timedelta(minutes=6))
        with django_capture_on_commit_callbacks(execute=True):
            assert retries_run()["queued"] == 1
        d.refresh_from_db()
        assert (d.status, d.attempts) == (DeliveryStatus.PENDING, 2)
        wait = d.next_retry_at - (start + timedelta(minutes=6))
        assert timedelta(minutes=13, seconds=30) <= wait <= timedelta(minutes=16, seconds=30)

        clock.move_to(start + timedelta(minutes=23))
        with django_capture_on_commit_callbacks(execute=True):
            retries_run()
        d.refresh_from_db()
        assert (d.status, d.attempts) == (DeliveryStatus.FAILED, 3)
        assert wa_sink.requests == 3

        # The next tick visits the failure once: the dead letter gets payload and responses.
        with django_capture_on_commit_callbacks(execute=True):
            assert retries_run()["followed_up"] == 1
            assert retries_run()["followed_up"] == 0
    letter = DeadLetter.objects.get(delivery=d)
    assert letter.status == DeadLetterStatus.OPEN
    assert letter.payload["notification_id"] == n.pk and letter.payload["channel"] == Channel.WHATSAPP
    assert len(letter.error_history) == 3
    assert NotificationAuditLog.objects.filter(delivery=d, action=AuditAction.DEAD_LETTERED).count() == 1


def test_exhausted_pending_row_is_failed_and_dead_lettered(organization, phone_user, django_capture_on_commit_callbacks):
    n = make_notification(organization=organization, recipient=phone_user)
    d = make_delivery(n, Channel.SMS, attempts=4, max_attempts=4, next_retry_at=timezone.now() - timedelta(minutes=1),
                      error_history=[{"attempt": i, "error": "timeout", "provider": "twilio_sms",
                                      "provider_response": {"status": 504}} for i in range(1, 5)])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        result = retries_run()
    assert result["exhausted"] == 1 and result["queued"] == 0
    assert callbacks == []  # nothing is queued for a row with no attempts left
    d.refresh_from_db()
    assert d.status == DeliveryStatus.FAILED and d.failed_at is not None and d.next_retry_at is None
    letter = DeadLetter.objects.get(delivery=d)
    assert letter.payload["recipient_address"] == phone_user.phone
    assert [r["response"] for r in letter.provider_responses] == [{"status": 504}] * 4
    assert "attempts exhausted" in letter.reason


def test_permanent_failure_falls_back_to_next_channel_once(
    organization, phone_user, django_capture_on_commit_callbacks
):
    ChannelConfiguration.objects.create(organization=organization, channel=Channel.EMAIL,
                                        fallback_channels=[Channel.SMS, Channel.WHATSAPP])
    n = make_notification(organization=organization, recipient=phone_user)
    failed = make_delivery(n, Channel.EMAIL, status=DeliveryStatus.FAILED, failed_at=timezone.now(), attempts=1,
                           error="Mailbox does not exist")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert retries_run()["fallbacks"] == 1
    assert len(callbacks) == 1  # the fallback delivery is queued after commit
    fallback = NotificationDelivery.objects.get(fallback_from=failed)
    assert (fallback.channel, fallback.status, fallback.recipient_address) == (Channel.SMS, DeliveryStatus.PENDING,
                                                                               phone_user.phone)
    n.refresh_from_db()
    note = n.trace["fallbacks"][0]
    assert note["from_channel"] == Channel.EMAIL and note["to_channel"] == Channel.SMS
    assert "Mailbox does not exist" in note["reason"]
    assert n.trace[Channel.SMS]["decision"] == "fallback"

    # Once: further ticks do not fall back again for the same failure.
    with django_capture_on_commit_callbacks(execute=False):
        assert retries_run()["fallbacks"] == 0
    assert NotificationDelivery.objects.filter(notification=n).count() == 2


def test_fallback_skips_channels_without_address_and_says_why(organization, django_capture_on_commit_callbacks):
    user = UserFactory(phone="")
    MembershipFactory(user=user, organization=organization)
    ChannelConfiguration.objects.create(organization=organization, channel=Channel.EMAIL,
                                        fallback_channels=[Channel.SMS, Channel.IN_APP])
    n = make_notification(organization=organization, recipient=user)
    failed = make_delivery(n, Channel.EMAIL, status=DeliveryStatus.FAILED, failed_at=timezone.now(), error="bounced")
    with django_capture_on_commit_callbacks(execute=False):
        retries_run()
    fallback = NotificationDelivery.objects.get(fallback_from=failed)
    assert fallback.channel == Channel.IN_APP and fallback.recipient_address == str(user.pk)
    n.refresh_from_db()
    assert n.trace["fallbacks"][0]["skipped"] == [{"channel": Channel.SMS, "skipped": "no address for this channel"}]


def test_no_fallback_chain_means_dead_letter_only(organization, phone_user, django_capture_on_commit_callbacks):
    n = make_notification(organization=organization, recipient=phone_user)
    failed = make_delivery(n, Channel.EMAIL, status=DeliveryStatus.FAILED, failed_at=timezone.now(), error="auth")
    with django_capture_on_commit_callbacks(execute=False):
        result = retries_run()
    assert result == {"queued": 0, "exhausted": 0, "followed_up": 1, "fallbacks": 0}
    assert DeadLetter.objects.filter(delivery=failed, status=DeadLetterStatus.OPEN).count() == 1
    assert NotificationDelivery.objects.filter(notification=n).count() == 1


def test_due_retries_are_queued_in_batches_with_a_fixed_query_count(
    organization, phone_user, django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    n = make_notification(organization=organization, recipient=phone_user)
    past = timezone.now() - timedelta(seconds=5)
    # One notification can only hold one delivery per channel and level: spread over levels.
    NotificationDelivery.objects.bulk_create(
        NotificationDelivery(notification=n, organization=organization, channel=Channel.SMS, escalation_level=i,
                             recipient_address=phone_user.phone, attempts=1, next_retry_at=past)
        for i in range(300)
    )
    with django_capture_on_commit_callbacks(execute=False) as callbacks, django_assert_max_num_queries(16):
        assert retries_run()["queued"] == 300
    assert len(callbacks) == 1  # one publish callback, which chunks into tasks of 100
    assert not NotificationDelivery.objects.filter(next_retry_at__isnull=False).exists()
    with django_capture_on_commit_callbacks(execute=False):
        assert retries_run()["queued"] == 0  # cleared retry times: not queued twice


def test_fallback_chain_configured_through_the_api_is_used(
    organization, phone_user, django_capture_on_commit_callbacks
):
    from rest_framework.test import APIClient

    from accounts.models import MembershipRole

    admin = UserFactory()
    MembershipFactory(user=admin, organization=organization, role=MembershipRole.ADMIN)
    api = APIClient()
    api.force_authenticate(admin)
    assert api.post("/api/v1/admin/channel-configurations/", {"channel": "EMAIL", "fallback_channels": ["EMAIL"]},
                    format="json").status_code == 400
    assert api.post("/api/v1/admin/channel-configurations/", {"channel": "EMAIL", "fallback_channels": ["FAX"]},
                    format="json").status_code == 400
    assert not ChannelConfiguration.objects.exists()  # nothing saved half-way
    created = api.post("/api/v1/admin/channel-configurations/", {"channel": "EMAIL", "fallback_channels": ["WHATSAPP"]},
                       format="json")
    assert created.status_code == 201, created.content
    config_id = created.json()["id"]
    assert api.post("/api/v1/admin/channel-configurations/", {"channel": "EMAIL"}, format="json").status_code == 409
    changed = api.patch(f"/api/v1/admin/channel-configurations/{config_id}/", {"fallback_channels": ["SMS", "WHATSAPP"]},
                        format="json")
    assert changed.status_code == 200 and changed.json()["fallback_channels"] == ["SMS", "WHATSAPP"]
    audit = NotificationAuditLog.objects.filter(action=AuditAction.CHANNEL_CONFIGURATION_CHANGED).order_by("pk").last()
    assert audit.details["before"]["fallback_channels"] == ["WHATSAPP"] and audit.user == admin

    n = make_notification(organization=organization, recipient=phone_user)
    failed = make_delivery(n, Channel.EMAIL, status=DeliveryStatus.FAILED, failed_at=timezone.now(), error="auth")
    with django_capture_on_commit_callbacks(execute=False):
        assert retries_run()["fallbacks"] == 1
    assert NotificationDelivery.objects.get(fallback_from=failed).channel == Channel.SMS


def test_channel_configurations_are_scoped_to_the_organization(organization, other_user):
    from rest_framework.test import APIClient

    from accounts.models import Membership, MembershipRole

    admin = UserFactory()
    MembershipFactory(user=admin, organization=organization, role=MembershipRole.ADMIN)
    api = APIClient()
    api.force_authenticate(admin)
    theirs = ChannelConfiguration.objects.create(organization=Membership.objects.get(user=other_user).organization,
                                                 channel=Channel.SMS, fallback_channels=[Channel.EMAIL])
    platform = ChannelConfiguration.objects.create(organization=None, channel=Channel.PUSH)
    assert [r["id"] for r in api.get("/api/v1/admin/channel-configurations/").json()["results"]] == [platform.pk]
    assert api.get(f"/api/v1/admin/channel-configurations/{theirs.pk}/").status_code == 404
    assert api.patch(f"/api/v1/admin/channel-configurations/{theirs.pk}/", {"enabled": False}, format="json").status_code == 404
    assert api.patch(f"/api/v1/admin/channel-configurations/{platform.pk}/", {"enabled": False}, format="json").status_code == 403
    platform.refresh_from_db()
    assert platform.enabled is True
