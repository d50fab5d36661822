"""Routing: organization configuration, criticality routing, critical override, presence, rate limits."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from notifications.engine import ratelimit
from notifications.enums import (
    Channel,
    Criticality,
    DeliveryStatus,
    NotificationStatus,
    PresenceStatus,
    RateLimitAction,
)
from notifications.models import (
    ChannelConfiguration,
    CriticalityRouting,
    Notification,
    UserPresence,
)
from notifications.services import event_emit

from .intake_support import (
    EVENT,
    channel_config,
    intake_event_type,
    member,
    statuses,
    user_pref,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture
def event_type(db):
    return intake_event_type()


def _emit(organization, *users, **kwargs):
    result = event_emit(organization=organization, type=EVENT, recipient_ids=[u.pk for u in users], **kwargs)
    by_recipient = {n.recipient_id: n for n in Notification.objects.filter(event_id=result.event_id).prefetch_related("deliveries")}
    return [by_recipient[u.pk] for u in users]


def test_organization_disabled_channel_is_not_overridden_by_critical(organization, user, event_type):
    channel_config(organization, Channel.EMAIL, enabled=False)
    [n] = _emit(organization, user, channels=[Channel.IN_APP, Channel.EMAIL], criticality=Criticality.CRITICAL)
    assert statuses(n) == {Channel.IN_APP: DeliveryStatus.SENT}
    assert n.trace[Channel.EMAIL]["reason"] == "organization_disabled"
    step = n.trace[Channel.EMAIL]["steps"][-1]
    assert step["check"] == "channel_configuration" and step["scope"] == "organization" and step["result"] == "fail"


def test_organization_row_overrides_the_platform_default(organization, user, event_type):
    ChannelConfiguration.objects.create(organization=None, channel=Channel.EMAIL, enabled=False)
    other = member(organization)
    [n] = _emit(organization, other, channels=[Channel.EMAIL])
    assert n.trace[Channel.EMAIL]["reason"] == "organization_disabled" and n.status == NotificationStatus.SKIPPED
    channel_config(organization, Channel.EMAIL, enabled=True)
    [n] = _emit(organization, other, channels=[Channel.EMAIL])
    assert statuses(n) == {Channel.EMAIL: DeliveryStatus.PENDING}


def test_criticality_routing_limits_a_channel_to_some_criticalities(organization, user, event_type):
    config = channel_config(organization, Channel.SMS)
    CriticalityRouting.objects.create(configuration=config, criticality=Criticality.MEDIUM, enabled=False)
    CriticalityRouting.objects.create(configuration=config, criticality=Criticality.HIGH, enabled=True)
    user.phone = "+14155550111"
    user.save()
    [medium] = _emit(organization, user, channels=[Channel.SMS], criticality=Criticality.MEDIUM)
    [high] = _emit(organization, user, channels=[Channel.SMS], criticality=Criticality.HIGH)
    assert medium.trace[Channel.SMS]["reason"] == "criticality_routing_disabled" and not medium.deliveries.exists()
    assert statuses(high) == {Channel.SMS: DeliveryStatus.PENDING}
    assert high.deliveries.get().recipient_address == "+14155550111"


def test_critical_overrides_a_user_opt_out(organization, user, event_type):
    pref = user_pref(user, channels={Channel.EMAIL: False}, enabled=True)
    [low] = _emit(organization, user, channels=[Channel.EMAIL], criticality=Criticality.HIGH)
    assert low.trace[Channel.EMAIL]["reason"] == "channel_disabled" and not low.deliveries.exists()
    [crit] = _emit(organization, user, channels=[Channel.EMAIL], criticality=Criticality.CRITICAL)
    assert statuses(crit) == {Channel.EMAIL: DeliveryStatus.PENDING}
    pref_step = next(s for s in crit.trace[Channel.EMAIL]["steps"] if s["check"] == "preference")
    assert pref_step["reason"] == "critical_override" and pref_step["overridden"]["id"] == pref.pk


def test_critical_does_not_override_an_opt_out_without_critical_override(organization, user, event_type):
    user_pref(user, enabled=False, critical_override=False)
    [n] = _emit(organization, user, channels=[Channel.EMAIL, Channel.IN_APP], criticality=Criticality.CRITICAL)
    assert n.status == NotificationStatus.SKIPPED and not n.deliveries.exists()
    assert {n.trace[c]["reason"] for c in (Channel.EMAIL, Channel.IN_APP)} == {"preference_disabled"}


def test_only_when_offline_channel_is_skipped_while_online(organization, user, event_type):
    away = member(organization)
    user_pref(user, channels={Channel.EMAIL: {"enabled": True, "only_when_offline": True}})
    user_pref(away, channels={Channel.EMAIL: {"enabled": True, "only_when_offline": True}})
    now = timezone.now()
    UserPresence.objects.create(user=user, status=PresenceStatus.ONLINE, last_seen_at=now)
    # A stale heartbeat means offline, whatever the stored status says.
    UserPresence.objects.create(user=away, status=PresenceStatus.ONLINE, last_seen_at=now - timedelta(minutes=10))
    online, offline = _emit(organization, user, away, channels=[Channel.IN_APP, Channel.EMAIL])
    assert statuses(online) == {Channel.IN_APP: DeliveryStatus.SENT, Channel.EMAIL: DeliveryStatus.SKIPPED}
    assert online.trace[Channel.EMAIL]["reason"] == "presence_online" and online.trace["routing"]["presence"] == "ONLINE"
    assert statuses(offline) == {Channel.IN_APP: DeliveryStatus.SENT, Channel.EMAIL: DeliveryStatus.PENDING}


def test_heartbeat_api_drives_presence(organization, user, auth_client, event_type):
    user_pref(user, channels={Channel.EMAIL: {"only_when_offline": True}})
    response = auth_client.post("/api/v1/presence/heartbeat/", {"status": "ONLINE", "device_type": "web"}, format="json")
    assert response.status_code == 200 and response.json()["effective_status"] == "ONLINE"
    [n] = _emit(organization, user, channels=[Channel.EMAIL])
    assert statuses(n) == {Channel.EMAIL: DeliveryStatus.SKIPPED}
    assert auth_client.post("/api/v1/presence/heartbeat/", {"status": "OFFLINE"}, format="json").status_code == 200
    [n] = _emit(organization, user, channels=[Channel.EMAIL])
    assert statuses(n) == {Channel.EMAIL: DeliveryStatus.PENDING}
    assert auth_client.post("/api/v1/presence/heartbeat/", {"status": "SLEEPING"}, format="json").status_code == 400


def test_per_user_rate_limit_holds_the_overflow(organization, user, event_type):
    channel_config(organization, Channel.EMAIL, rate_limit_user_per_hour=2, rate_limit_action=RateLimitAction.HOLD)
    results = [_emit(organization, user, channels=[Channel.EMAIL, Channel.IN_APP])[0] for _ in range(3)]
    assert [statuses(n)[Channel.EMAIL] for n in results] == [DeliveryStatus.PENDING, DeliveryStatus.PENDING, DeliveryStatus.HELD]
    held = results[2]
    assert held.trace[Channel.EMAIL]["reason"] == "rate_limited_hold"
    assert held.deliveries.get(channel=Channel.EMAIL).next_retry_at > timezone.now()
    # In-app has no limit and went out at intake (the inbox row is the send).
    assert statuses(held)[Channel.IN_APP] == DeliveryStatus.SENT and held.status == NotificationStatus.PARTIALLY_DELIVERED
    key = ratelimit.user_channel_key(organization_id=organization.pk, user_key=f"u:{user.pk}", channel=Channel.EMAIL)
    assert ratelimit.counters_read(keys=[key], window=3600)[key] == 2


def test_organization_rate_limit_drops_and_gives_back_user_budget(organization, user, event_type):
    others = [member(organization) for _ in range(4)]
    channel_config(
        organization, Channel.IN_APP, rate_limit_org_per_minute=3, rate_limit_user_per_hour=10,
        rate_limit_action=RateLimitAction.DROP,
    )
    notes = _emit(organization, *others, channels=[Channel.IN_APP])
    assert [statuses(n)[Channel.IN_APP] for n in notes] == [DeliveryStatus.SENT] * 3 + [DeliveryStatus.SKIPPED]
    last = notes[-1]
    assert last.trace[Channel.IN_APP]["reason"] == "rate_limited"
    assert next(s for s in last.trace[Channel.IN_APP]["steps"] if s["check"] == "rate_limit")["limit"] == "organization_per_minute"
    # The dropped recipient's own hourly reservation was returned.
    key = ratelimit.user_channel_key(organization_id=organization.pk, user_key=f"u:{others[-1].pk}", channel=Channel.IN_APP)
    assert ratelimit.counters_read(keys=[key], window=3600)[key] == 0


def test_critical_is_exempt_from_rate_limits(organization, user, event_type):
    channel_config(organization, Channel.IN_APP, rate_limit_user_per_minute=1, rate_limit_action=RateLimitAction.DROP)
    first = _emit(organization, user, channels=[Channel.IN_APP])[0]
    second = _emit(organization, user, channels=[Channel.IN_APP])[0]
    critical = _emit(organization, user, channels=[Channel.IN_APP], criticality=Criticality.CRITICAL)[0]
    # In-app is recorded SENT at intake: only the dropped one is not.
    assert [statuses(n)[Channel.IN_APP] for n in (first, second, critical)] == [
        DeliveryStatus.SENT, DeliveryStatus.SKIPPED, DeliveryStatus.SENT,
    ]


def test_counters_are_shared_through_redis():
    """Two reservations against one key see each other's counts (what separate workers rely on)."""
    import uuid

    import redis
    from django.conf import settings

    key = f"t:{uuid.uuid4().hex}"
    assert ratelimit.counters_reserve(demands={key: (3, 5)}, window=60) == {key: 3}
    assert ratelimit.counters_reserve(demands={key: (4, 5)}, window=60) == {key: 2}
    assert ratelimit.counters_read(keys=[key], window=60) == {key: 5}
    raw = redis.Redis.from_url(settings.REDIS_URL)
    [stored] = list(raw.scan_iter(f"trb:rl:{key}:*"))
    assert int(raw.get(stored)) == 5 and 0 < raw.ttl(stored) <= 120


def test_counters_fall_back_to_the_django_cache_without_redis(settings):
    settings.REDIS_URL = ""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "rl-fallback"}}
    assert ratelimit.counters_reserve(demands={"fb:a": (2, 3), "fb:b": (5, 3)}, window=60) == {"fb:a": 2, "fb:b": 3}
    assert ratelimit.counters_reserve(demands={"fb:a": (2, 3)}, window=60) == {"fb:a": 1}
    ratelimit.counters_release(amounts={"fb:a": 1}, window=60)
    assert ratelimit.counters_read(keys=["fb:a", "fb:b"], window=60) == {"fb:a": 2, "fb:b": 3}
