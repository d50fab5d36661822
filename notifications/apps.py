from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from config.beat import beat_schedule_post_migrate

        # The periodic tasks of config/beat.py land in django-celery-beat's tables on every migrate.
        post_migrate.connect(beat_schedule_post_migrate, sender=self, dispatch_uid="troubadour-beat-sync")
