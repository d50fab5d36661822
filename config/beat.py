"""Every periodic task of Troubadour, declared once.

Celery beat runs with django-celery-beat's DatabaseScheduler, so the schedules live in its
tables where operators can see and change them in the Django admin. `beat_schedule_sync()`
(run by `manage.py sync_beat` and after every `migrate`) creates the entries declared here:

- a missing entry is created with the declared crontab;
- an existing entry keeps its crontab and its enabled flag (an operator may have changed
  them), but its task name, queue, expiry and description follow this module;
- `reset=True` (`sync_beat --reset`) also puts the declared crontab back.

Every entry has an expiry shorter than its period: when workers are down, beat keeps
publishing, and without an expiry the backlog would run all at once when they come back.
The tasks are idempotent sweeps over PostgreSQL, so a skipped run costs nothing.
"""
from __future__ import annotations

from dataclasses import dataclass

from celery.schedules import crontab

from common.queues import Queue


@dataclass(frozen=True)
class BeatEntry:
    name: str
    task: str
    schedule: crontab
    expires: int  # seconds
    description: str
    queue: str = Queue.MAINTENANCE.value


BEAT_SCHEDULE: tuple[BeatEntry, ...] = (
    BeatEntry(
        name="retry due deliveries",
        task="notifications.retries_enqueue_due",
        schedule=crontab(minute="*"),
        expires=50,
        description="Queue deliveries whose next_retry_at has passed; dead-letter exhausted ones.",
    ),
    BeatEntry(
        name="sweep stuck deliveries",
        task="notifications.deliveries_sweep",
        schedule=crontab(minute="*/2"),
        expires=110,
        description="Re-queue deliveries left PENDING (never queued) or SENDING past the claim timeout.",
    ),
    BeatEntry(
        name="advance escalations",
        task="notifications.escalations_advance",
        schedule=crontab(minute="*"),
        expires=50,
        description="Move unacknowledged/unresolved notifications to their chain's next level.",
    ),
    BeatEntry(
        name="release held notifications",
        task="notifications.held_release",
        schedule=crontab(minute="*"),
        expires=50,
        description="Release deliveries held by quiet hours once the recipient's quiet hours end.",
    ),
    BeatEntry(
        name="send scheduled notifications",
        task="notifications.scheduled_release",
        schedule=crontab(minute="*"),
        expires=50,
        description="Send notifications whose scheduled_for has come.",
    ),
    BeatEntry(
        name="send due digests",
        task="notifications.digests_send_due",
        schedule=crontab(minute="*/5"),
        expires=280,
        description="Send each digest batch whose time has come, one message per channel.",
    ),
    BeatEntry(
        name="expire notifications",
        task="notifications.expire_due",
        schedule=crontab(minute="*/5"),
        expires=280,
        description="Mark notifications and deliveries past expires_at as EXPIRED.",
    ),
    BeatEntry(
        name="expire invitations",
        task="invitations.expire_due",
        schedule=crontab(minute="*/15"),
        expires=840,
        description="Mark pending story invitations past expires_at as expired.",
    ),
    BeatEntry(
        name="check provider health",
        task="providers.health_check_all",
        schedule=crontab(minute="*/5"),
        expires=280,
        description="Health-check every active provider; records a ProviderHealthMetric row each.",
    ),
    BeatEntry(
        name="check dead-letter rate",
        task="notifications.dead_letter_rate_check",
        schedule=crontab(minute="*/5"),
        expires=280,
        description="Alert the platform's operators when too many deliveries end in the dead-letter queue.",
    ),
    BeatEntry(
        name="poll delivery status",
        task="providers.poll_delivery_status",
        schedule=crontab(minute="*/10"),
        expires=540,
        description="Ask providers without status webhooks what became of recent deliveries.",
    ),
    BeatEntry(
        name="housekeeping",
        task="notifications.housekeeping",
        schedule=crontab(minute="30", hour="3"),
        expires=3000,
        description="Purge expired idempotency records, old audit rows and rendered copies, expired sessions.",
    ),
    BeatEntry(
        name="aggregate provider costs",
        task="providers.aggregate_costs",
        schedule=crontab(minute="15", hour="*"),
        expires=3000,
        description="Roll delivery costs up into ProviderCostDaily (yesterday and today).",
    ),
    BeatEntry(
        name="refresh batch jobs",
        task="batchjobs.refresh",
        schedule=crontab(minute="*"),
        expires=50,
        description="Catch batch job counters up with deliveries resolved by provider callbacks.",
    ),
    BeatEntry(
        name="resume stalled fan-outs",
        task="notifications.fanout_resume",
        schedule=crontab(minute="*"),
        expires=50,
        description="Queue again the runner of an audience fan-out whose chunks stopped moving.",
    ),
)


def _crontab_fields(schedule: crontab) -> dict[str, str]:
    return {
        "minute": schedule._orig_minute,
        "hour": schedule._orig_hour,
        "day_of_week": schedule._orig_day_of_week,
        "day_of_month": schedule._orig_day_of_month,
        "month_of_year": schedule._orig_month_of_year,
    }


def beat_schedule_sync(*, reset: bool = False, entries: tuple[BeatEntry, ...] = BEAT_SCHEDULE) -> dict[str, int]:
    """Make django-celery-beat's tables hold every declared entry. Idempotent."""
    from django.db import transaction
    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    created = updated = 0
    with transaction.atomic():
        for entry in entries:
            fields = {str(k): str(v) for k, v in _crontab_fields(entry.schedule).items()}
            schedule = CrontabSchedule.objects.filter(timezone="UTC", **fields).order_by("pk").first()
            if schedule is None:
                schedule = CrontabSchedule.objects.create(timezone="UTC", **fields)
            task = PeriodicTask.objects.select_for_update().filter(name=entry.name).first()
            if task is None:
                PeriodicTask.objects.create(
                    name=entry.name,
                    task=entry.task,
                    crontab=schedule,
                    queue=entry.queue,
                    expire_seconds=entry.expires,
                    description=entry.description,
                    enabled=True,
                )
                created += 1
                continue
            changes = {
                "task": entry.task,
                "queue": entry.queue,
                "expire_seconds": entry.expires,
                "expires": None,
                "description": entry.description,
            }
            if reset:
                changes.update(crontab=schedule, interval=None, solar=None, clocked=None, enabled=True)
            if any(getattr(task, key) != value for key, value in changes.items()):
                for key, value in changes.items():
                    setattr(task, key, value)
                task.save()
                updated += 1
    return {"created": created, "updated": updated}


def beat_schedule_post_migrate(sender, *, using: str = "default", plan=None, **kwargs) -> None:
    """post_migrate receiver: keep the beat tables in step with this module after every migrate."""
    from django.db import connections

    if "django_celery_beat_periodictask" not in connections[using].introspection.table_names():
        return  # migrating towards a state without django-celery-beat's tables
    beat_schedule_sync()
