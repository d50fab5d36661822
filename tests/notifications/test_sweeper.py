"""The outbox sweeper: stuck PENDING and expired SENDING claims (notifications.engine.sweeper)."""
from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from notifications.engine.sweeper import deliveries_sweep
from notifications.enums import Channel, DeadLetterStatus, DeliveryStatus, NotificationStatus
from notifications.models import DeadLetter, NotificationDelivery
from providers.models import ProviderOutbox
from tests.factories import MembershipFactory, UserFactory

from .test_retry_support import eager_celery, make_delivery, make_notification  # noqa: F401

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


@pytest.fixture
def phone_user(organization):
    user = UserFactory(phone="+14155550124")
    MembershipFactory(user=user, organization=organization)
    return user


def test_expired_claim_is_released_and_sent_again(
    organization, phone_user, eager_celery, django_capture_on_commit_callbacks
):
    start = timezone.now()
    n = make_notification(organization=organization, recipient=phone_user)
    with time_machine.travel(start, tick=False) as clock:
        # A worker claimed it and was killed before recording anything.
        d = make_delivery(n, Channel.SMS, status=DeliveryStatus.SENDING, claimed_at=start, attempts=1)
        clock.move_to(start + timedelta(minutes=5))
        with django_capture_on_commit_callbacks(execute=True):
            report = deliveries_sweep()
        assert report.released_claims == 0  # inside the claim timeout: the worker may still be on it
        d.refresh_from_db()
        assert d.status == DeliveryStatus.SENDING

        clock.move_to(start + timedelta(minutes=16))
        with django_capture_on_commit_callbacks(execute=True):
            report = deliveries_sweep()
    assert report.released_claims == 1
    d.refresh_from_db()
    # Re-queued and delivered through the SMS log provider (a second claim: attempt 2).
    assert d.status in (DeliveryStatus.SENT, DeliveryStatus.DELIVERED)
    assert d.attempts == 2
    assert d.error_history[0]["code"] == "claim_expired"
    assert ProviderOutbox.objects.filter(idempotency_key=str(d.pk)).count() == 1


def test_expired_claim_without_attempts_left_is_dead_lettered(organization, phone_user, django_capture_on_commit_callbacks):
    n = make_notification(organization=organization, recipient=phone_user)
    d = make_delivery(n, Channel.SMS, status=DeliveryStatus.SENDING, attempts=4, max_attempts=4,
                      claimed_at=timezone.now() - timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        report = deliveries_sweep()
    assert (report.dead_lettered, report.released_claims) == (1, 0)
    assert callbacks == []
    d.refresh_from_db()
    assert d.status == DeliveryStatus.FAILED
    assert DeadLetter.objects.get(delivery=d).status == DeadLetterStatus.OPEN


def test_pending_never_queued_is_requeued_once_per_sweep_window(
    organization, phone_user, django_capture_on_commit_callbacks
):
    start = timezone.now()
    n = make_notification(organization=organization, recipient=phone_user)
    with time_machine.travel(start, tick=False) as clock:
        lost = make_delivery(n, Channel.SMS)
        waiting_retry = make_delivery(n, Channel.EMAIL, next_retry_at=start + timedelta(hours=1), attempts=1)
        scheduled = make_notification(organization=organization, recipient=phone_user, status=NotificationStatus.SCHEDULED,
                                      scheduled_for=start + timedelta(hours=2))
        not_yet = make_delivery(scheduled, Channel.SMS)
        clock.move_to(start + timedelta(minutes=11))
        fresh = make_delivery(make_notification(organization=organization, recipient=phone_user), Channel.SMS)
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            report = deliveries_sweep()
        assert report.requeued_pending == 1 and len(callbacks) == 1
        # Swept rows get a fresh window: the next sweep right after does not queue them again.
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            assert deliveries_sweep().requeued_pending == 0
        assert callbacks == []
    for untouched in (waiting_retry, not_yet, fresh):
        untouched.refresh_from_db()
        assert untouched.status == DeliveryStatus.PENDING
    lost.refresh_from_db()
    assert lost.updated_at == start + timedelta(minutes=11)


def test_sweep_of_many_rows_has_a_fixed_query_count(
    organization, phone_user, django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    n = make_notification(organization=organization, recipient=phone_user)
    old = timezone.now() - timedelta(hours=1)
    NotificationDelivery.objects.bulk_create(
        NotificationDelivery(notification=n, organization=organization, channel=Channel.SMS, escalation_level=i,
                             recipient_address=phone_user.phone, status=DeliveryStatus.SENDING, claimed_at=old,
                             attempts=1)
        for i in range(250)
    )
    with django_capture_on_commit_callbacks(execute=False), django_assert_max_num_queries(12):
        report = deliveries_sweep()
    assert report.released_claims == 250
    assert NotificationDelivery.objects.filter(status=DeliveryStatus.PENDING).count() == 250
