"""The dashboard: invitation history and delivery analytics of the signed-in person only, in aggregate queries."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import User
from invitations.models import HistoryAction, InvitationHistory, StoryInvitation
from invitations.services import invitation_decline, invitations_send
from narrations.services import story_create
from notifications.enums import DeliveryStatus
from notifications.models import NotificationDelivery
from people.selectors import user_delivery_analytics

from ..factories import UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


@pytest.fixture(autouse=True)
def _inline(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.NARRATION_ESPEAK_LIBRARY = "/nonexistent/libespeak-ng.so"


def _send(user, title, people, capture):
    story = story_create(owner=user, title=title, content="Once upon a time, a lamp.", characters=[])
    with capture(execute=True):
        invitations_send(story=story, inviter=user, items=people)
    return story


@pytest.fixture
def world(user, other_user, django_capture_on_commit_callbacks):
    """The user sent 3 invitations (email, email, sms); the other user sent 2, one to the user's address."""
    user.email_verified_at = timezone.now()
    user.save()
    mine = _send(user, "The Lighthouse", [
        {"email": "ada@example.com", "conversation_style": "jovial"},
        {"email": "bob@example.com", "conversation_style": "respectful"},
        {"phone": "+14155550100", "conversation_style": "playful"},
    ], django_capture_on_commit_callbacks)
    theirs = _send(other_user, "Secret Garden", [
        {"email": user.email, "conversation_style": "siblings"},
        {"email": "zed@example.com", "conversation_style": "siblings"},
    ], django_capture_on_commit_callbacks)
    bob = StoryInvitation.objects.get(invitee_email="bob@example.com")
    invitation_decline(invitation_id=bob.pk)
    return {"mine": mine, "theirs": theirs}


def test_summary_counts_the_callers_history_only(auth_client, world):
    body = auth_client.get("/api/v1/me/invitations/summary/").json()
    assert {k: body[k] for k in ("invitations_sent", "invitations_received", "invitations_accepted", "invitations_declined")} == {
        "invitations_sent": 3, "invitations_received": 1, "invitations_accepted": 0, "invitations_declined": 1,
    }
    assert body["last_activity"] is not None


def test_history_is_cursor_paginated_filtered_and_never_shows_anyone_elses(auth_client, world):
    first = auth_client.get("/api/v1/me/invitations/history/?page_size=2").json()
    assert len(first["results"]) == 2 and first["next"]
    entries, page = list(first["results"]), first
    while page["next"]:
        page = auth_client.get(page["next"]).json()
        entries += page["results"]
    assert sorted(e["action"] for e in entries) == ["declined", "received", "sent", "sent", "sent"]
    text = str(entries)
    assert "zed@example.com" not in text  # another inviter's invitee
    received = next(e for e in entries if e["action"] == "received")
    assert received["response_data"]["story_title"] == "Secret Garden" and "invitee" not in received["response_data"]

    declined = auth_client.get("/api/v1/me/invitations/history/?action=declined").json()["results"]
    assert [e["response_data"]["invitee"] for e in declined] == ["bob@example.com"]
    assert [e["action"] for e in auth_client.get("/api/v1/me/invitations/history/?q=ADA@").json()["results"]] == ["sent"]
    assert auth_client.get("/api/v1/me/invitations/history/?action=hacked").status_code == 400
    assert auth_client.get("/api/v1/me/invitations/history/?q=" + "x" * 201).status_code == 400


def test_received_needs_a_confirmed_address(auth_client, user, world):
    user.email_verified_at = None
    user.save()
    assert auth_client.get("/api/v1/me/invitations/summary/").json()["invitations_received"] == 0


def test_signing_up_later_brings_earlier_invitations_into_the_history(client, world):
    client.post("/accounts/signup/", {"username": "zed", "email": "zed@example.com", "password1": "long-enough-pass-1",
                                      "password2": "long-enough-pass-1"})
    zed = User.objects.get(username="zed")
    row = InvitationHistory.objects.get(user=zed, action=HistoryAction.RECEIVED)
    assert row.created_at == row.invitation.created_at


def test_delivery_analytics_per_channel_and_day_in_two_queries(phone_consent, auth_client, user, world, django_assert_num_queries):
    deliveries = NotificationDelivery.objects.filter(notification__in=StoryInvitation.objects.filter(inviter=user).values("notification"))
    email = list(deliveries.filter(channel="EMAIL").order_by("pk"))
    NotificationDelivery.objects.filter(pk=email[0].pk).update(status=DeliveryStatus.DELIVERED)
    NotificationDelivery.objects.filter(pk=email[1].pk).update(status=DeliveryStatus.BOUNCED,
                                                                 created_at=timezone.now() - timedelta(days=2))

    with django_assert_num_queries(2):
        data = user_delivery_analytics(user=user)
    by_channel = {r["delivery_type"]: r for r in data["by_channel"]}
    assert by_channel["email"] == {"delivery_type": "email", "total_sent": 2, "successful_deliveries": 1,
                                   "failed_deliveries": 1, "success_rate": 50.0}
    assert by_channel["sms"]["total_sent"] == 1
    assert sum(r["total_sent"] for r in data["daily"]) == 3 and len({r["date"] for r in data["daily"]}) == 2

    body = auth_client.get("/api/v1/me/delivery-analytics/").json()
    assert body["by_channel"] == data["by_channel"]
    assert auth_client.get("/api/v1/me/delivery-analytics/?days=0").status_code == 400
    assert auth_client.get("/api/v1/me/delivery-analytics/?days=abc").status_code == 400


def test_another_user_sees_none_of_it(api_client, world):
    stranger = UserFactory()
    api_client.force_authenticate(stranger)
    assert api_client.get("/api/v1/me/invitations/summary/").json()["invitations_sent"] == 0
    assert api_client.get("/api/v1/me/invitations/history/").json()["results"] == []
    assert api_client.get("/api/v1/me/delivery-analytics/").json()["by_channel"] == []


def test_dashboard_page_draws_the_charts_and_lists_with_search(client, user, world):
    client.force_login(user)
    html = client.get("/me/").content.decode()
    assert 'id="chart-channels"' in html and 'data-channel="email"' in html and 'id="chart-daily"' in html
    assert 'data-tile="sent"><strong>3</strong>' in html
    assert "bob@example.com" in html and "zed@example.com" not in html
    filtered = client.get("/me/?action=declined&q=bob").content.decode()
    assert "bob@example.com" in filtered and "ada@example.com" not in filtered


def test_key_callers_are_refused(key_client):
    for path in ("summary/", "history/"):
        assert key_client.get(f"/api/v1/me/invitations/{path}").status_code == 403
    assert key_client.get("/api/v1/me/delivery-analytics/").status_code == 403


def _texted_code(phone: str) -> str:
    from providers.models import ProviderOutbox

    sms = ProviderOutbox.objects.filter(channel="SMS", to=phone).latest("pk")
    return re.search(r"\b(\d{6})\b", sms.text).group(1)


def test_received_matches_the_confirmed_phone_as_well_as_the_email(client, user, other_user, django_capture_on_commit_callbacks):
    user.email_verified_at = timezone.now()
    user.phone = "+14155550123"
    user.save()
    _send(other_user, "By Text", [{"phone": "+14155550123", "conversation_style": "jovial"}], django_capture_on_commit_callbacks)
    client.force_login(user)
    summary = lambda: client.get("/api/v1/me/invitations/summary/").json()["invitations_received"]  # noqa: E731
    assert summary() == 0  # a number typed in a profile proves nothing yet

    page = client.get("/me/profile/").content.decode()
    assert "not confirmed" in page and 'id="phone-code-send"' in page
    sent = client.post("/me/phone/code/")
    assert sent.status_code == 302 and sent["Location"] == "/me/profile/"  # where the message shows
    assert 'id="phone-confirm-form"' in client.get("/me/profile/").content.decode()
    code = _texted_code("+14155550123")
    wrong = "000000" if code != "000000" else "111111"
    response = client.post("/me/phone/confirm/", {"code": wrong}, follow=True)
    assert "not the code we sent" in response.content.decode()
    user.refresh_from_db()
    assert user.phone_verified_at is None and summary() == 0

    response = client.post("/me/phone/confirm/", {"code": code}, follow=True)
    assert "Your phone number is confirmed." in response.content.decode()
    user.refresh_from_db()
    assert user.phone_verified_at is not None
    assert summary() == 1  # the invitation sent before, brought in
    history = client.get("/api/v1/me/invitations/history/?action=received").json()["results"]
    assert [e["response_data"]["story_title"] for e in history] == ["By Text"]
    assert client.post("/me/phone/confirm/", {"code": code}).status_code == 302  # used up: no second confirmation
    assert "By Text" in client.get("/me/?action=received").content.decode()

    # sent after the confirmation: recorded at once; one row even when email and phone both match
    _send(other_user, "Both", [{"email": user.email, "phone": "+14155550123", "conversation_style": "jovial"}],
          django_capture_on_commit_callbacks)
    assert summary() == 2

    # a new number is not confirmed: what the old one received is no longer shown
    client.post("/me/profile/", {"display_name": "", "phone": "+14155550124", "locale": "en", "timezone": "UTC"})
    user.refresh_from_db()
    assert user.phone_verified_at is None
    assert summary() == 1  # the one to the confirmed email stays


def test_someone_typing_anothers_number_sees_none_of_their_invitations(client, other_user, django_capture_on_commit_callbacks):
    owner = UserFactory(username="owner", phone="+14155550155", phone_verified_at=timezone.now())
    _send(other_user, "Private", [{"phone": "+14155550155", "conversation_style": "jovial"}], django_capture_on_commit_callbacks)
    squatter = UserFactory(username="squatter", phone="+14155550155")
    client.force_login(squatter)
    assert client.get("/api/v1/me/invitations/summary/").json()["invitations_received"] == 0
    client.force_login(owner)
    assert client.get("/api/v1/me/invitations/summary/").json()["invitations_received"] == 1
    # a wrong code five times uses the code up
    client.force_login(squatter)
    client.post("/me/phone/code/")
    for _ in range(5):
        client.post("/me/phone/confirm/", {"code": "abcdef"})
    response = client.post("/me/phone/confirm/", {"code": _texted_code("+14155550155")}, follow=True)
    assert "Too many wrong codes" in response.content.decode()
    squatter.refresh_from_db()
    assert squatter.phone_verified_at is None


def test_chart_axes_count_in_whole_numbers():
    from datetime import date

    from people.charts import daily_series

    for peak in (1, 3, 5, 7, 13, 33, 250):
        svg = daily_series([{"date": "2026-11-02", "delivery_type": "email", "total_sent": peak}],
                           since=date(2026, 11, 1), until=date(2026, 11, 30))
        ticks = re.findall(r'<text class="tick"[^>]*>([^<]+)</text>', svg)
        assert len(ticks) == 5 and all(float(t).is_integer() for t in ticks), (peak, ticks)
