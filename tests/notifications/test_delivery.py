"""Batched delivery: claim, render, send through the registry, record, derive the status."""
from __future__ import annotations

import socket
import threading
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection, transaction
from django.utils import timezone

from notifications.engine.delivery import (
    BATCH_SIZE,
    deliver_batch,
    deliveries_enqueue,
    delivery_claim_batch,
)
from notifications.engine.status import notification_status_derive
from notifications.enums import AuditAction, Channel, DeliveryStatus, NotificationStatus
from notifications.models import DeadLetter, Notification, NotificationAuditLog, NotificationDelivery
from providers.models import SuppressedAddress, SuppressionReason
from tests.factories import MembershipFactory, UserFactory

from .test_delivery_support import event_type_with_template, notification_with_deliveries, users_bulk

pytestmark = [pytest.mark.postgres]

D = DeliveryStatus
N = NotificationStatus


@pytest.mark.django_db
def test_batch_renders_per_channel_sends_records_and_derives_status(user, organization):
    event_type_with_template()
    notification, deliveries = notification_with_deliveries(
        organization=organization, recipient=user, channels=(Channel.IN_APP, Channel.EMAIL)
    )
    report = deliver_batch(delivery_ids=[d.pk for d in deliveries])
    assert (report.claimed, report.sent, report.failed, report.retried) == (2, 2, 0, 0)

    in_app, email_row = (NotificationDelivery.objects.get(pk=d.pk) for d in deliveries)
    # In-app is SENT once handed to the in-app bus; the client's ack makes it DELIVERED.
    assert in_app.status == D.SENT and in_app.provider == "in_app" and in_app.sent_at is not None
    assert in_app.delivered_at is None
    assert email_row.status == D.SENT and email_row.provider == "django_email"
    assert email_row.provider_message_id and email_row.sent_at is not None and email_row.attempts == 1
    assert email_row.rendered["subject"] == "New task: Fix <login>"

    notification.refresh_from_db()
    # The notification row is the inbox item: the in-app content is stored on it.
    assert notification.title == "Alice assigned you Fix <login>"
    assert notification.body == "In Apollo."
    assert notification.action_url == "/tasks/T-1"
    assert notification.status == N.DELIVERED
    assert sorted(notification.channels_delivered) == [Channel.EMAIL, Channel.IN_APP]

    [message] = mail.outbox
    assert message.to == [user.email]
    assert message.subject == "New task: Fix <login>"
    assert message.body == f"Hi {user.display_name}, Alice assigned you Fix <login>."
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html" and "<b>Alice</b> assigned you Fix &lt;login&gt;" in html

    actions = list(NotificationAuditLog.objects.filter(notification=notification).values_list("action", flat=True))
    assert actions.count(AuditAction.DELIVERY_SENT) == 2 and AuditAction.NOTIFICATION_DELIVERED in actions


@pytest.mark.django_db
def test_french_recipient_gets_french_content_with_english_fallback(organization):
    event_type_with_template()
    french = UserFactory(locale="fr")
    MembershipFactory(user=french, organization=organization)
    notification, deliveries = notification_with_deliveries(
        organization=organization, recipient=french, channels=(Channel.IN_APP, Channel.EMAIL)
    )
    deliver_batch(delivery_ids=[d.pk for d in deliveries])
    [message] = mail.outbox
    assert message.subject == "Nouvelle tâche : Fix <login>"
    assert message.body.startswith("Hi ")  # no French body: the English one
    notification.refresh_from_db()
    assert notification.title == "Alice vous a assigné Fix <login>"
    assert notification.body == "In Apollo."


@pytest.mark.django_db
def test_a_batch_run_twice_sends_once(user, organization):
    event_type_with_template()
    _, deliveries = notification_with_deliveries(organization=organization, recipient=user, channels=(Channel.EMAIL,))
    ids = [d.pk for d in deliveries]
    first = deliver_batch(delivery_ids=ids + ids)
    second = deliver_batch(delivery_ids=ids)
    assert (first.claimed, first.sent) == (1, 1)
    assert (second.claimed, second.sent) == (0, 0)
    assert len(mail.outbox) == 1
    assert NotificationDelivery.objects.get(pk=ids[0]).attempts == 1
    assert NotificationAuditLog.objects.filter(delivery_id=ids[0], action=AuditAction.DELIVERY_SENT).count() == 1


@pytest.mark.django_db
def test_claim_skips_rows_that_are_not_due_or_not_pending(user, organization):
    _, deliveries = notification_with_deliveries(
        organization=organization, recipient=user, channels=(Channel.IN_APP, Channel.EMAIL, Channel.SMS)
    )
    in_app, email_row, sms = deliveries
    NotificationDelivery.objects.filter(pk=email_row.pk).update(next_retry_at=timezone.now() + timedelta(minutes=5))
    NotificationDelivery.objects.filter(pk=sms.pk).update(status=D.HELD)
    assert delivery_claim_batch(delivery_ids=[d.pk for d in deliveries]) == [in_app.pk]
    claimed = NotificationDelivery.objects.get(pk=in_app.pk)
    assert claimed.status == D.SENDING and claimed.claimed_at is not None and claimed.attempts == 1
    assert delivery_claim_batch(delivery_ids=[in_app.pk]) == []


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_get_disjoint_rows(organization):
    recipients = users_bulk(6)
    ids = []
    for r in recipients:
        _, rows = notification_with_deliveries(organization=organization, recipient=r, channels=(Channel.IN_APP,))
        ids += [d.pk for d in rows]
    locked_half = ids[:3]
    holding = threading.Event()
    release = threading.Event()
    other: dict[str, list[int]] = {}

    def hold_lock() -> None:
        try:
            with transaction.atomic():
                # Another worker mid-claim: its rows are locked until it commits.
                list(NotificationDelivery.objects.select_for_update().filter(pk__in=locked_half).values_list("pk", flat=True))
                holding.set()
                release.wait(timeout=20)
                other["claimed"] = delivery_claim_batch(delivery_ids=locked_half)
        finally:
            connection.close()

    thread = threading.Thread(target=hold_lock)
    thread.start()
    assert holding.wait(timeout=20)
    mine = delivery_claim_batch(delivery_ids=ids)  # must not wait for the locked rows
    release.set()
    thread.join(timeout=30)
    assert sorted(mine) == sorted(ids[3:])
    assert sorted(other["claimed"]) == sorted(locked_half)
    assert set(mine).isdisjoint(other["claimed"])
    assert NotificationDelivery.objects.filter(pk__in=ids, status=D.SENDING, attempts=1).count() == 6


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.django_db
def test_transient_failure_goes_back_to_pending_with_backoff(user, organization, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", _closed_port(), 2
    event_type_with_template()
    notification, [row] = notification_with_deliveries(organization=organization, recipient=user, channels=(Channel.EMAIL,))
    before = timezone.now()
    report = deliver_batch(delivery_ids=[row.pk])
    assert report.retried == 1
    row.refresh_from_db()
    assert row.status == D.PENDING and row.attempts == 1 and row.sent_at is None
    wait = row.next_retry_at - before
    assert timedelta(minutes=4, seconds=29) <= wait <= timedelta(minutes=5, seconds=31)
    [entry] = row.error_history
    assert entry["transient"] is True and entry["attempt"] == 1 and "SMTP connection failed" in entry["error"]
    assert NotificationAuditLog.objects.filter(delivery=row, action=AuditAction.DELIVERY_RETRY_SCHEDULED).exists()
    notification.refresh_from_db()
    assert notification.status == N.PROCESSING
    # Not due yet: a redelivered task leaves it alone.
    assert deliver_batch(delivery_ids=[row.pk]).claimed == 0


@pytest.mark.django_db
def test_last_transient_attempt_fails_and_is_dead_lettered(user, organization, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", _closed_port(), 2
    event_type_with_template()
    notification, [row] = notification_with_deliveries(organization=organization, recipient=user, channels=(Channel.EMAIL,))
    NotificationDelivery.objects.filter(pk=row.pk).update(attempts=3, max_attempts=4)
    report = deliver_batch(delivery_ids=[row.pk])
    assert report.failed == 1
    row.refresh_from_db()
    assert row.status == D.FAILED and row.attempts == 4 and row.failed_at is not None and row.next_retry_at is None
    assert DeadLetter.objects.filter(delivery=row).count() == 1
    notification.refresh_from_db()
    assert notification.status == N.FAILED


@pytest.mark.django_db
def test_permanent_failure_fails_at_once(user, organization):
    event_type_with_template()
    SuppressedAddress.objects.create(address=user.email, channel=Channel.EMAIL, reason=SuppressionReason.HARD_BOUNCE)
    notification, deliveries = notification_with_deliveries(
        organization=organization, recipient=user, channels=(Channel.IN_APP, Channel.EMAIL)
    )
    report = deliver_batch(delivery_ids=[d.pk for d in deliveries])
    assert (report.sent, report.failed, report.retried) == (1, 1, 0)
    email_row = NotificationDelivery.objects.get(pk=deliveries[1].pk)
    assert email_row.status == D.FAILED and "suppressed" in email_row.error and email_row.next_retry_at is None
    assert email_row.error_history[0]["transient"] is False
    assert mail.outbox == []
    notification.refresh_from_db()
    assert notification.status == N.PARTIALLY_DELIVERED and notification.channels_delivered == [Channel.IN_APP]
    assert NotificationAuditLog.objects.filter(delivery=email_row, action=AuditAction.DELIVERY_FAILED).exists()


@pytest.mark.django_db
def test_expired_notification_is_not_sent(user, organization):
    notification, deliveries = notification_with_deliveries(
        organization=organization, recipient=user, channels=(Channel.EMAIL,), expires_at=timezone.now() - timedelta(minutes=1)
    )
    report = deliver_batch(delivery_ids=[d.pk for d in deliveries])
    assert report.expired == 1 and mail.outbox == []
    notification.refresh_from_db()
    assert notification.status == N.EXPIRED


@pytest.mark.django_db
def test_no_template_sends_the_events_own_text(user, organization):
    notification, deliveries = notification_with_deliveries(
        organization=organization, recipient=user, channels=(Channel.EMAIL,), event_type="custom.unmapped",
        title="Deploy finished", body="Build 42 is live.",
    )
    deliver_batch(delivery_ids=[d.pk for d in deliveries])
    [message] = mail.outbox
    assert (message.subject, message.body) == ("Deploy finished", "Build 42 is live.")


@pytest.mark.parametrize(
    "statuses, expected",
    [
        ([D.SENT, D.DELIVERED], N.DELIVERED),
        ([D.SENT, D.SKIPPED], N.DELIVERED),
        ([D.SENT, D.FAILED], N.PARTIALLY_DELIVERED),
        ([D.FAILED, D.BOUNCED], N.FAILED),
        ([D.SENT, D.PENDING], N.PROCESSING),
        ([D.SENDING], N.PROCESSING),
        ([D.HELD, D.SKIPPED], N.HELD),
        ([D.HELD, D.SENT], N.PARTIALLY_DELIVERED),
        ([D.SKIPPED, D.SKIPPED], N.SKIPPED),
        ([D.CANCELLED], N.CANCELLED),
        ([D.EXPIRED], N.EXPIRED),
        ([D.DIGESTED], N.DIGESTED),
        ([D.OPENED, D.CLICKED], N.DELIVERED),
    ],
)
def test_notification_status_derivation(statuses, expected):
    assert notification_status_derive(statuses) == expected


@pytest.mark.django_db
def test_deliver_batch_query_count_does_not_grow_with_the_batch(organization, django_assert_max_num_queries, settings):
    event_type_with_template()

    def batch(size: int) -> list[int]:
        ids = []
        for recipient in users_bulk(size):
            _, rows = notification_with_deliveries(organization=organization, recipient=recipient,
                                                   channels=(Channel.IN_APP, Channel.EMAIL))
            ids += [d.pk for d in rows]
        return ids

    small, large = batch(5), batch(50)  # 10 and 100 deliveries
    assert len(large) == BATCH_SIZE
    with django_assert_max_num_queries(30) as small_ctx:
        assert deliver_batch(delivery_ids=small).sent == 10
    with django_assert_max_num_queries(30) as large_ctx:
        assert deliver_batch(delivery_ids=large).sent == 100
    assert len(large_ctx.captured_queries) == len(small_ctx.captured_queries)
    assert len(mail.outbox) == 55


@pytest.mark.rabbitmq
@pytest.mark.django_db
def test_enqueue_publishes_batches_of_at_most_100_after_commit(django_capture_on_commit_callbacks):
    from kombu import Exchange, Queue

    from config.celery import app

    queue = Queue("delivery", Exchange("delivery", type="direct"), routing_key="delivery")
    with app.connection_for_write() as conn:
        bound = queue(conn.default_channel)
        bound.declare()
        bound.purge()
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            deliveries_enqueue(delivery_ids=range(1, 251))
        assert bound.get(no_ack=True) is None  # nothing before commit
        for callback in callbacks:
            callback()
        chunks = []
        while (message := bound.get(no_ack=True)) is not None:
            assert message.headers["task"] == "notifications.deliver_batch"
            args, _kwargs, _embed = message.decode()
            chunks.append(args[0])
    assert [len(c) for c in chunks] == [100, 100, 50]
    assert sorted(pk for c in chunks for pk in c) == list(range(1, 251))


@pytest.mark.django_db
def test_a_batch_pauses_the_cyclic_collector_and_always_gives_it_back(user, organization, monkeypatch):
    import gc

    from notifications.engine import delivery

    event_type_with_template()
    seen: list[bool] = []
    real = delivery._send_groups

    def watching(pending):
        seen.append(gc.isenabled())
        return real(pending)

    monkeypatch.setattr(delivery, "_send_groups", watching)
    _, rows = notification_with_deliveries(organization=organization, recipient=user, channels=(Channel.EMAIL,))
    assert gc.isenabled()
    assert deliver_batch(delivery_ids=[d.pk for d in rows]).sent == 1
    assert seen == [False] and gc.isenabled()

    def broken(pending):
        raise RuntimeError("provider layer bug")

    monkeypatch.setattr(delivery, "_send_groups", broken)
    _, rows = notification_with_deliveries(organization=organization, recipient=UserFactory(), channels=(Channel.EMAIL,))
    with pytest.raises(RuntimeError):
        deliver_batch(delivery_ids=[d.pk for d in rows])
    assert gc.isenabled()
    # The claim was given back, as before.
    assert NotificationDelivery.objects.get(pk=rows[0].pk).status == D.PENDING
