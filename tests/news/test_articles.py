"""News articles by API: created in the caller's organization, reading time computed, scoped."""
from __future__ import annotations

import pytest

from news.models import NewsArticle
from news.services import reading_time_minutes

from ..factories import MembershipFactory, OrganizationFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

URL = "/api/v1/news/articles/"


def test_create_computes_reading_time_and_lists_by_category(auth_client, organization):
    body = {"title": "Rivers", "summary": "Short summary.", "full_content": "word " * 450, "category": "Science",
            "tags": ["water", "Water", "climate"], "language": "fr", "published_at": "2026-11-30T09:00:00Z",
            "source_url": "https://news.example/rivers"}
    response = auth_client.post(URL, body, format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["reading_time_minutes"] == 3  # 450 words at 200 a minute, rounded up
    assert data["category"] == "science" and data["tags"] == ["water", "climate"] and data["language"] == "fr"
    assert NewsArticle.objects.get(pk=data["id"]).organization == organization
    auth_client.post(URL, {"title": "Other", "summary": "About sport."  , "category": "sport"}, format="json")
    listed = auth_client.get(URL, {"category": "science"}).json()
    assert [a["id"] for a in listed] == [data["id"]]
    assert auth_client.get(f"{URL}{data['id']}/").json()["title"] == "Rivers"


def test_reading_time_uses_the_summary_without_full_content():
    assert reading_time_minutes(summary="one two three") == 1
    assert reading_time_minutes(summary="w " * 401) == 3


def test_an_api_key_adds_articles_to_its_organization(key_client, organization):
    response = key_client.post(URL, {"title": "Feed item", "summary": "From the ingest job."}, format="json")
    assert response.status_code == 201, response.content
    assert NewsArticle.objects.get(pk=response.json()["id"]).organization == organization


@pytest.mark.parametrize(
    "body, field",
    [
        ({"summary": "no title"}, "title"),
        ({"title": "no summary"}, "summary"),
        ({"title": "t", "summary": "s", "source_url": "javascript:alert(1)"}, "source_url"),
        ({"title": "t", "summary": "s", "published_at": "yesterday"}, "published_at"),
        ({"title": "t", "summary": "s", "tags": "a,b"}, "tags"),
        ({"title": "t", "summary": "s", "tags": [1, 2]}, "tags"),
        ({"title": "t", "summary": "s", "language": "english!"}, "language"),
        ({"title": ["t"], "summary": "s"}, "title"),
        ({"title": "t" * 301, "summary": "s"}, "title"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_saves_nothing(auth_client, body, field):
    response = auth_client.post(URL, body, format="json")
    assert response.status_code == 400
    assert field in str(response.json())
    assert NewsArticle.objects.count() == 0


def test_a_non_object_body_is_a_400(auth_client):
    assert auth_client.post(URL, [1, 2], format="json").status_code == 400


def test_another_organization_cannot_see_or_share_the_article(api_client, article):
    stranger = UserFactory()
    MembershipFactory(user=stranger, organization=OrganizationFactory())
    api_client.force_authenticate(stranger)
    assert api_client.get(f"{URL}{article.pk}/").status_code == 404
    assert api_client.get(URL).json() == []
    response = api_client.post(
        f"{URL}{article.pk}/invitations/",
        {"invitations": [{"email": "x@example.com", "conversation_style": "jovial"}]},
        format="json",
    )
    assert response.status_code == 404
