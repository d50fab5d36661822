"""Load the shipped event taxonomy and default templates (idempotent)."""
from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import transaction

from notifications.taxonomy import catalog_load


class Command(BaseCommand):
    help = "Create the shipped event types and default templates that are missing (--update resets them)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--update",
            action="store_true",
            help="Also reset existing event types and platform default templates to the shipped content.",
        )

    def handle(self, *args, **options):
        with transaction.atomic():
            result = catalog_load(update=options["update"])
        self.stdout.write(self.style.SUCCESS(str(result)))
