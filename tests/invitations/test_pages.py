"""Server-rendered pages: home, story page, invitation landing (404/410 pages included)."""
from __future__ import annotations

import json

import pytest
from django.utils import timezone

from invitations.models import StoryInvitation
from invitations.services import invitations_send
from narrations.models import Story

from .conftest import people

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


@pytest.fixture
def web(client, user):
    client.force_login(user)
    return client


def test_home_redirects_anonymous_to_login(client):
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_home_lists_own_stories_and_creates_one(web, story, other_story):
    page = web.get("/")
    assert page.status_code == 200
    html = page.content.decode()
    assert story.title in html and other_story.title not in html

    response = web.post("/", {"title": "Night train", "content": "The train left at midnight.", "characters": "Ines\n\nThe Conductor\n"})
    created = Story.objects.get(title="Night train")
    assert response.status_code == 302 and response["Location"] == f"/stories/{created.pk}/"
    assert list(created.characters.values_list("name", flat=True)) == ["Ines", "The Conductor"]


def test_home_form_errors_are_shown(web):
    response = web.post("/", {"title": "", "content": "", "characters": "Ann\nann"})
    assert response.status_code == 400
    assert b"This field is required." in response.content
    assert b"Each character can appear only once." in response.content
    assert not Story.objects.exists()


def test_story_page_shows_invitations_and_dialog_config(web, story, user, django_assert_max_num_queries):
    invitations_send(story=story, inviter=user, items=people(3, "jovial") + [{"phone": "+14155550100", "conversation_style": "siblings"}])
    # A fixed number whatever the invitees (summary, one page of rows, narrations, progress,
    # the latest batch job's progress).
    with django_assert_max_num_queries(14):
        page = web.get(f"/stories/{story.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="batch-job-progress"' in html and "of 4 invitees processed" in html
    assert "Invite collaborators" in html and "<dialog" in html
    assert "guest0@example.com" in html and "+14155550100" in html
    config = json.loads(html.split('id="invite-config" type="application/json">', 1)[1].split("</script>", 1)[0])
    assert config["storyId"] == story.pk
    assert len(config["styles"]) == 8 and all(s["description"] for s in config["styles"])
    assert [c["name"] for c in config["characters"]] == ["Mara", "Captain"]


def test_story_page_is_owner_only(web, other_story):
    assert web.get(f"/stories/{other_story.pk}/").status_code == 404


def test_landing_page_states(client, story, user):
    result = invitations_send(story=story, inviter=user, items=people(2), message="Hear this")
    first, second = result.invitations
    page = client.get(f"/i/{result.tokens[first.pk]}")
    assert page.status_code == 200
    html = page.content.decode()
    assert story.title in html and user.get_display_name() in html and "Hear this" in html
    assert "Accept and listen" in html
    assert "being prepared" in html  # pre-generation has not run: Accept will generate it
    assert page["Cache-Control"] == "private, no-store"
    assert StoryInvitation.objects.get(pk=first.pk).viewed_at is not None

    assert client.get("/i/not-a-real-token-at-all-0000000000").status_code == 404
    StoryInvitation.objects.filter(pk=first.pk).update(expires_at=timezone.now())
    gone = client.get(f"/i/{result.tokens[first.pk]}")
    assert gone.status_code == 410 and b"no longer available" in gone.content
    StoryInvitation.objects.filter(pk=second.pk).update(status="revoked")
    assert client.get(f"/i/{result.tokens[second.pk]}").status_code == 410
