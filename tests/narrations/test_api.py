import pytest
from rest_framework.test import APIClient

from narrations.models import Story, StoryCharacter
from narrations.styles import style_catalogue

from .conftest import StoryFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def test_create_story(auth_client, user, organization, django_assert_max_num_queries):
    payload = {
        "title": "The Lantern Keeper",
        "content": "The lighthouse stood alone.\n\nMira: \"Hello?\"",
        "characters": [{"name": "Mira", "description": "a curious girl"}, {"name": "Tom"}],
    }
    with django_assert_max_num_queries(6):
        response = auth_client.post("/api/v1/stories/", payload, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"id", "title", "content", "characters", "created_at"}
    story = Story.objects.get(pk=body["id"])
    assert (story.owner, story.organization, story.title) == (user, organization, "The Lantern Keeper")
    assert body["characters"] == [{"id": c.pk, "name": c.name} for c in story.characters.all()]
    assert [c["name"] for c in body["characters"]] == ["Mira", "Tom"]
    assert story.characters.get(name="Mira").description == "a curious girl"


def test_create_story_without_characters(auth_client):
    response = auth_client.post("/api/v1/stories/", {"title": "Short", "content": "Once."}, format="json")
    assert response.status_code == 201
    assert response.json()["characters"] == []


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"content": "Once."}, "title"),
        ({"title": "  ", "content": "Once."}, "title"),
        ({"title": "x" * 201, "content": "Once."}, "title"),
        ({"title": "T"}, "content"),
        ({"title": "T", "content": ""}, "content"),
        ({"title": "T", "content": "Once.", "characters": "Mira"}, "characters"),
        ({"title": "T", "content": "Once.", "characters": [{"description": "no name"}]}, "characters"),
        ({"title": "T", "content": "Once.", "characters": [{"name": "Mira"}, {"name": "Mira"}]}, "characters"),
        ({"title": "T", "content": "Once.", "characters": [{"name": "Mira"}, {"name": " mira "}]}, "characters"),
        ({"title": "T", "content": "Once.", "characters": [{"name": "x" * 101}]}, "characters"),
    ],
)
def test_invalid_story_is_rejected_and_nothing_saved(auth_client, payload, field):
    response = auth_client.post("/api/v1/stories/", payload, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not Story.objects.exists() and not StoryCharacter.objects.exists()


def test_malformed_json_is_a_400(auth_client):
    response = auth_client.post("/api/v1/stories/", "{not json", content_type="application/json")
    assert response.status_code == 400


def test_owner_reads_the_story(auth_client, user, organization, django_assert_max_num_queries):
    story = StoryFactory(owner=user, organization=organization)
    with django_assert_max_num_queries(2):
        response = auth_client.get(f"/api/v1/stories/{story.pk}/")
    assert response.status_code == 200
    assert response.json()["title"] == story.title


def test_other_users_get_404(user, organization, other_user):
    story = StoryFactory(owner=user, organization=organization)
    client = APIClient()
    client.force_authenticate(user=other_user)
    assert client.get(f"/api/v1/stories/{story.pk}/").status_code == 404
    assert client.get("/api/v1/stories/999999/").status_code == 404
    assert client.get("/api/v1/stories/").json() == []


def test_anonymous_and_api_key_callers_cannot_use_stories(api_client, key_client, user, organization):
    story = StoryFactory(owner=user, organization=organization)
    assert api_client.get(f"/api/v1/stories/{story.pk}/").status_code in (401, 403)
    assert api_client.post("/api/v1/stories/", {"title": "T", "content": "x"}, format="json").status_code in (401, 403)
    response = key_client.post("/api/v1/stories/", {"title": "T", "content": "x"}, format="json")
    assert response.status_code == 403 and "user" in response.json()["detail"]
    assert key_client.get(f"/api/v1/stories/{story.pk}/").status_code == 403
    assert Story.objects.count() == 1


def test_list_returns_the_users_stories_newest_first(auth_client, user, organization, other_user, django_assert_max_num_queries):
    older = StoryFactory(owner=user, organization=organization)
    newer = StoryFactory(owner=user, organization=organization)
    StoryFactory(owner=other_user)
    with django_assert_max_num_queries(2):
        response = auth_client.get("/api/v1/stories/")
    assert response.status_code == 200
    assert [s["id"] for s in response.json()] == [newer.pk, older.pk]


def test_conversation_styles_catalogue(api_client):
    response = api_client.get("/api/v1/conversation-styles/")
    assert response.status_code == 200
    assert response.json() == style_catalogue()
    assert len(response.json()) == 8
