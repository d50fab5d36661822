"""Provider selection strategies (providers/selection.py) through the real failover loop: three
SMS providers of one organization, each a loopback peer speaking its API. Every row names a
strategy, a recipient, what gates a candidate (health, circuit, rate limit) and the provider
that must get the request, with the sentence written in the delivery's trace."""
from __future__ import annotations

from collections import Counter

import pytest
from django.utils import timezone

from common.exceptions import ProviderPermanentError
from notifications.enums import Channel, DeliveryStatus
from providers.enums import ProviderHealthStatus
from providers.base import OutboundMessage
from providers.models import NotificationProvider
from providers.resilience import CircuitBreaker, CircuitPolicy, RateLimiter
from providers.selection import SelectionPolicy, SelectionStrategy, provider_select, recipient_region
from providers.selectors import provider_bindings_for_channel
from providers.services import provider_send_with_failover

from .factories import DeliveryFactory
from .peers import Reply

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

SID = "AC0123456789abcdef0123456789abcdef"
PLIVO_ID = "MAXXXXXXXXXXXXXXXXXX"
US, GB = "+14155550100", "+447400123456"
TWILIO_PATH = rf"/2010-04-01/Accounts/{SID}/Messages\.json"
PLIVO_PATH = rf"/v1/Account/{PLIVO_ID}/Message/"


@pytest.fixture
def sms_providers(peer, make_provider, organization):
    twilio = peer().on("POST", TWILIO_PATH, lambda req: Reply(201, {
        "sid": "SM" + "b" * 32, "account_sid": SID, "to": req.form["To"][0], "body": req.form["Body"][0], "status": "queued",
        "num_segments": "1", "price": None, "price_unit": "USD", "date_created": "Thu, 01 Jan 2026 00:00:00 +0000"}))
    plivo = peer().on("POST", PLIVO_PATH, Reply(202, {"api_id": "a1", "message": "message(s) queued", "message_uuid": ["pl-uuid-1"]}))
    bird = peer().on("POST", "/messages", Reply(201, {"id": "mb-id-1", "recipients": {"totalCount": 1, "totalSentCount": 1}}))
    records = {
        "twilio_sms": make_provider("twilio_sms", organization=organization, priority=0,
                                    config={"base_url": twilio.url, "from_number": "+14155550111", "coverage": ["US", "CA"],
                                            "cost_per_message": "0.0079", "weight": 1},
                                    secrets={"account_sid": SID, "auth_token": "tw-secret-token"}),
        "plivo_sms": make_provider("plivo_sms", organization=organization, priority=1,
                                   config={"base_url": plivo.url, "from_number": "+14155550122",
                                           "cost_per_message": {"GB": "0.035", "*": "0.0090"}, "weight": 3},
                                   secrets={"auth_id": PLIVO_ID, "auth_token": "plivo-secret-token"}),
        "messagebird_sms": make_provider("messagebird_sms", organization=organization, priority=2,
                                         config={"base_url": bird.url, "originator": "Troubadour", "coverage": ["GB", "NL", "DE"],
                                                 "cost_per_message": "0.060"},
                                         secrets={"access_key": "live_bird_access_key"}),
    }
    peers = {"twilio_sms": (twilio, TWILIO_PATH), "plivo_sms": (plivo, PLIVO_PATH), "messagebird_sms": (bird, "/messages")}
    return records, peers


def _gate(records: dict[str, NotificationProvider], gating: dict[str, str]) -> None:
    for code, how in gating.items():
        record = records[code]
        if how == "unhealthy":
            NotificationProvider.objects.filter(pk=record.pk).update(health_status=ProviderHealthStatus.UNHEALTHY)
        elif how == "circuit open":
            CircuitBreaker(f"db{record.pk}", CircuitPolicy.for_config(record.config)).trip()
        elif how == "rate limited":
            NotificationProvider.objects.filter(pk=record.pk).update(rate_limit_per_minute=1)
            assert RateLimiter(f"db{record.pk}", per_minute=1, per_day=None).acquire().allowed  # the minute's one slot is used
        else:  # pragma: no cover - a typo in the table
            raise AssertionError(how)


def _success_history(records: dict[str, NotificationProvider], organization) -> None:
    """Twilio: 1 of 2 deliveries of the last 24 h succeeded; Plivo: 3 of 3; MessageBird: none sent."""
    now = timezone.now()
    for code, statuses in (("twilio_sms", [DeliveryStatus.DELIVERED, DeliveryStatus.FAILED]),
                           ("plivo_sms", [DeliveryStatus.DELIVERED, DeliveryStatus.SENT, DeliveryStatus.DELIVERED])):
        for status in statuses:
            DeliveryFactory(organization=organization, notification__organization=organization, channel=Channel.SMS, status=status,
                            provider=code, provider_record=records[code], recipient_address=US,
                            sent_at=now if status != DeliveryStatus.FAILED else None,
                            failed_at=now if status == DeliveryStatus.FAILED else None)


S = SelectionStrategy
ROWS = [
    # (strategy, recipient, gating, default provider, chosen, trace)
    (S.PRIORITY, US, {}, None, "twilio_sms",
     "chose twilio_sms: first healthy provider by priority covering US; not covering US: messagebird_sms"),
    (S.PRIORITY, GB, {}, None, "plivo_sms",
     "chose plivo_sms: first healthy provider by priority covering GB; not covering GB: twilio_sms"),
    (S.PRIORITY, US, {"twilio_sms": "unhealthy"}, None, "plivo_sms",
     "chose plivo_sms: first healthy provider by priority covering US; passed over twilio_sms (unhealthy); "
     "not covering US: messagebird_sms"),
    (S.PRIORITY, GB, {}, "messagebird_sms", "messagebird_sms",
     "chose messagebird_sms: the channel's default provider; not covering GB: twilio_sms"),
    (S.LOWEST_COST, GB, {}, None, "plivo_sms",
     "chose plivo_sms: cheapest healthy provider covering GB (0.035 per message); not covering GB: twilio_sms"),
    (S.LOWEST_COST, US, {}, None, "twilio_sms",
     "chose twilio_sms: cheapest healthy provider covering US (0.0079 per message); not covering US: messagebird_sms"),
    (S.LOWEST_COST, GB, {"plivo_sms": "circuit open"}, None, "messagebird_sms",
     "chose messagebird_sms: cheapest healthy provider covering GB still available (0.06 per message); "
     "passed over plivo_sms (circuit open); not covering GB: twilio_sms"),
    (S.REGION, GB, {}, None, "messagebird_sms",
     "chose messagebird_sms: healthy provider declaring coverage of GB; not covering GB: twilio_sms"),
    (S.REGION, GB, {"messagebird_sms": "unhealthy"}, None, "plivo_sms",
     "chose plivo_sms: no healthy provider declares GB; worldwide provider; passed over messagebird_sms (unhealthy); "
     "not covering GB: twilio_sms"),
    (S.SUCCESS_RATE, US, {}, None, "plivo_sms",
     "chose plivo_sms: best 24 h success rate among healthy providers covering US (100.00%); not covering US: messagebird_sms"),
    (S.SUCCESS_RATE, US, {"plivo_sms": "rate limited"}, None, "twilio_sms",
     "chose twilio_sms: best 24 h success rate among healthy providers covering US (50.00%); passed over plivo_sms (rate limited); "
     "not covering US: messagebird_sms"),
    (S.WEIGHTED, US, {"plivo_sms": "circuit open", "twilio_sms": "unhealthy"}, None, None, None),
]


@pytest.mark.parametrize("strategy, to, gating, default, chosen, trace", ROWS,
                         ids=[f"{r[0]}-{r[1][:3]}-{'+'.join(f'{k}:{v}' for k, v in r[2].items()) or 'open'}" for r in ROWS])
def test_each_strategy_picks_gates_and_explains(sms_providers, organization, strategy, to, gating, default, chosen, trace):
    records, peers = sms_providers
    _success_history(records, organization)
    _gate(records, gating)
    policy = SelectionPolicy(strategy=strategy, default_provider_id=records[default].pk if default else None)
    message = OutboundMessage(channel=Channel.SMS, to=to, text="Deploy finished", idempotency_key="d-1")

    if chosen is None:  # every candidate covering the country is gated: wait, never drop
        with pytest.raises(Exception) as err:
            provider_send_with_failover(organization_id=organization.pk, channel=Channel.SMS, message=message, policy=policy)
        assert err.value.code == "no_provider_available"
        assert "passed over" in err.value.selection and "(unhealthy)" in err.value.selection
        assert all(not p.calls() for p, _ in peers.values())
        return
    outcome = provider_send_with_failover(organization_id=organization.pk, channel=Channel.SMS, message=message, policy=policy)

    assert (outcome.provider_code, outcome.selection) == (chosen, trace)
    assert outcome.provider_id == records[chosen].pk
    for code, (peer, path) in peers.items():
        assert len(peer.calls("POST", path)) == (1 if code == chosen else 0), code


def test_is_default_goes_first_under_priority(sms_providers, organization):
    records, _ = sms_providers
    NotificationProvider.objects.filter(pk=records["plivo_sms"].pk).update(is_default=True)
    outcome = provider_send_with_failover(organization_id=organization.pk, channel=Channel.SMS,
                                          message=OutboundMessage(channel=Channel.SMS, to=US, text="x"))
    assert outcome.provider_code == "plivo_sms"
    assert outcome.selection == "chose plivo_sms: default organization provider; not covering US: messagebird_sms"


def test_no_provider_covering_the_country_fails_permanently_with_the_reason(sms_providers, organization):
    records, peers = sms_providers
    NotificationProvider.objects.filter(pk=records["plivo_sms"].pk).update(config={**records["plivo_sms"].config, "coverage": ["US"]})
    with pytest.raises(ProviderPermanentError) as err:
        provider_send_with_failover(organization_id=organization.pk, channel=Channel.SMS,
                                    message=OutboundMessage(channel=Channel.SMS, to="+33612345678", text="x"))
    assert err.value.code == "no_coverage"
    assert str(err.value.detail) == "No SMS provider covers FR (twilio_sms, plivo_sms, messagebird_sms do not)."
    assert all(not p.calls() for p, _ in peers.values())


def test_weighted_split_follows_the_weights_and_is_stable_per_delivery(sms_providers, organization):
    records, _ = sms_providers
    bindings, _ = provider_bindings_for_channel(organization_id=organization.pk, channel=Channel.SMS)
    policy = SelectionPolicy(strategy=SelectionStrategy.WEIGHTED)
    firsts = Counter(provider_select(bindings, policy=policy, address=US, seed=str(i)).candidates[0].code for i in range(2000))
    # twilio weight 1, plivo weight 3 (messagebird does not cover US): 25% / 75%.
    assert set(firsts) == {"twilio_sms", "plivo_sms"}
    assert 0.70 < firsts["plivo_sms"] / 2000 < 0.80
    again = [provider_select(bindings, policy=policy, address=US, seed="d-42").candidates[0].code for _ in range(5)]
    assert len(set(again)) == 1  # a retry of one delivery sees the same order
    outcome = provider_send_with_failover(organization_id=organization.pk, channel=Channel.SMS, policy=policy,
                                          message=OutboundMessage(channel=Channel.SMS, to=US, text="x", idempotency_key="d-42"))
    assert outcome.provider_code == again[0]
    weight = {"twilio_sms": 1, "plivo_sms": 3}[again[0]]
    assert outcome.selection == f"chose {again[0]}: weighted split (weight {weight} of 4); not covering US: messagebird_sms"


@pytest.mark.parametrize("address, declared, region", [
    ("+447400123456", "", "GB"), ("whatsapp:+33612345678", "", "FR"), ("ada@example.com", "de", "DE"), ("42", "", ""),
])
def test_the_recipients_region(address, declared, region):
    assert recipient_region(address, declared=declared) == region


def test_one_batch_splits_by_each_recipients_best_provider(sms_providers, organization):
    from providers.services import provider_send_batch_with_failover

    _, peers = sms_providers
    messages = [OutboundMessage(channel=Channel.SMS, to=to, text="x", idempotency_key=str(i))
                for i, to in enumerate([US, GB, US, "+33612345678"])]
    results = provider_send_batch_with_failover(organization_id=organization.pk, channel=Channel.SMS, messages=messages,
                                                policy=SelectionPolicy(strategy=SelectionStrategy.LOWEST_COST))
    assert [getattr(r, "provider_code", None) for r in results] == ["twilio_sms", "plivo_sms", "twilio_sms", "plivo_sms"]
    assert results[3].selection == ("chose plivo_sms: cheapest healthy provider covering FR (0.009 per message); "
                                    "not covering FR: twilio_sms, messagebird_sms")
    assert len(peers["twilio_sms"][0].calls("POST")) == 2 and len(peers["plivo_sms"][0].calls("POST")) == 2
    assert peers["messagebird_sms"][0].calls() == []
