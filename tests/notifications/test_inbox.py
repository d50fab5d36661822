"""In-app inbox API: listing, counts, state changes, scoping and cursor pagination."""
from __future__ import annotations

import json

import pytest

from notifications.enums import AuditAction, Channel, DeliveryStatus
from notifications.models import Notification, NotificationAuditLog
from tests.factories import MembershipFactory, UserFactory

from .test_delivery_support import inbox_item, notification_with_deliveries

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

API = "/api/v1/notifications/"


def test_list_shows_only_the_callers_in_app_notifications(auth_client, user, organization, other_user):
    mine = inbox_item(organization=organization, recipient=user)
    # Not delivered in-app yet, or email only: not in the inbox.
    notification_with_deliveries(organization=organization, recipient=user, channels=(Channel.IN_APP,))
    notification_with_deliveries(organization=organization, recipient=user, channels=(Channel.EMAIL,),
                                 delivery_status=DeliveryStatus.SENT)
    theirs = inbox_item(organization=organization, recipient=other_user)

    response = auth_client.get(API)
    assert response.status_code == 200
    ids = [item["id"] for item in response.data["results"]]
    assert ids == [mine.pk]
    item = response.data["results"][0]
    assert item["is_read"] is False and item["actor"]["name"] == "Alice" and item["resource"]["id"] == "T-1"
    assert theirs.pk not in ids


def test_unread_count_read_unread_archive_and_acknowledge(auth_client, user, organization):
    first = inbox_item(organization=organization, recipient=user)
    second = inbox_item(organization=organization, recipient=user)
    assert auth_client.get(API + "unread-count/").data == {"count": 2}

    response = auth_client.post(f"{API}{first.pk}/read/")
    assert response.status_code == 200 and response.data["is_read"] is True
    assert auth_client.get(API + "unread-count/").data == {"count": 1}
    assert [i["id"] for i in auth_client.get(API + "?status=read").data["results"]] == [first.pk]
    assert [i["id"] for i in auth_client.get(API + "?status=unread").data["results"]] == [second.pk]

    assert auth_client.post(f"{API}{first.pk}/unread/").data["read_at"] is None
    assert auth_client.get(API + "unread-count/").data == {"count": 2}

    assert auth_client.post(f"{API}{second.pk}/archive/").status_code == 200
    assert [i["id"] for i in auth_client.get(API + "?status=archived").data["results"]] == [second.pk]
    assert [i["id"] for i in auth_client.get(API).data["results"]] == [first.pk]
    assert auth_client.get(API + "unread-count/").data == {"count": 1}

    response = auth_client.post(f"{API}{first.pk}/acknowledge/")
    assert response.status_code == 200
    first.refresh_from_db()
    assert first.acknowledged_at is not None and first.read_at is not None
    actions = set(NotificationAuditLog.objects.filter(notification__in=[first, second]).values_list("action", flat=True))
    assert {AuditAction.READ, AuditAction.ARCHIVED, AuditAction.ACKNOWLEDGED} <= actions
    # Acknowledging twice keeps the first time.
    acknowledged_at = first.acknowledged_at
    auth_client.post(f"{API}{first.pk}/acknowledge/")
    first.refresh_from_db()
    assert first.acknowledged_at == acknowledged_at


def test_read_all_marks_only_the_callers_unread(auth_client, user, organization, other_user):
    for _ in range(3):
        inbox_item(organization=organization, recipient=user)
    theirs = inbox_item(organization=organization, recipient=other_user)
    response = auth_client.post(API + "read-all/")
    assert response.status_code == 200 and response.data["updated"] == 3
    assert auth_client.get(API + "unread-count/").data == {"count": 0}
    theirs.refresh_from_db()
    assert theirs.read_at is None


@pytest.mark.parametrize("action", ["read", "unread", "archive", "acknowledge"])
def test_someone_elses_notification_is_404(auth_client, organization, other_user, action):
    theirs = inbox_item(organization=organization, recipient=other_user)
    assert auth_client.post(f"{API}{theirs.pk}/{action}/").status_code == 404
    assert auth_client.post(f"{API}999999999/{action}/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.read_at is None and theirs.archived_at is None and theirs.acknowledged_at is None


def test_bad_status_is_400_and_api_keys_have_no_inbox(auth_client, key_client, api_client):
    response = auth_client.get(API + "?status=deleted")
    assert response.status_code == 400 and "status" in response.data
    assert key_client.get(API).status_code == 403
    assert key_client.get(API + "unread-count/").status_code == 403
    assert api_client.get(API).status_code in (401, 403)


def test_cursor_pagination_walks_every_item_once(auth_client, user, organization, django_assert_max_num_queries):
    created = [inbox_item(organization=organization, recipient=user).pk for _ in range(25)]
    # Same created_at for several rows must not lose or repeat any of them.
    Notification.objects.filter(pk__in=created[:10]).update(created_at=Notification.objects.get(pk=created[0]).created_at)
    seen: list[int] = []
    url = API + "?page_size=7"
    pages = 0
    while url:
        with django_assert_max_num_queries(3):
            response = auth_client.get(url)
        assert response.status_code == 200
        seen += [item["id"] for item in response.data["results"]]
        url = response.data["next"]
        pages += 1
    assert pages == 4
    assert sorted(seen) == sorted(created) and len(seen) == len(set(seen))


def test_multi_org_user_sees_all_own_notifications(auth_client, user, organization):
    other_org_membership = MembershipFactory(user=user)
    elsewhere = inbox_item(organization=other_org_membership.organization, recipient=user)
    here = inbox_item(organization=organization, recipient=user)
    # A stranger's item in that other organization stays out of the caller's inbox.
    stranger = MembershipFactory(user=UserFactory(), organization=other_org_membership.organization).user
    theirs = inbox_item(organization=other_org_membership.organization, recipient=stranger)
    ids = {i["id"] for i in auth_client.get(API).data["results"]}
    assert ids == {elsewhere.pk, here.pk}
    assert theirs.pk not in ids


def test_inbox_page_bell_and_staff_outbox(client, user, organization, settings, tmp_path):
    from django.core.mail import EmailMultiAlternatives, get_connection

    from providers.models import ProviderOutbox

    assert client.get("/inbox/").status_code == 302  # sign in first
    client.force_login(user)
    page = client.get("/inbox/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="inbox-list"' in html and 'id="notification-bell"' in html and "js/notifications.js" in html
    assert client.get("/outbox/").status_code == 404  # superusers only (or staff with DEBUG)

    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path / "outbox")
    message = EmailMultiAlternatives("Hello <there>", "Plain body: https://example.com/i/abc", "from@example.com",
                                     ["to@example.com"], connection=get_connection())
    message.attach_alternative('<p>Hi</p><script>alert(1)</script>', "text/html")
    message.send()
    EmailMultiAlternatives("Escaladé", "L'incident « Phare » vous a été escaladé.", "from@example.com", ["fr@example.com"],
                           connection=get_connection()).send()
    ProviderOutbox.objects.create(channel=Channel.SMS, provider_code="log_sms", to="+14155550100", text="Your code")
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    assert client.get("/outbox/").status_code == 404  # staff alone, DEBUG off: still none
    user.is_superuser = True
    user.save(update_fields=["is_superuser"])
    outbox = client.get("/outbox/")
    assert outbox.status_code == 200
    body = outbox.content.decode()
    assert "Hello &lt;there&gt;" in body and "Plain body" in body and "to@example.com" in body
    assert "+14155550100" in body and "Your code" in body
    assert "L&#x27;incident « Phare » vous a été escaladé." in body and "\ufffd" not in body  # UTF-8 bodies read as such
    assert '<a href="https://example.com/i/abc" rel="nofollow">https://example.com/i/abc</a>' in body  # clickable
    # the HTML part is shown in a sandboxed frame (no scripts), escaped into its srcdoc
    assert '<iframe sandbox title="HTML part of Hello &lt;there&gt;" srcdoc="&lt;p&gt;Hi&lt;/p&gt;&lt;script&gt;' in body
    assert "<script>alert(1)" not in body


def test_openapi_schema_describes_the_inbox_calls(auth_client):
    schema = auth_client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    listing = schema["paths"]["/api/v1/notifications/"]["get"]
    assert {p["name"] for p in listing["parameters"]} >= {"status", "cursor"}
    assert "InboxNotification" in json.dumps(listing["responses"]["200"])
    read = schema["paths"]["/api/v1/notifications/{notification_id}/read/"]["post"]
    assert "InboxNotification" in json.dumps(read["responses"]["200"])
