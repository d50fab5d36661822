"""Recommendations from one's own history: scoring and explanations."""
from __future__ import annotations

import pytest

from invitations.recommendations import recommendations_for_user
from invitations.services import content_invitations_send, invitations_send
from narrations.services import story_create
from news.content import NEWS
from news.services import article_create

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


def _article(organization, user, title: str, category: str):
    return article_create(organization=organization, created_by=user, body={"title": title, "summary": "s", "category": category})


def test_recommends_new_content_to_frequent_invitees_in_their_usual_style(user, organization, auth_client):
    old = [_article(organization, user, f"Tech {i}", "technology") for i in range(3)]
    for article in old:
        content_invitations_send(kind=NEWS, content=article, inviter=user,
                                 items=[{"email": "sam@example.com", "conversation_style": "siblings"}])
    story = story_create(owner=user, title="The Lighthouse", content="A lamp.")
    invitations_send(story=story, inviter=user, items=[{"email": "ann@example.com", "conversation_style": "business"}])
    fresh_tech = _article(organization, user, "New chips", "technology")
    _article(organization, user, "Football", "sport")

    items = recommendations_for_user(user=user, organization=organization)
    best = items[0]
    # 2×3 invitations to Sam + 3×3 technology articles shared with Sam + 1 (new this week)
    assert (best.content_type, best.content_id, best.invitee, best.conversation_style, best.score) == (
        "news_article", fresh_tech.pk, "sam@example.com", "siblings", 16)
    assert best.reason == "You shared 3 technology articles with sam@example.com as siblings."
    # Nothing already shared with someone is suggested to them again.
    assert not any(r.invitee == "sam@example.com" and r.content_type == "news_article"
                   and r.content_id in {a.pk for a in old} for r in items)
    assert not any(r.invitee == "ann@example.com" and r.content_type == "story" and r.content_id == story.pk for r in items)
    ann = [r for r in items if r.invitee == "ann@example.com"]
    assert ann and all(r.conversation_style == "business" for r in ann)
    assert ann[0].reason == "You invited ann@example.com 1 time in the business style."

    body = auth_client.get("/api/v1/me/recommendations/").json()
    assert body["recommendations"][0]["content_id"] == fresh_tech.pk
    assert body["recommendations"][0]["reason"].startswith("You shared 3 technology articles")


def test_no_history_no_recommendations(user, organization, auth_client):
    _article(organization, user, "Alone", "science")
    assert auth_client.get("/api/v1/me/recommendations/").json() == {"recommendations": []}
