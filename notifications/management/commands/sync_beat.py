"""Create the periodic tasks declared in config/beat.py in django-celery-beat's tables."""
from __future__ import annotations

from django.core.management.base import BaseCommand

from config.beat import beat_schedule_sync


class Command(BaseCommand):
    help = "Sync the periodic tasks of config/beat.py into django-celery-beat (idempotent)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--reset", action="store_true", help="Also restore the declared crontab of entries an operator changed."
        )

    def handle(self, *args, reset: bool = False, **options) -> None:
        result = beat_schedule_sync(reset=reset)
        self.stdout.write(f"beat schedule: {result['created']} created, {result['updated']} updated")
