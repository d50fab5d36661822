from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from config.beat import beat_schedule_post_migrate
        from notifications.engine.operator_alerts import provider_alert_raise
        from notifications.engine.provider_events import delivery_status_apply, voice_acknowledge
        from notifications.engine.provider_reports import (
            deliveries_sent_by,
            deliveries_sent_counts,
            deliveries_sent_summary,
            provider_audit_write,
        )
        from providers import hooks

        from .engine import config_memo  # noqa: F401  (configuration changes invalidate every process's memo)

        # What providers report about our deliveries (and their outages) comes up through
        # providers.hooks, and so do their questions about them and their audit rows.
        hooks.connect(delivery_events=delivery_status_apply, voice_digits=voice_acknowledge, sent_by=deliveries_sent_by,
                      sent_counts=deliveries_sent_counts, sent_summary=deliveries_sent_summary, audit=provider_audit_write,
                      provider_alert=provider_alert_raise)

        # The periodic tasks of config/beat.py land in django-celery-beat's tables on every migrate.
        post_migrate.connect(beat_schedule_post_migrate, sender=self, dispatch_uid="troubadour-beat-sync")
