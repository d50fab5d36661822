"""Roleplay templates and role invitations (seed 000 "Roleplay Character Invitations")."""
from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from invitations.models import InvitationStatus, StoryInvitation
from notifications.models import Notification
from roleplay.models import RoleplayTemplate

from ..factories import MembershipFactory, OrganizationFactory, UserFactory
from .conftest import invite_url, roles_of, token_of

pytestmark = [pytest.mark.postgres]


@pytest.mark.django_db
def test_create_template_by_api_derives_total_characters(auth_client, story):
    mara, captain = story.characters.order_by("pk")
    response = auth_client.post(f"/api/v1/stories/{story.pk}/roleplay-templates/", {
        "template_name": "Storm", "difficulty_level": "advanced", "is_public": True,
        "roles": [{"character_id": mara.pk, "role_name": "Mara", "required_voice_emotions": ["Fear", "fear", "hope"]},
                  {"character_id": captain.pk, "role_name": "Captain", "is_protagonist": True}],
    }, format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["total_characters"] == 2 and data["difficulty_level"] == "advanced" and data["is_public"] is True
    assert [r["role_name"] for r in data["roles"]] == ["Mara", "Captain"]
    assert data["roles"][0]["required_voice_emotions"] == ["fear", "hope"]
    assert auth_client.get(f"/api/v1/roleplay-templates/{data['id']}/").json()["id"] == data["id"]
    assert [t["id"] for t in auth_client.get("/api/v1/roleplay-templates/?public=true").json()] == [data["id"]]


@pytest.mark.django_db
@pytest.mark.parametrize("body, field", [
    ({"difficulty_level": "beginner", "roles": [{"character_id": 0, "role_name": "x"}]}, "template_name"),
    ({"template_name": "t", "difficulty_level": "expert", "roles": []}, "difficulty_level"),
    ({"template_name": "t", "difficulty_level": "beginner", "roles": []}, "roles"),
    ({"template_name": "t", "difficulty_level": "beginner", "roles": [{"character_id": 999999, "role_name": "x"}]}, "character_id"),
    ({"template_name": "t", "difficulty_level": "beginner", "estimated_duration_minutes": "ten",
      "roles": [{"character_id": "MARA", "role_name": "x"}]}, "estimated_duration_minutes"),
])
def test_bad_template_is_a_400_and_saves_nothing(auth_client, story, body, field):
    response = auth_client.post(f"/api/v1/stories/{story.pk}/roleplay-templates/", body, format="json")
    assert response.status_code == 400 and field in str(response.json())
    assert RoleplayTemplate.objects.count() == 0


@pytest.mark.django_db
def test_a_character_of_another_story_or_twice_is_refused(auth_client, story, other_story):
    mara = story.characters.get(name="Mara")
    zed = other_story.characters.get()
    response = auth_client.post(f"/api/v1/stories/{story.pk}/roleplay-templates/", {
        "template_name": "t", "difficulty_level": "beginner",
        "roles": [{"character_id": zed.pk, "role_name": "z"}, {"character_id": mara.pk, "role_name": "a"},
                  {"character_id": mara.pk, "role_name": "b"}]}, format="json")
    assert response.status_code == 400
    assert set(response.json()["roles"]) == {"0", "2"}


@pytest.mark.django_db
def test_other_people_cannot_reach_a_private_template_or_a_story_they_do_not_own(api_client, story, template):
    stranger = UserFactory()
    MembershipFactory(user=stranger, organization=OrganizationFactory())
    api_client.force_authenticate(stranger)
    assert api_client.get(f"/api/v1/roleplay-templates/{template.pk}/").status_code == 404
    assert api_client.get("/api/v1/roleplay-templates/").json() == []
    assert api_client.post(f"/api/v1/stories/{story.pk}/roleplay-templates/", {
        "template_name": "t", "difficulty_level": "beginner", "roles": []}, format="json").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_seed_example_roles_given_once_and_the_cast_fills(auth_client, api_client, client, story, template, user):
    roles = roles_of(template)
    response = auth_client.post(invite_url(story.pk), {"invitations": [
        {"email": "ada@example.com", "conversation_style": "close_friends", "roleplay_character_role_id": roles["Mara"]},
        {"email": "bob@example.com", "conversation_style": "jovial", "roleplay_character_role_id": roles["Captain"]},
        {"email": "cy@example.com", "conversation_style": "jovial"},
    ]}, format="json")
    assert response.status_code == 201, response.content
    sent = {i["email"]: i for i in response.json()["invitations"]}
    assert sent["ada@example.com"]["invitation_type"] == "roleplay_character"
    assert sent["ada@example.com"]["content_type"] == "story"
    assert sent["ada@example.com"]["content_metadata"]["role_name"] == "Mara the keeper"
    assert sent["ada@example.com"]["character_id"] == story.characters.get(name="Mara").pk
    assert sent["cy@example.com"]["invitation_type"] == "story_collaboration"

    # A role already held → 400 naming the item; nothing saved.
    before = StoryInvitation.objects.count()
    again = auth_client.post(invite_url(story.pk), {"invitations": [
        {"email": "dee@example.com", "conversation_style": "jovial"},
        {"email": "eve@example.com", "conversation_style": "jovial", "roleplay_character_role_id": roles["Mara"]},
    ]}, format="json")
    assert again.status_code == 400
    assert "already given" in str(again.json()["invitations"]["1"]["roleplay_character_role_id"])
    assert "0" not in again.json()["invitations"]
    twice = auth_client.post(invite_url(story.pk), {"invitations": [
        {"email": "f@example.com", "conversation_style": "jovial", "roleplay_character_role_id": 10**9},
    ]}, format="json")
    assert twice.status_code == 400 and "not part of a roleplay" in str(twice.json())
    assert StoryInvitation.objects.count() == before

    # The invitee's page shows their role and highlights their character's lines.
    token = token_of(sent["ada@example.com"])
    html = client.get(f"/i/{token}").content.decode()
    assert "Mara the keeper" in html and 'id="roleplay-role"' in html and '"highlightSpeaker": "Mara"' in html
    public = api_client.get(f"/api/v1/invitations/by-token/{token}/").json()
    assert public["invitation_type"] == "roleplay_character" and public["content_metadata"]["character_name"] == "Mara"

    # Accepting fills the role; the last role completes the cast and the inviter hears of it once.
    assert api_client.post(f"/api/v1/invitations/by-token/{token}/accept/").status_code == 200
    assert not Notification.objects.filter(event_type="roleplay.cast_complete").exists()
    assert api_client.post(f"/api/v1/invitations/by-token/{token_of(sent['bob@example.com'])}/accept/").status_code == 200
    template.refresh_from_db()
    assert template.cast_completed_at is not None
    assert all(role.filled_at for role in template.roles.all())
    done = Notification.objects.filter(event_type="roleplay.cast_complete")
    assert done.count() == 1 and done.get().recipient_id == user.pk
    detail = auth_client.get(f"/api/v1/roleplay-templates/{template.pk}/").json()
    assert detail["cast_complete"] is True and all(r["filled"] for r in detail["roles"])


@pytest.mark.django_db(transaction=True)
def test_the_database_refuses_a_second_holder_of_a_role(auth_client, story, template):
    roles = roles_of(template)
    auth_client.post(invite_url(story.pk), {"invitations": [
        {"email": "ada@example.com", "conversation_style": "jovial", "roleplay_character_role_id": roles["Mara"]}]},
        format="json")
    holder = StoryInvitation.objects.get(invitee_email="ada@example.com")
    holder.pk = None
    holder.invitee_email = "other@example.com"
    holder.token_hash = "0" * 64
    with pytest.raises(IntegrityError), transaction.atomic():
        holder.save()
    # Once the first is declined the role is free again.
    StoryInvitation.objects.filter(invitee_email="ada@example.com").update(status=InvitationStatus.DECLINED)
    response = auth_client.post(invite_url(story.pk), {"invitations": [
        {"email": "bea@example.com", "conversation_style": "jovial", "roleplay_character_role_id": roles["Mara"]}]},
        format="json")
    assert response.status_code == 201, response.content
