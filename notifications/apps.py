from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from config.beat import beat_schedule_post_migrate
        from notifications.engine.provider_events import delivery_status_apply, voice_acknowledge
        from providers import hooks

        # What providers report about our deliveries comes up through providers.hooks.
        hooks.connect(delivery_events=delivery_status_apply, voice_digits=voice_acknowledge)

        # The periodic tasks of config/beat.py land in django-celery-beat's tables on every migrate.
        post_migrate.connect(beat_schedule_post_migrate, sender=self, dispatch_uid="troubadour-beat-sync")
