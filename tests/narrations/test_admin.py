import pytest
from django.urls import reverse

from narrations.models import NarrationStatus, StoryNarration
from narrations.services import narrations_ensure_shared

from ..factories import UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


@pytest.fixture
def staff_client(client):
    admin = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(admin)
    return client


def test_admin_pages_render(staff_client, story):
    rows, _ = narrations_ensure_shared(story=story, styles=["business"])
    for url in (
        reverse("admin:narrations_story_changelist") + "?q=Lantern",
        reverse("admin:narrations_story_change", args=[story.pk]),
        reverse("admin:narrations_storycharacter_changelist"),
        reverse("admin:narrations_storynarration_changelist") + "?status__exact=pending&conversation_style__exact=business",
        reverse("admin:narrations_storynarration_change", args=[rows["business"].pk]),
    ):
        response = staff_client.get(url)
        assert response.status_code == 200, url
    assert b"Mira" in staff_client.get(reverse("admin:narrations_story_change", args=[story.pk])).content


def test_admin_regenerate_action(staff_client, story, local_engine):
    rows, _ = narrations_ensure_shared(story=story, styles=["business", "jovial"])
    ids = [rows["business"].pk, rows["jovial"].pk]
    response = staff_client.post(
        reverse("admin:narrations_storynarration_changelist"),
        {"action": "regenerate", "_selected_action": ids},
        follow=True,
    )
    assert response.status_code == 200
    assert b"Regenerated 2 narration(s)." in response.content
    assert list(StoryNarration.objects.filter(pk__in=ids).values_list("status", "attempts").distinct()) == [
        (NarrationStatus.READY, 1)
    ]
