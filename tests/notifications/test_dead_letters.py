"""Dead-letter and delivery admin API (/api/v1/admin/dead-letters/, /api/v1/admin/deliveries/)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.admin.sites import site
from django.test import RequestFactory
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import MembershipRole
from notifications.enums import AuditAction, Channel, DeadLetterStatus, DeliveryStatus
from notifications.models import DeadLetter, NotificationAuditLog, NotificationDelivery
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

from .test_retry_support import eager_celery, make_delivery, make_notification  # noqa: F401

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def _letter(organization, recipient, **fields):
    n = make_notification(organization=organization, recipient=recipient)
    d = make_delivery(n, Channel.EMAIL, status=DeliveryStatus.FAILED, attempts=4, failed_at=timezone.now(),
                      error="503 from every provider")
    return DeadLetter.objects.create(organization=organization, delivery=d, channel=Channel.EMAIL, reason="4 attempts failed",
                                     payload={"notification_id": n.pk}, error_history=[{"attempt": 1, "error": "503"}],
                                     provider_responses=[{"status": 503}], **fields)


@pytest.fixture
def admin_client(organization):
    admin = UserFactory()
    MembershipFactory(user=admin, organization=organization, role=MembershipRole.ADMIN)
    client = APIClient()
    client.force_authenticate(admin)
    client.user = admin
    return client


def test_list_and_detail_are_scoped_to_the_callers_organization(organization, user, admin_client):
    mine = _letter(organization, user)
    other_org = OrganizationFactory()
    theirs = _letter(other_org, UserFactory())
    body = admin_client.get("/api/v1/admin/dead-letters/").json()
    assert [row["id"] for row in body["results"]] == [mine.pk] and body["next"] is None
    detail = admin_client.get(f"/api/v1/admin/dead-letters/{mine.pk}/").json()
    assert detail["provider_responses"] == [{"status": 503}] and detail["payload"]["notification_id"]
    assert admin_client.get(f"/api/v1/admin/dead-letters/{theirs.pk}/").status_code == 404
    assert admin_client.post(f"/api/v1/admin/dead-letters/{theirs.pk}/replay/").status_code == 404
    assert admin_client.get("/api/v1/admin/dead-letters/?status=bogus").status_code == 400


def test_members_may_not_see_dead_letters_but_staff_see_all(organization, user, other_user):
    _letter(organization, user)
    member = UserFactory()
    MembershipFactory(user=member, organization=organization, role=MembershipRole.MEMBER)
    client = APIClient()
    client.force_authenticate(member)
    assert client.get("/api/v1/admin/dead-letters/").status_code == 403
    staff = UserFactory(is_staff=True, is_superuser=True)
    client.force_authenticate(staff)
    _letter(OrganizationFactory(), other_user)
    assert len(client.get("/api/v1/admin/dead-letters/").json()["results"]) == 2


def test_replay_resets_the_delivery_queues_it_and_is_audited(
    organization, user, admin_client, django_capture_on_commit_callbacks
):
    letter = _letter(organization, user)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = admin_client.post(f"/api/v1/admin/dead-letters/{letter.pk}/replay/")
    assert response.status_code == 202 and response.json()["delivery_ids"] == [letter.delivery_id]
    assert len(callbacks) == 1
    letter.refresh_from_db()
    assert letter.status == DeadLetterStatus.REPLAYED and letter.resolved_by == admin_client.user
    d = NotificationDelivery.objects.get(pk=letter.delivery_id)
    assert (d.status, d.attempts, d.failed_at) == (DeliveryStatus.PENDING, 0, None)
    assert d.error_history[-1]["code"] == "replayed"
    audit = NotificationAuditLog.objects.get(action=AuditAction.DEAD_LETTER_REPLAYED)
    assert audit.user == admin_client.user and audit.details["dead_letter_id"] == letter.pk
    # A replayed letter cannot be replayed again.
    assert admin_client.post(f"/api/v1/admin/dead-letters/{letter.pk}/replay/").status_code == 409


def test_bulk_replay_is_all_or_nothing(organization, user, admin_client, django_capture_on_commit_callbacks):
    first, second = _letter(organization, user), _letter(organization, user)
    discarded = _letter(organization, user, status=DeadLetterStatus.DISCARDED)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        refused = admin_client.post("/api/v1/admin/dead-letters/replay/", {"ids": [first.pk, discarded.pk]}, format="json")
    assert refused.status_code == 409 and refused.json()["ids"] == [discarded.pk]
    assert callbacks == []
    first.refresh_from_db()
    assert first.status == DeadLetterStatus.OPEN  # nothing saved half-way
    assert admin_client.post("/api/v1/admin/dead-letters/replay/", {"ids": []}, format="json").status_code == 400
    assert admin_client.post("/api/v1/admin/dead-letters/replay/", {"ids": ["x"]}, format="json").status_code == 400
    with django_capture_on_commit_callbacks(execute=False):
        ok = admin_client.post("/api/v1/admin/dead-letters/replay/", {"ids": [first.pk, second.pk]}, format="json")
    assert ok.status_code == 202
    assert DeadLetter.objects.filter(status=DeadLetterStatus.REPLAYED).count() == 2
    assert NotificationAuditLog.objects.filter(action=AuditAction.DEAD_LETTER_REPLAYED).count() == 2


def test_discard_keeps_the_delivery_failed(organization, user, admin_client):
    letter = _letter(organization, user)
    assert admin_client.post(f"/api/v1/admin/dead-letters/{letter.pk}/discard/").status_code == 200
    letter.refresh_from_db()
    assert letter.status == DeadLetterStatus.DISCARDED and letter.discarded_at is not None
    assert NotificationDelivery.objects.get(pk=letter.delivery_id).status == DeliveryStatus.FAILED
    assert NotificationAuditLog.objects.filter(action=AuditAction.DEAD_LETTER_DISCARDED).count() == 1


def test_deliveries_list_filters_and_retry(organization, user, admin_client, django_capture_on_commit_callbacks):
    n = make_notification(organization=organization, recipient=user)
    failed = make_delivery(n, Channel.EMAIL, status=DeliveryStatus.FAILED, attempts=4, failed_at=timezone.now())
    waiting = make_delivery(n, Channel.IN_APP, attempts=1, next_retry_at=timezone.now() + timedelta(minutes=10))
    sent = make_delivery(n, Channel.SMS, status=DeliveryStatus.SENT, recipient_address="+14155550199")
    make_delivery(make_notification(organization=OrganizationFactory(), recipient=UserFactory()), Channel.EMAIL)
    listing = admin_client.get("/api/v1/admin/deliveries/").json()
    assert {row["id"] for row in listing["results"]} == {failed.pk, waiting.pk, sent.pk}
    assert [r["id"] for r in admin_client.get("/api/v1/admin/deliveries/?status=failed").json()["results"]] == [failed.pk]
    assert [r["id"] for r in admin_client.get("/api/v1/admin/deliveries/?retry_due=1").json()["results"]] == [waiting.pk]
    assert admin_client.get("/api/v1/admin/deliveries/?channel=FAX").status_code == 400
    assert admin_client.get("/api/v1/admin/deliveries/?created_after=yesterday").status_code == 400

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert admin_client.post(f"/api/v1/admin/deliveries/{failed.pk}/retry/").json()["status"] == DeliveryStatus.PENDING
        assert admin_client.post(f"/api/v1/admin/deliveries/{waiting.pk}/retry/").json()["next_retry_at"] is None
    assert len(callbacks) == 2
    assert admin_client.post(f"/api/v1/admin/deliveries/{sent.pk}/retry/").status_code == 409


def test_admin_actions_replay_and_discard(organization, user, django_capture_on_commit_callbacks):
    staff = UserFactory(is_staff=True, is_superuser=True)
    first, second = _letter(organization, user), _letter(organization, user)
    admin = site._registry[DeadLetter]
    request = RequestFactory().post("/admin/")
    request.user = staff
    request._messages = type("M", (), {"add": lambda *a, **k: None})()
    with django_capture_on_commit_callbacks(execute=False):
        admin.get_actions(request)["replay_dead_letters"][0](admin, request, DeadLetter.objects.filter(pk=first.pk))
    admin.get_actions(request)["discard_dead_letters"][0](admin, request, DeadLetter.objects.filter(pk=second.pk))
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == (DeadLetterStatus.REPLAYED, DeadLetterStatus.DISCARDED)


@pytest.mark.redis
def test_retry_of_a_bounced_delivery_really_sends_again(
    organization, admin_client, eager_celery, django_capture_on_commit_callbacks
):
    """The send journal remembers the first, accepted send; an operator's retry must not be
    answered from it (which would mark the delivery sent without sending anything)."""
    from notifications.engine.delivery import deliver_batch
    from providers.models import ProviderOutbox

    recipient = UserFactory(phone="+14155550177")
    MembershipFactory(user=recipient, organization=organization)
    d = make_delivery(make_notification(organization=organization, recipient=recipient), Channel.SMS)
    deliver_batch(delivery_ids=[d.pk])
    assert ProviderOutbox.objects.filter(idempotency_key=str(d.pk)).count() == 1
    NotificationDelivery.objects.filter(pk=d.pk).update(status=DeliveryStatus.BOUNCED)  # the carrier's status callback

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(f"/api/v1/admin/deliveries/{d.pk}/retry/")
    assert response.status_code == 202
    d.refresh_from_db()
    assert d.status in (DeliveryStatus.SENT, DeliveryStatus.DELIVERED) and d.attempts == 1
    assert ProviderOutbox.objects.filter(idempotency_key=str(d.pk)).count() == 2
    assert "recovered_from_send_journal" not in (d.provider_response or {})


def test_reliability_admin_endpoints_are_in_the_openapi_schema(admin_client):
    import yaml

    response = admin_client.get("/api/v1/schema/")
    assert response.status_code == 200
    paths = yaml.safe_load(response.content)["paths"]
    for path, methods in {
        "/api/v1/admin/dead-letters/": {"get"}, "/api/v1/admin/dead-letters/{dead_letter_id}/replay/": {"post"},
        "/api/v1/admin/dead-letters/replay/": {"post"}, "/api/v1/admin/deliveries/{delivery_id}/retry/": {"post"},
        "/api/v1/admin/escalation-chains/": {"get", "post"},
        "/api/v1/admin/escalation-chains/{chain_id}/": {"get", "put", "patch", "delete"},
        "/api/v1/admin/channel-configurations/{configuration_id}/": {"get", "patch", "delete"},
    }.items():
        assert methods <= set(paths[path]), path
    assert "requestBody" in paths["/api/v1/admin/escalation-chains/"]["post"]


def test_admin_lists_page_by_cursor_like_every_list(organization, user, admin_client):
    """{next, previous, results} (common.pagination): newest first, a page at a time, no row twice."""
    letters = [_letter(organization, user) for _ in range(3)]
    first = admin_client.get("/api/v1/admin/dead-letters/?page_size=2").json()
    assert set(first) == {"next", "previous", "results"} and first["previous"] is None
    second = admin_client.get(first["next"]).json()
    seen = [row["id"] for row in first["results"] + second["results"]]
    assert seen == sorted((dl.pk for dl in letters), reverse=True) and second["next"] is None
    for bad in ({"cursor": "not-a-cursor"}, {"page_size": "0"}, {"page_size": "x"}):
        answer = admin_client.get("/api/v1/admin/dead-letters/", bad)
        assert answer.status_code == 400 and next(iter(bad)) in answer.json(), bad
    for url in ("/api/v1/admin/deliveries/", "/api/v1/admin/escalation-chains/", "/api/v1/admin/channel-configurations/"):
        assert set(admin_client.get(url).json()) == {"next", "previous", "results"}, url
