"""Sharing a news article by invitation: the story machinery, one narration per style."""
from __future__ import annotations

import pytest

from invitations.models import InvitationHistory, InvitationStatus, StoryInvitation
from narrations.models import NarrationStatus, StoryNarration
from narrations.styles import get_style
from news.models import NewsNarration
from notifications.models import Notification

from .conftest import share_url, token_of

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


def test_seed_example_several_invitees_several_styles_one_narration_per_style(auth_client, article, user):
    response = auth_client.post(
        share_url(article.pk),
        {"message": "Thought of you.",
         "invitations": [{"email": "sam@example.com", "conversation_style": "siblings"},
                         {"email": "mum@example.com", "conversation_style": "child_to_parent"},
                         {"phone": "+14155550100", "conversation_style": "siblings"},
                         {"email": "boss@example.com", "conversation_style": "business", "locale": "fr"}]},
        format="json",
    )
    assert response.status_code == 201, response.content
    data = response.json()
    assert len(data["invitations"]) == 4
    for item in data["invitations"]:
        assert item["invitation_type"] == "news_feed" and item["content_type"] == "news_article"
        assert item["content_id"] == str(article.pk)
        assert item["content_metadata"]["title"] == article.title
        assert item["content_metadata"]["category"] == "local"
    assert {n["conversation_style"] for n in data["narrations"]} == {"siblings", "child_to_parent", "business"}
    assert NewsNarration.objects.filter(article=article).count() == 3
    assert StoryNarration.objects.count() == 0
    by_style = {n["conversation_style"]: n["id"] for n in data["narrations"]}
    assert {i["email"] or i["phone"]: i["narration_id"] for i in data["invitations"]} == {
        "sam@example.com": by_style["siblings"], "+14155550100": by_style["siblings"],
        "mum@example.com": by_style["child_to_parent"], "boss@example.com": by_style["business"]}

    # Pre-generated (inline here): the summary between the style's greeting and sign-off.
    siblings = NewsNarration.objects.get(pk=by_style["siblings"])
    assert siblings.status == NarrationStatus.READY
    texts = [s["text"] for s in siblings.segments]
    style = get_style("siblings")
    assert texts[0].startswith(style.salutation_anonymous) and user.get_display_name() in texts[0]
    assert "night-bus line" in " ".join(texts[1:-1])
    assert texts[-1] == style.farewell()

    # One news.invitation notification per invitee; the inviter's history records the sends.
    invitations = StoryInvitation.objects.filter(content_type="news_article")
    assert invitations.count() == 4 and all(i.story_id is None for i in invitations)
    assert Notification.objects.filter(pk__in=invitations.values("notification_id")).count() == 4
    assert set(Notification.objects.filter(pk__in=invitations.values("notification_id"))
               .values_list("event_type", flat=True)) == {"news.invitation"}
    assert InvitationHistory.objects.filter(action="sent", invitation__content_type="news_article").count() == 4

    # Sharing again with one of them: skipped, not invited twice.
    again = auth_client.post(share_url(article.pk), {"invitations": [{"email": "SAM@example.com", "conversation_style": "jovial"}]},
                             format="json")
    assert again.status_code == 201 and again.json()["skipped"][0]["reason"] == "already_pending"


def test_by_token_landing_and_accept_serve_the_news_narration(api_client, auth_client, client, article):
    sent = auth_client.post(
        share_url(article.pk),
        {"invitations": [{"email": "sam@example.com", "conversation_style": "playful"}]},
        format="json",
    ).json()["invitations"][0]
    token = token_of(sent)
    public = api_client.get(f"/api/v1/invitations/by-token/{token}/").json()
    assert public["invitation_type"] == "news_feed" and public["story"] is None
    assert public["content"]["title"] == article.title and public["content"]["summary"] == article.summary
    assert public["narration"]["status"] == "ready"
    assert public["narration"]["segments"][0]["text"].startswith(get_style("playful").salutation_anonymous)

    page = client.get(f"/i/{token}")
    assert page.status_code == 200
    html = page.content.decode()
    assert article.title in html and "night-bus line" in html and 'id="news-category"' in html
    assert "https://news.example/night-bus" in html and token not in html.split("player-config")[0]

    accepted = api_client.post(f"/api/v1/invitations/by-token/{token}/accept/").json()
    assert accepted["status"] == "accepted" and accepted["content_type"] == "news_article"
    assert accepted["narration"]["id"] == sent["narration_id"]
    invitation = StoryInvitation.objects.get(pk=sent["id"])
    assert invitation.status == InvitationStatus.ACCEPTED
    # The inviter hears of it.
    assert Notification.objects.filter(event_type="story.invitation_accepted", resource_id=str(invitation.pk)).exists()

    # The inviter's list answer carries the content fields too; style changes move to another row.
    changed = auth_client.patch(f"/api/v1/invitations/{sent['id']}/", {"conversation_style": "business"}, format="json")
    assert changed.status_code == 409  # accepted: too late


def test_style_change_moves_to_the_style_row(auth_client, api_client, article, settings):
    sent = auth_client.post(
        share_url(article.pk),
        {"invitations": [{"email": "a@example.com", "conversation_style": "jovial"}]}, format="json",
    ).json()["invitations"][0]
    changed = auth_client.patch(f"/api/v1/invitations/{sent['id']}/", {"conversation_style": "respectful"}, format="json")
    assert changed.status_code == 200, changed.content
    assert changed.json()["conversation_style"] == "respectful" and changed.json()["content_type"] == "news_article"
    assert set(NewsNarration.objects.filter(article=article).values_list("conversation_style", flat=True)) == {
        "jovial", "respectful"}
    public = api_client.get(f"/api/v1/invitations/by-token/{token_of(sent)}/").json()
    assert public["narration"]["conversation_style"] == "respectful"


def test_bad_items_are_all_or_nothing(auth_client, article):
    response = auth_client.post(
        share_url(article.pk),
        {"invitations": [{"email": "ok@example.com", "conversation_style": "jovial"},
                         {"email": "nope", "conversation_style": "jovial"},
                         {"email": "c@example.com", "conversation_style": "grumpy"},
                         {"email": "d@example.com", "conversation_style": "jovial", "character_id": 1}]},
        format="json",
    )
    assert response.status_code == 400
    errors = response.json()["invitations"]
    assert set(errors) == {"1", "2"}
    assert StoryInvitation.objects.count() == 0 and NewsNarration.objects.count() == 0
    response = auth_client.post(
        share_url(article.pk),
        {"invitations": [{"email": "d@example.com", "conversation_style": "jovial", "character_id": 1}]}, format="json",
    )
    assert response.status_code == 400 and "character_id" in response.json()["invitations"]["0"]
    assert auth_client.post(share_url(article.pk), {"invitations": []}, format="json").status_code == 400
    assert auth_client.post(share_url(article.pk), {"invitations": "x"}, format="json").status_code == 400
    assert StoryInvitation.objects.count() == 0
