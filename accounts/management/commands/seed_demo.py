"""Demo data for `make run`: a demo user, an organization, a story with characters, and the
notification platform's demo (notifications.demo). Idempotent."""
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import Membership, MembershipRole, Organization, Team, User

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "troubadour-demo"

STORY_TITLE = "The Lighthouse Keeper's Daughter"
STORY_CONTENT = """On the last night of autumn, the lamp at Greyrock Point flickered and went dark.

Mara climbed the spiral stairs two at a time, her lantern swinging.

"Father, the light is out!" Mara called.

"Then we light it again," said Tomas, already reaching for the matches.

Tomas: "Ships are counting on us tonight."

Outside, the sea rose in great grey shoulders. Far beyond the rocks, a single mast leaned against the storm.

Mara struck the match. The wick caught, the great lens turned, and a ribbon of gold swept across the water. The mast straightened, turned, and found its way home."""

CHARACTERS = [("Mara", "The keeper's daughter, brave and quick."), ("Tomas", "The old lighthouse keeper.")]


class Command(BaseCommand):
    help = "Create the demo user, organization and story (safe to run repeatedly)."

    def handle(self, *args, **options):
        with transaction.atomic():
            org, user, story = self._storyteller()
        from notifications.demo import DEMO_API_KEY, demo_notifications_seed

        demo_notifications_seed(organization=org, owner=user)
        self.stdout.write(f"Demo data ready: user '{DEMO_USERNAME}', organization '{org.slug}', story #{story.pk}, "
                          f"API key {DEMO_API_KEY}.")

    def _storyteller(self):
        user, created = User.objects.get_or_create(
            username=DEMO_USERNAME,
            defaults={"email": "demo@troubadour.local", "display_name": "Demo Storyteller", "is_staff": True,
                      "is_superuser": True},
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save()
        org, _ = Organization.objects.get_or_create(slug="demo", defaults={"name": "Demo Studio"})
        Membership.objects.get_or_create(user=user, organization=org, defaults={"role": MembershipRole.OWNER})
        Team.objects.get_or_create(organization=org, name="Storytellers")

        from narrations.models import Story, StoryCharacter

        story, story_created = Story.objects.get_or_create(
            owner=user, title=STORY_TITLE, defaults={"content": STORY_CONTENT, "organization": org}
        )
        if story_created:
            StoryCharacter.objects.bulk_create(
                [StoryCharacter(story=story, name=name, description=desc) for name, desc in CHARACTERS]
            )
        return org, user, story
