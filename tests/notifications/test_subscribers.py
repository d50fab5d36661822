"""Subscribers: REST upsert/read/delete by external id, bulk upsert, events naming them, cancel."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Membership, MembershipRole
from accounts.services import api_key_create
from notifications.engine.delivery import deliver_batch
from notifications.engine.audit import AuditActor
from notifications.engine.subscribers import subscribers_clean, subscribers_upsert
from notifications.enums import AuditAction, Channel, DeliveryStatus, NotificationStatus
from notifications.models import Notification, NotificationAuditLog, NotificationDelivery, QuietHours
from tests.factories import OrganizationFactory

from .intake_support import EVENT, intake_event_type, member

pytestmark = [pytest.mark.postgres]

User = get_user_model()


@pytest.fixture
def event_type(db):
    return intake_event_type(allowed_channels=[Channel.IN_APP, Channel.EMAIL, Channel.SMS])


def _url(external_id: str) -> str:
    return f"/api/v1/admin/subscribers/{external_id}/"


def _key_client(organization) -> APIClient:
    _, raw = api_key_create(organization=organization, name="app")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    return client


def _event(client, **body):
    return client.post("/api/v1/events/", {"type": EVENT, **body}, format="json")


# --- upsert, read, permissions -----------------------------------------------------------------------


def test_put_creates_then_updates_and_get_reads(key_client, organization):
    created = key_client.put(_url("u-42"), {"email": " Ada@Example.com ", "phone": "+1 415 555 0100", "display_name": "Ada",
                                            "locale": "fr-CA", "timezone": "Europe/Paris", "data": {"plan": "pro"}}, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body == {"id": body["id"], "external_id": "u-42", "email": "ada@example.com", "phone": "+14155550100",
                    "display_name": "Ada", "locale": "fr", "timezone": "Europe/Paris", "data": {"plan": "pro"}}
    user = User.objects.get(pk=body["id"])
    assert not user.has_usable_password() and user.is_active
    assert Membership.objects.get(user=user).organization == organization

    updated = key_client.put(_url("u-42"), {"phone": "", "display_name": "Ada L."}, format="json")
    assert updated.status_code == 200
    assert updated.json()["phone"] == "" and updated.json()["email"] == "ada@example.com"  # absent fields are kept
    assert key_client.get(_url("u-42")).json()["display_name"] == "Ada L."
    actions = list(NotificationAuditLog.objects.filter(user_id=body["id"]).values_list("action", "actor_type"))
    assert actions == [(AuditAction.SUBSCRIBER_UPSERTED, "API_KEY")] * 2


def test_org_admin_may_manage_subscribers_a_plain_member_may_not(organization, user):
    admin = APIClient()
    admin.force_authenticate(user)  # the organization's owner
    assert admin.put(_url("x-1"), {"email": "x1@example.com"}, format="json").status_code == 201
    plain = APIClient()
    plain.force_authenticate(member(organization, role=MembershipRole.MEMBER))
    assert plain.get(_url("x-1")).status_code == 403
    assert plain.put(_url("x-2"), {"email": "x2@example.com"}, format="json").status_code == 403
    assert APIClient().get(_url("x-1")).status_code in (401, 403)
    assert not Membership.objects.filter(external_id="x-2").exists()


@pytest.mark.parametrize("body, field", [
    ({"email": "not-an-email"}, "email"),
    ({"phone": "0155501234"}, "phone"),
    ({"phone": "+1 555"}, "phone"),
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"locale": "xx"}, "locale"),
    ({"data": ["a"]}, "data"),
    ({"email": 42}, "email"),
])
def test_bad_input_is_a_400_naming_the_field_and_saves_nothing(key_client, body, field):
    response = key_client.put(_url("bad-1"), body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not Membership.objects.filter(external_id="bad-1").exists()


def test_bad_external_ids_and_bodies(key_client):
    assert key_client.put(_url("x" * 256), {}, format="json").status_code == 400
    assert key_client.put(_url(" padded"), {}, format="json").status_code == 400
    assert key_client.put(_url("ok"), ["not", "an", "object"], format="json").status_code == 400
    for path in (_url("a%00b"), _url("a%00b") + "preferences/"):
        assert key_client.get(path).status_code == 400
    assert key_client.delete(_url("a%00b")).status_code == 400
    assert key_client.put(_url("a%00b"), {}, format="json").status_code == 400
    assert key_client.get(_url("nobody")).status_code == 404
    assert key_client.delete(_url("nobody")).status_code == 404


def test_external_ids_are_per_organization_and_other_organizations_get_404(key_client, organization):
    mine = key_client.put(_url("shared-id"), {"email": "mine@example.com"}, format="json").json()
    other = OrganizationFactory()
    theirs_client = _key_client(other)
    assert theirs_client.get(_url("shared-id")).status_code == 404
    assert theirs_client.delete(_url("shared-id")).status_code == 404
    assert theirs_client.put(_url("shared-id/preferences"), {}, format="json").status_code in (400, 404)
    theirs = theirs_client.put(_url("shared-id"), {"email": "theirs@example.com"}, format="json")
    assert theirs.status_code == 201 and theirs.json()["id"] != mine["id"]
    assert key_client.get(_url("shared-id")).json()["email"] == "mine@example.com"
    # Their id used as a recipient id in my organization is unknown here.
    assert _event(key_client, recipient_ids=[str(theirs.json()["id"])]).status_code == 400


def test_the_database_refuses_a_second_row_with_the_same_external_id(organization):
    from django.db import IntegrityError, transaction

    Membership.objects.create(user=member(OrganizationFactory()), organization=organization, external_id="dup")
    with pytest.raises(IntegrityError), transaction.atomic():
        Membership.objects.create(user=User.objects.create(username="again"), organization=organization, external_id="dup")


# --- bulk --------------------------------------------------------------------------------------------


def _bulk_queries(organization, items) -> tuple[int, list]:
    cleaned = subscribers_clean(items)
    with CaptureQueriesContext(connection) as ctx:
        done = subscribers_upsert(organization=organization, items=cleaned, actor=AuditActor(), source="test")
    return len(ctx.captured_queries), done


def test_bulk_upsert_of_10000_is_set_based(organization, key_client):
    small = [{"external_id": f"s-{i}", "email": f"s{i}@example.com"} for i in range(10)]
    big = [{"external_id": f"b-{i}", "email": f"b{i}@example.com", "phone": "+14155550100", "locale": "en"} for i in range(10_000)]
    q_small, _ = _bulk_queries(organization, small)
    q_big, done = _bulk_queries(organization, big)
    assert q_small == q_big <= 12
    assert {d.status for d in done} == {"created"}
    assert Membership.objects.filter(organization=organization, external_id__startswith="b-").count() == 10_000
    # Updating half of them and leaving the others unchanged costs the same fixed number of queries.
    again = [{**item, "email": f"new{i}@example.com"} if i % 2 else item for i, item in enumerate(big)]
    q_update, done = _bulk_queries(organization, again)
    assert q_update <= 12
    assert sum(d.status == "updated" for d in done) == 5_000 and sum(d.status == "unchanged" for d in done) == 5_000
    assert User.objects.get(memberships__external_id="b-1").email == "new1@example.com"

    response = key_client.post("/api/v1/admin/subscribers/bulk/", {"subscribers": small + [{"external_id": "s-new"}]},
                               format="json")
    assert response.status_code == 200
    assert (response.json()["created"], response.json()["unchanged"]) == (1, 10)


def test_bulk_reports_every_bad_item_and_saves_nothing(key_client):
    response = key_client.post("/api/v1/admin/subscribers/bulk/", {"subscribers": [
        {"external_id": "ok-1", "email": "ok@example.com"},
        {"external_id": "bad-email", "email": "nope"},
        {"email": "no-id@example.com"},
        {"external_id": "ok-1"},
    ]}, format="json")
    assert response.status_code == 400
    errors = response.json()["subscribers"]
    assert set(errors) == {"1", "2", "3"}
    assert "email" in errors["1"] and "external_id" in errors["2"] and "Duplicate" in errors["3"]["external_id"][0]
    assert not Membership.objects.filter(external_id__isnull=False).exists()
    too_many = [{"external_id": f"t{i}"} for i in range(10_001)]
    assert key_client.post("/api/v1/admin/subscribers/bulk/", {"subscribers": too_many}, format="json").status_code == 400
    assert key_client.post("/api/v1/admin/subscribers/bulk/", {"subscribers": "x"}, format="json").status_code == 400


# --- events naming subscribers ------------------------------------------------------------------------


def test_event_by_external_id_known_unknown_with_address_and_without(key_client, organization, event_type):
    known = key_client.put(_url("known"), {"email": "known@example.com"}, format="json").json()
    response = _event(key_client, recipients=[{"external_id": "known"}, {"external_id": "fresh", "email": "Fresh@Example.com",
                                                                         "timezone": "Europe/Paris"}],
                      channels=[Channel.EMAIL])
    assert response.status_code == 202, response.content
    fresh = key_client.get(_url("fresh")).json()
    assert fresh["email"] == "fresh@example.com" and fresh["timezone"] == "Europe/Paris"
    rows = {n["recipient_id"] for n in response.json()["notifications"]}
    assert rows == {str(known["id"]), str(fresh["id"])}
    addresses = set(NotificationDelivery.objects.values_list("recipient_address", flat=True))
    assert addresses == {"known@example.com", "fresh@example.com"}

    # Unknown ids without an address: a 400 naming them, and nothing of the event is kept —
    # not even the subscriber that could have been created inline.
    before = Notification.objects.count()
    response = _event(key_client, recipients=[{"external_id": "ghost-1"}, {"external_id": "new-2", "email": "n2@example.com"},
                                              {"external_id": "ghost-3"}])
    assert response.status_code == 400
    message = str(response.json())
    assert "ghost-1" in message and "ghost-3" in message and "new-2" not in message
    assert Notification.objects.count() == before
    assert not Membership.objects.filter(external_id="new-2").exists()

    assert _event(key_client, recipients=[{"external_id": "x", "email": "bad"}]).status_code == 400
    assert _event(key_client, recipients=[{"external_id": ""}]).status_code == 400


def test_same_person_by_id_and_external_id_gets_one_notification(key_client, event_type):
    sub = key_client.put(_url("once"), {"email": "once@example.com"}, format="json").json()
    response = _event(key_client, recipient_ids=[str(sub["id"])], recipients=[{"external_id": "once"}])
    assert response.status_code == 202 and len(response.json()["notifications"]) == 1


def test_event_query_count_does_not_grow_with_subscribers(organization, event_type):
    from notifications.engine.intake import event_emit

    items = [{"external_id": f"q-{i}", "email": f"q{i}@example.com"} for i in range(1000)]
    subscribers_upsert(organization=organization, items=subscribers_clean(items), actor=AuditActor())

    def emit(n: int, key: str) -> int:
        with CaptureQueriesContext(connection) as ctx:
            event_emit(organization=organization, type=EVENT, recipients=[{"external_id": f"q-{i}"} for i in range(n)],
                       channels=[Channel.EMAIL], deduplication_key=key)
        return len(ctx.captured_queries)

    emit(1, "warm")
    assert emit(10, "ten") + 1 == emit(1000, "thousand")  # over 100 recipients: the batch job INSERT
    # Inline identify of many new ones is set-based too.
    with CaptureQueriesContext(connection) as ctx:
        event_emit(organization=organization, type=EVENT, channels=[Channel.EMAIL],
                   recipients=[{"external_id": f"new-{i}", "email": f"new{i}@example.com"} for i in range(500)])
    assert len(ctx.captured_queries) <= 40
    assert Membership.objects.filter(external_id__startswith="new-").count() == 500


# --- a changed address applies to what has not been sent -----------------------------------------------


def test_changed_address_applies_to_unsent_deliveries_only(key_client, organization, event_type):
    key_client.put(_url("mover"), {"email": "old@example.com", "phone": "+14155550100"}, format="json")
    sent = _event(key_client, recipients=[{"external_id": "mover"}], channels=[Channel.EMAIL]).json()
    sent_delivery = NotificationDelivery.objects.get(notification_id=sent["notifications"][0]["id"])
    deliver_batch(delivery_ids=[sent_delivery.pk])
    later = _event(key_client, recipients=[{"external_id": "mover"}], channels=[Channel.EMAIL, Channel.SMS],
                   scheduled_for=(timezone.now() + timedelta(hours=2)).isoformat()).json()
    notification_id = later["notifications"][0]["id"]

    response = key_client.put(_url("mover"), {"email": "new@example.com", "phone": None}, format="json")
    assert response.status_code == 200
    sent_delivery.refresh_from_db()
    assert sent_delivery.recipient_address == "old@example.com" and sent_delivery.status in (DeliveryStatus.SENT, DeliveryStatus.DELIVERED)
    email = NotificationDelivery.objects.get(notification_id=notification_id, channel=Channel.EMAIL)
    sms = NotificationDelivery.objects.get(notification_id=notification_id, channel=Channel.SMS)
    assert (email.status, email.recipient_address) == (DeliveryStatus.PENDING, "new@example.com")
    assert sms.status == DeliveryStatus.SKIPPED and "phone" in sms.skip_reason
    assert Notification.objects.get(pk=notification_id).recipient_email == "new@example.com"

    # When it goes out, it goes to the new address.
    mail.outbox.clear()
    NotificationDelivery.objects.filter(pk=email.pk).update(next_retry_at=None)
    deliver_batch(delivery_ids=[email.pk])
    assert [m.to for m in mail.outbox] == [["new@example.com"]]


# --- delete ------------------------------------------------------------------------------------------


def test_delete_anonymizes_cancels_pending_and_keeps_history(key_client, organization, event_type):
    sub = key_client.put(_url("leaver"), {"email": "leaver@example.com", "phone": "+14155550100", "display_name": "Lee"},
                         format="json").json()
    done = _event(key_client, recipients=[{"external_id": "leaver"}], channels=[Channel.EMAIL]).json()["notifications"][0]["id"]
    deliver_batch(delivery_ids=list(NotificationDelivery.objects.filter(notification_id=done).values_list("pk", flat=True)))
    QuietHours.objects.create(user_id=sub["id"], organization=organization, dnd_until=timezone.now() + timedelta(hours=3))
    held = _event(key_client, recipients=[{"external_id": "leaver"}], channels=[Channel.EMAIL]).json()["notifications"][0]
    assert held["status"] == NotificationStatus.HELD

    response = key_client.delete(_url("leaver"))
    assert response.status_code == 200, response.content
    assert response.json()["deliveries_cancelled"] == 1 and response.json()["notifications_cancelled"] == [held["id"]]
    user = User.objects.get(pk=sub["id"])
    assert (user.email, user.phone, user.display_name, user.is_active) == ("", "", "", False)
    assert "leaver" not in user.username and not user.has_usable_password()
    assert not Membership.objects.filter(external_id="leaver").exists()
    assert Notification.objects.get(pk=held["id"]).status == NotificationStatus.CANCELLED
    assert NotificationDelivery.objects.get(notification_id=held["id"]).status == DeliveryStatus.CANCELLED
    # History is kept (counts add up) but holds no address any more.
    assert Notification.objects.filter(recipient_id=sub["id"]).count() == 2
    assert NotificationDelivery.objects.get(notification_id=done).status in (DeliveryStatus.SENT, DeliveryStatus.DELIVERED)
    assert not NotificationDelivery.objects.filter(notification__recipient_id=sub["id"]).exclude(recipient_address="").exists()
    assert not Notification.objects.filter(recipient_id=sub["id"]).exclude(recipient_email="").exists()
    assert NotificationAuditLog.objects.filter(action=AuditAction.SUBSCRIBER_DELETED, user_id=sub["id"]).exists()

    assert key_client.get(_url("leaver")).status_code == 404
    assert key_client.delete(_url("leaver")).status_code == 404
    assert _event(key_client, recipient_ids=[str(sub["id"])]).status_code == 400  # a deleted subscriber gets nothing
    again = key_client.put(_url("leaver"), {"email": "back@example.com"}, format="json")
    assert again.status_code == 201 and again.json()["id"] != sub["id"]


# --- REST twins of the commands -----------------------------------------------------------------------


def test_cancel_by_correlation_id_and_other_organizations_ids(key_client, organization, event_type):
    key_client.put(_url("c-1"), {"email": "c1@example.com"}, format="json")
    scheduled = (timezone.now() + timedelta(hours=1)).isoformat()
    ids = [_event(key_client, recipients=[{"external_id": "c-1"}], channels=[Channel.EMAIL], correlation_id="batch-7",
                  scheduled_for=scheduled).json()["notifications"][0]["id"] for _ in range(2)]
    other = _key_client(OrganizationFactory())
    # Another organization cancelling my ids: nothing changes.
    answer = other.post("/api/v1/admin/notifications/cancel/", {"notification_ids": ids}, format="json").json()
    assert answer["deliveries_cancelled"] == 0 and answer["not_found"] == sorted(ids)
    assert other.post("/api/v1/admin/notifications/cancel/", {"correlation_id": "batch-7"}, format="json").json()[
        "deliveries_cancelled"] == 0
    assert set(Notification.objects.filter(pk__in=ids).values_list("status", flat=True)) == {NotificationStatus.SCHEDULED}

    answer = key_client.post("/api/v1/admin/notifications/cancel/", {"correlation_id": "batch-7"}, format="json").json()
    assert answer["notifications_cancelled"] == sorted(ids) and answer["deliveries_cancelled"] == 2
    assert set(NotificationDelivery.objects.filter(notification_id__in=ids).values_list("status", flat=True)) == {"CANCELLED"}
    # Idempotent, and bad selectors are 400s.
    again = key_client.post("/api/v1/admin/notifications/cancel/", {"correlation_id": "batch-7"}, format="json").json()
    assert again["deliveries_cancelled"] == 0
    for body in ({}, {"correlation_id": "a", "deduplication_key": "b"}, {"notification_ids": ["x"]}, {"notification_ids": []}):
        assert key_client.post("/api/v1/admin/notifications/cancel/", body, format="json").status_code == 400


def test_sending_deliveries_are_not_cancelled(key_client, organization, event_type):
    key_client.put(_url("busy"), {"email": "busy@example.com"}, format="json")
    nid = _event(key_client, recipients=[{"external_id": "busy"}], channels=[Channel.EMAIL, Channel.IN_APP],
                 deduplication_key="dk-1").json()["notifications"][0]["id"]
    NotificationDelivery.objects.filter(notification_id=nid, channel=Channel.EMAIL).update(status=DeliveryStatus.SENDING)
    NotificationDelivery.objects.filter(notification_id=nid, channel=Channel.IN_APP).update(status=DeliveryStatus.PENDING)
    answer = key_client.post("/api/v1/admin/notifications/cancel/", {"deduplication_key": "dk-1"}, format="json").json()
    statuses = dict(NotificationDelivery.objects.filter(notification_id=nid).values_list("channel", "status"))
    assert statuses[Channel.EMAIL] == DeliveryStatus.SENDING
    assert statuses[Channel.IN_APP] == DeliveryStatus.CANCELLED and answer["deliveries_cancelled"] == 1


def test_admin_acknowledge_preferences_and_retry_twins(key_client, organization, event_type):
    sub = key_client.put(_url("p-1"), {"email": "p1@example.com"}, format="json").json()
    nid = _event(key_client, recipients=[{"external_id": "p-1"}], channels=[Channel.EMAIL]).json()["notifications"][0]["id"]
    ack = key_client.post(f"/api/v1/admin/notifications/{nid}/acknowledge/", {"by_external_id": "p-1"}, format="json")
    assert ack.status_code == 200 and Notification.objects.get(pk=nid).acknowledged_at is not None
    assert key_client.post(f"/api/v1/admin/notifications/{nid}/acknowledge/", {"by_external_id": "nobody"},
                           format="json").status_code == 404
    other = _key_client(OrganizationFactory())
    assert other.post(f"/api/v1/admin/notifications/{nid}/acknowledge/", {}, format="json").status_code == 404

    prefs = key_client.put(_url("p-1") + "preferences/", {"preferences": [{"channels": {"EMAIL": {"enabled": False}}}]},
                           format="json")
    assert prefs.status_code == 200, prefs.content
    assert prefs.json()["preferences"][0]["channels"]["EMAIL"]["enabled"] is False
    assert prefs.json()["preferences"][0]["user"] == sub["id"]
    assert key_client.put(_url("p-1") + "preferences/", {"preferences": [{"channels": {"FAX": {}}}]},
                          format="json").status_code == 400
    assert other.get(_url("p-1") + "preferences/").status_code == 404

    delivery = NotificationDelivery.objects.get(notification_id=nid)
    NotificationDelivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.FAILED)
    assert other.post("/api/v1/admin/deliveries/retry/", {"delivery_ids": [delivery.pk]}, format="json").status_code == 404
    retried = key_client.post("/api/v1/admin/deliveries/retry/", {"delivery_ids": [delivery.pk]}, format="json")
    assert retried.status_code == 202 and retried.json()["deliveries"][0]["status"] == DeliveryStatus.PENDING
    assert key_client.post("/api/v1/admin/deliveries/retry/", {"delivery_ids": []}, format="json").status_code == 400


def test_a_person_changing_their_own_phone_readdresses_unsent_sms(organization, event_type):
    from notifications.engine.intake import event_emit

    person = member(organization, phone="+14155550100")
    later = (timezone.now() + timedelta(hours=1)).isoformat()
    nid = event_emit(organization=organization, type=EVENT, recipient_ids=[person.pk], channels=[Channel.SMS],
                     scheduled_for=later).notifications[0][0]
    client = APIClient()
    client.force_authenticate(person)
    response = client.patch("/api/v1/me/", {"phone": "+1 415 555 0199"}, format="json")
    assert response.status_code == 200, response.content
    delivery = NotificationDelivery.objects.get(notification_id=nid)
    assert (delivery.status, delivery.recipient_address) == (DeliveryStatus.PENDING, "+14155550199")


@pytest.mark.django_db(transaction=True)
def test_concurrent_upserts_of_one_new_external_id_make_one_subscriber(organization):
    """Both writers miss the row at first; the per-organization lock makes the second find it."""
    import threading

    from notifications.engine.subscribers import subscriber_upsert

    barrier = threading.Barrier(4)
    results, errors = [], []

    def upsert(n: int) -> None:
        from django.db import connection as conn

        try:
            barrier.wait(5)
            sub = subscriber_upsert(organization=organization, external_id="race", fields={"display_name": f"writer {n}"},
                                    actor=AuditActor())
            results.append(sub.status)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=upsert, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert sorted(results).count("created") == 1 and len(results) == 4
    assert Membership.objects.filter(organization=organization, external_id="race").count() == 1


def test_cancel_takes_a_notification_out_of_a_digest_not_sent_yet(key_client, organization, event_type):
    from notifications.engine.digest import digests_send_due
    from notifications.enums import BatchStatus, DigestFrequency, PreferenceLevel
    from notifications.models import ChannelPreference, NotificationBatch, NotificationPreference

    sub = key_client.put(_url("digest-1"), {"email": "d1@example.com"}, format="json").json()
    pref = NotificationPreference.objects.create(level=PreferenceLevel.USER, user_id=sub["id"], organization=organization)
    ChannelPreference.objects.create(preference=pref, channel=Channel.EMAIL, digest_frequency=DigestFrequency.HOURLY)
    kept, dropped = (_event(key_client, recipients=[{"external_id": "digest-1"}], channels=[Channel.EMAIL],
                            data={"taskTitle": title}, correlation_id=title).json()["notifications"][0]["id"]
                     for title in ("kept", "dropped"))
    assert NotificationDelivery.objects.get(notification_id=dropped).status == DeliveryStatus.DIGESTED
    answer = key_client.post("/api/v1/admin/notifications/cancel/", {"correlation_id": "dropped"}, format="json").json()
    assert answer["notifications_cancelled"] == [dropped]
    assert NotificationDelivery.objects.get(notification_id=kept).status == DeliveryStatus.DIGESTED
    NotificationBatch.objects.update(scheduled_for=timezone.now() - timedelta(minutes=1))
    digests_send_due()
    batch = NotificationBatch.objects.get()
    assert batch.status == BatchStatus.SENT and batch.notification_count == 1


def test_a_subscriber_is_never_greeted_by_a_generated_handle(key_client, organization, event_type):
    from notifications.engine.delivery import _recipient_name

    key_client.put(_url("nameless"), {"phone": "+14155550100"}, format="json")
    key_client.put(_url("named"), {"phone": "+14155550101", "display_name": "Quinn"}, format="json")
    ids = _event(key_client, recipients=[{"external_id": "nameless"}, {"external_id": "named"}],
                 channels=[Channel.SMS]).json()["notifications"]
    names = {n.recipient.memberships.get().external_id: _recipient_name(n)
             for n in Notification.objects.filter(pk__in=[i["id"] for i in ids]).select_related("recipient")}
    assert names == {"nameless": "", "named": "Quinn"}
    person = member(organization, display_name="")
    assert person.get_spoken_name() == person.username  # people who chose a username keep it
