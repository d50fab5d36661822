"""Quiet-hours release, scheduled sends, expiry, invitation expiry and the beat schedule."""
from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.management import call_command
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from config.beat import BEAT_SCHEDULE, beat_schedule_sync
from notifications.engine.scheduling import held_release, notifications_expire_due, scheduled_release
from notifications.enums import AuditAction, Channel, DeliveryStatus, NotificationStatus, QuietHoursAction
from notifications.models import Notification, NotificationAuditLog, NotificationDelivery, QuietHours, QuietHoursSchedule

from .test_retry_support import make_delivery, make_notification

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture
def quiet_user(organization, user):
    """Quiet 22:00–07:00 every day, Paris time, holding every channel."""
    qh = QuietHours.objects.create(user=user, organization=organization, timezone="Europe/Paris",
                                   default_action=QuietHoursAction.HOLD, allow_critical=True)
    QuietHoursSchedule.objects.create(quiet_hours=qh, days_of_week=list(range(7)), start_time=time(22), end_time=time(7))
    return user


def _held(organization, user, count: int, channel: str = Channel.EMAIL, at: datetime | None = None):
    rows = []
    for i in range(count):
        n = make_notification(organization=organization, recipient=user, title=f"Held {i}", status=NotificationStatus.HELD)
        rows.append(make_delivery(n, channel, status=DeliveryStatus.HELD))
    return rows


def test_held_deliveries_go_out_when_quiet_hours_end_in_the_users_timezone(
    organization, quiet_user, django_capture_on_commit_callbacks
):
    night = datetime(2026, 6, 1, 23, 30, tzinfo=PARIS)
    with time_machine.travel(night, tick=False) as clock:
        held = _held(organization, quiet_user, 2)
        clock.move_to(datetime(2026, 6, 2, 6, 55, tzinfo=PARIS))  # 04:55 UTC: still quiet in Paris
        assert held_release()["released"] == 0
        clock.move_to(datetime(2026, 6, 2, 7, 1, tzinfo=PARIS))
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            result = held_release()
    assert result == {"released": 2, "digests": 0, "expired": 0}
    assert len(callbacks) == 1
    for d in held:
        d.refresh_from_db()
        assert d.status == DeliveryStatus.PENDING
    assert NotificationAuditLog.objects.filter(action=AuditAction.NOTIFICATION_RELEASED).count() == 2
    assert Notification.objects.get(pk=held[0].notification_id).status == NotificationStatus.PROCESSING


def test_a_burst_of_held_deliveries_goes_out_as_one_digest(organization, quiet_user, django_capture_on_commit_callbacks):
    with time_machine.travel(datetime(2026, 6, 1, 23, 0, tzinfo=PARIS), tick=False) as clock:
        held = _held(organization, quiet_user, 5)
        clock.move_to(datetime(2026, 6, 2, 7, 5, tzinfo=PARIS))
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            assert held_release() == {"released": 5, "digests": 1, "expired": 0}
    assert len(callbacks) == 1  # one digest delivery, not five messages
    assert all(NotificationDelivery.objects.get(pk=d.pk).status == DeliveryStatus.DIGESTED for d in held)
    digest = Notification.objects.get(event_type="notification.digest")
    assert digest.title == "While you were away: 5 notifications"
    assert digest.deliveries.get().channel == Channel.EMAIL


def test_scheduled_notification_is_sent_at_its_time(organization, user, django_capture_on_commit_callbacks):
    start = datetime(2026, 6, 1, 8, 0, tzinfo=ZoneInfo("UTC"))
    with time_machine.travel(start, tick=False) as clock:
        n = make_notification(organization=organization, recipient=user, status=NotificationStatus.SCHEDULED,
                              scheduled_for=start + timedelta(hours=1))
        d = make_delivery(n, Channel.EMAIL, next_retry_at=start + timedelta(hours=1))
        clock.move_to(start + timedelta(minutes=59))
        assert scheduled_release() == 0
        clock.move_to(start + timedelta(hours=1, seconds=30))
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            assert scheduled_release() == 1
    assert len(callbacks) == 1
    n.refresh_from_db()
    d.refresh_from_db()
    assert n.status == NotificationStatus.PROCESSING and d.next_retry_at is None


def test_expired_notifications_are_not_sent(organization, user, django_capture_on_commit_callbacks):
    start = datetime(2026, 6, 1, 8, 0, tzinfo=ZoneInfo("UTC"))
    with time_machine.travel(start, tick=False) as clock:
        scheduled = make_notification(organization=organization, recipient=user, status=NotificationStatus.SCHEDULED,
                                      scheduled_for=start + timedelta(hours=2), expires_at=start + timedelta(hours=1))
        make_delivery(scheduled, Channel.EMAIL)
        held = make_notification(organization=organization, recipient=user, status=NotificationStatus.HELD,
                                 expires_at=start + timedelta(minutes=30))
        make_delivery(held, Channel.SMS, status=DeliveryStatus.HELD, recipient_address="+14155550100")
        sent = make_delivery(held, Channel.IN_APP, status=DeliveryStatus.DELIVERED)
        clock.move_to(start + timedelta(hours=3))
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            assert scheduled_release() == 0  # past its expiry: never released
            assert notifications_expire_due() == 2
    assert callbacks == []
    scheduled.refresh_from_db()
    held.refresh_from_db()
    assert scheduled.status == NotificationStatus.EXPIRED
    assert scheduled.deliveries.get().status == DeliveryStatus.EXPIRED
    assert held.deliveries.get(channel=Channel.SMS).status == DeliveryStatus.EXPIRED
    sent.refresh_from_db()
    assert sent.status == DeliveryStatus.DELIVERED  # what already went out stays as it was
    assert NotificationAuditLog.objects.filter(action=AuditAction.NOTIFICATION_EXPIRED).count() == 2


def test_invitations_past_expiry_become_expired_and_their_link_answers_410(user, client):
    from invitations.models import InvitationStatus, StoryInvitation, hash_token
    from invitations.tasks import expire_due_task
    from narrations.models import Story

    story = Story.objects.create(owner=user, title="The lighthouse", content="Once upon a time.")
    start = datetime(2026, 6, 1, 8, 0, tzinfo=ZoneInfo("UTC"))
    with time_machine.travel(start, tick=False) as clock:
        invitation = StoryInvitation.objects.create(
            story=story, inviter=user, invitee_email="friend@example.com", token_hash=hash_token("tok-expiring-0123456789abcdef"),
            conversation_style="jovial", expires_at=start + timedelta(days=14),
        )
        clock.move_to(start + timedelta(days=13))
        assert expire_due_task() == 0
        assert client.get("/api/v1/invitations/by-token/tok-expiring-0123456789abcdef/").status_code == 200
        clock.move_to(start + timedelta(days=14, minutes=1))
        assert expire_due_task() == 1
        invitation.refresh_from_db()
        assert invitation.status == InvitationStatus.EXPIRED
        assert client.get("/api/v1/invitations/by-token/tok-expiring-0123456789abcdef/").status_code == 410


def test_beat_schedule_is_synced_idempotently_and_keeps_operator_edits():
    # post_migrate already synced when the test database was created.
    names = {entry.name for entry in BEAT_SCHEDULE}
    tasks = {t.name: t for t in PeriodicTask.objects.filter(name__in=names)}
    assert set(tasks) == names
    for entry in BEAT_SCHEDULE:
        task = tasks[entry.name]
        assert task.task == entry.task and task.crontab is not None and task.enabled
        assert 0 < task.expire_seconds == entry.expires
    assert beat_schedule_sync() == {"created": 0, "updated": 0}

    # An operator slows the sweeper down in the admin: a sync keeps it, --reset restores it.
    sweeper = tasks["sweep stuck deliveries"]
    sweeper.crontab = CrontabSchedule.objects.create(minute="*/30", hour="*", day_of_week="*", day_of_month="*",
                                                     month_of_year="*")
    sweeper.save()
    call_command("sync_beat")
    sweeper.refresh_from_db()
    assert sweeper.crontab.minute == "*/30"
    call_command("sync_beat", "--reset")
    sweeper.refresh_from_db()
    assert sweeper.crontab.minute == "*/2"


def test_every_beat_task_is_a_registered_celery_task_on_the_maintenance_queue():
    import batchjobs.tasks  # noqa: F401  (autodiscovered by workers)
    import invitations.tasks  # noqa: F401
    import notifications.tasks  # noqa: F401
    import providers.tasks  # noqa: F401
    from config.celery import app

    for entry in BEAT_SCHEDULE:
        assert entry.task in app.tasks, entry.task
        assert entry.queue == "maintenance"
        assert entry.expires < 3600


def test_people_still_asleep_do_not_hide_those_whose_morning_came(organization, quiet_user, django_capture_on_commit_callbacks):
    """More HELD rows than one batch, the oldest for someone still in quiet hours: the walk goes on."""
    from tests.factories import MembershipFactory, UserFactory

    tokyo = UserFactory()
    MembershipFactory(user=tokyo, organization=organization)
    qh = QuietHours.objects.create(user=tokyo, organization=organization, timezone="Asia/Tokyo",
                                   default_action=QuietHoursAction.HOLD)
    QuietHoursSchedule.objects.create(quiet_hours=qh, days_of_week=list(range(7)), start_time=time(0), end_time=time(23, 59))
    with time_machine.travel(datetime(2026, 6, 1, 23, 0, tzinfo=PARIS), tick=False) as clock:
        asleep = _held(organization, tokyo, 4)
        awake = _held(organization, quiet_user, 2)
        clock.move_to(datetime(2026, 6, 2, 7, 5, tzinfo=PARIS))
        with django_capture_on_commit_callbacks(execute=False):
            assert held_release(batch_size=3) == {"released": 2, "digests": 0, "expired": 0}
    assert {NotificationDelivery.objects.get(pk=d.pk).status for d in awake} == {DeliveryStatus.PENDING}
    assert {NotificationDelivery.objects.get(pk=d.pk).status for d in asleep} == {DeliveryStatus.HELD}


def test_expiry_leaves_what_went_out_in_a_digest_alone(organization, user, django_capture_on_commit_callbacks):
    from notifications.engine.digest import DigestItem, digest_collect, digests_send_due
    from notifications.enums import BatchFrequency

    start = datetime(2026, 6, 1, 8, 10, tzinfo=ZoneInfo("UTC"))
    with time_machine.travel(start, tick=False) as clock, django_capture_on_commit_callbacks(execute=False):
        rows = []
        for title, expires in (("sent in the digest", timedelta(hours=3)), ("expires first", timedelta(minutes=30))):
            n = make_notification(organization=organization, recipient=user, title=title, expires_at=start + expires)
            d = NotificationDelivery(notification=n, organization=organization, channel=Channel.EMAIL,
                                     recipient_address=user.email)
            digest_collect(organization_id=organization.pk, items=[DigestItem(
                delivery=d, user_id=user.pk, frequency=BatchFrequency.HOURLY, criticality=n.criticality)])
            d.save()
            Notification.objects.filter(pk=n.pk).update(status=NotificationStatus.DIGESTED)
            rows.append((n, d))
        (kept, kept_d), (late, late_d) = rows
        clock.move_to(start + timedelta(minutes=45))
        assert notifications_expire_due() == 1  # still waiting in the open batch: expires
        clock.move_to(start + timedelta(minutes=55))
        assert digests_send_due()["sent"] == 1
        clock.move_to(start + timedelta(hours=4))
        assert notifications_expire_due() == 0  # already went out inside the digest
        assert notifications_expire_due() == 0
    kept.refresh_from_db(), kept_d.refresh_from_db(), late.refresh_from_db(), late_d.refresh_from_db()
    assert (kept.status, kept_d.status) == (NotificationStatus.DIGESTED, DeliveryStatus.DIGESTED)
    assert (late.status, late_d.status) == (NotificationStatus.EXPIRED, DeliveryStatus.EXPIRED)
    digest = Notification.objects.get(event_type="notification.digest")
    assert digest.data["notification_ids"] == [kept.pk]
    assert NotificationAuditLog.objects.filter(action=AuditAction.NOTIFICATION_EXPIRED).count() == 1


def test_scheduled_critical_event_is_held_until_its_time_then_escalates(
    organization, user, django_capture_on_commit_callbacks
):
    from notifications.enums import Criticality, EscalationRecipientType
    from notifications.models import EscalationChain, EscalationLevel
    from notifications.services import event_emit

    chain = EscalationChain.objects.create(organization=organization, name="Pages", trigger_criticality=Criticality.CRITICAL)
    EscalationLevel.objects.create(chain=chain, level=1, delay_minutes=5, channels=[Channel.EMAIL],
                                   recipient_type=EscalationRecipientType.ORIGINAL)
    start = datetime(2026, 6, 1, 8, 0, tzinfo=ZoneInfo("UTC"))
    with time_machine.travel(start, tick=False) as clock:
        with django_capture_on_commit_callbacks(execute=False) as at_intake:
            result = event_emit(organization=organization, type="incident.created", recipient_ids=[str(user.pk)],
                                criticality=Criticality.CRITICAL, channels=[Channel.IN_APP],
                                resource={"type": "incident", "id": "INC-1"}, scheduled_for=start + timedelta(hours=1))
        assert at_intake == []  # nothing is sent before its time
        n = Notification.objects.get(pk=result.notifications[0][0])
        assert n.status == NotificationStatus.SCHEDULED and n.escalation_chain is None
        clock.move_to(start + timedelta(minutes=59))
        assert scheduled_release() == 0
        clock.move_to(start + timedelta(hours=1, minutes=1))
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            assert scheduled_release() == 1
        assert len(callbacks) == 1
    n.refresh_from_db()
    assert n.status == NotificationStatus.PROCESSING and n.escalation_chain == chain
    assert n.next_escalation_at == start + timedelta(hours=1, minutes=6)
