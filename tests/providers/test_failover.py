from __future__ import annotations

import time

import pytest
import time_machine
from django.core import mail

from common.exceptions import ProviderPermanentError, ProviderTransientError
from notifications.enums import AuditAction, Channel, ProviderHealthStatus
from notifications.engine.failover import failover_audit_rows, send_with_failover_audit
from notifications.models import NotificationAuditLog
from providers.models import NotificationProvider
from providers.base import OutboundMessage
from providers.models import ProviderOutbox, SuppressionReason
from providers.resilience import CircuitBreaker, CircuitPolicy, CircuitState
from providers.services import (
    AttemptOutcome,
    provider_send_with_failover,
    suppression_add,
)

from .factories import DeliveryFactory
from .peers import Reply

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def _email(**kw) -> OutboundMessage:
    return OutboundMessage(channel=Channel.EMAIL, to=kw.pop("to", "ada@example.com"), subject="Hi", text="Hello", **kw)


@pytest.fixture
def two_sendgrids(peer, make_provider, organization):
    primary, secondary = peer(), peer()
    secondary.on("POST", "/v3/mail/send", Reply(202))
    own = make_provider("sendgrid", organization=organization, config={"api_url": f"{primary.url}/v3/", "circuit_failure_threshold": 2,
                                                                        "circuit_cooldown_seconds": 30},
                        secrets={"api_key": "SG.org-key-0000000000"})
    platform = make_provider("sendgrid", config={"api_url": f"{secondary.url}/v3/"}, secrets={"api_key": "SG.global-key-000000"})
    return primary, secondary, own, platform


def test_primary_503_fails_over_to_the_secondary_with_an_audit_row(two_sendgrids, organization):
    primary, secondary, own, platform = two_sendgrids
    primary.on("POST", "/v3/mail/send", Reply(503, {"errors": [{"message": "unavailable"}]}))
    delivery = DeliveryFactory(organization=organization, notification__organization=organization)

    outcome = provider_send_with_failover(organization_id=organization.pk, channel=Channel.EMAIL,
                                          message=_email(metadata={"delivery_id": delivery.pk, "notification_id": delivery.notification_id}))

    assert outcome.provider_id == platform.pk
    assert [a.outcome for a in outcome.attempts] == [AttemptOutcome.TRANSIENT_ERROR, AttemptOutcome.SENT]
    assert len(primary.calls()) == 1 and len(secondary.calls()) == 1
    assert secondary.calls()[0].header("Authorization") == "Bearer SG.global-key-000000"
    # The provider layer only reports its attempts; the notification platform audits them
    # (the delivery engine in the delivery's own transaction: tests/notifications/test_concurrent_sends.py).
    assert not NotificationAuditLog.objects.filter(action=AuditAction.PROVIDER_FAILOVER).exists()
    [audit] = failover_audit_rows(organization_id=organization.pk, channel=Channel.EMAIL, attempts=outcome.attempts,
                                  delivery_id=delivery.pk, notification_id=delivery.notification_id)
    assert (audit.provider_id, audit.delivery_id, audit.organization_id) == (own.pk, delivery.pk, organization.pk)
    assert audit.details["to"] == "sendgrid" and audit.outcome == "SUCCESS"


def test_a_send_outside_the_engine_audits_its_failovers_too(two_sendgrids, organization):
    primary, secondary, own, platform = two_sendgrids
    primary.on("POST", "/v3/mail/send", Reply(503, {"errors": [{"message": "unavailable"}]}))
    secondary.on("POST", "/v3/mail/send", Reply(503, {"errors": [{"message": "unavailable"}]}))

    with pytest.raises(ProviderTransientError):
        send_with_failover_audit(organization_id=organization.pk, channel=Channel.EMAIL, message=_email())

    rows = NotificationAuditLog.objects.filter(action=AuditAction.PROVIDER_FAILOVER).order_by("pk")
    assert [(r.provider_id, r.outcome, r.details["to"]) for r in rows] == [(own.pk, "FAILURE", "sendgrid"), (platform.pk, "FAILURE", None)]
    assert {r.delivery_id for r in rows} == {None}


def test_primary_401_is_the_providers_fault_opens_its_circuit_and_fails_over(two_sendgrids, organization):
    primary, secondary, own, platform = two_sendgrids
    primary.on("POST", "/v3/mail/send", Reply(401, {"errors": [{"message": "bad key"}]}))

    outcome = send_with_failover_audit(organization_id=organization.pk, channel=Channel.EMAIL, message=_email())

    assert outcome.provider_id == platform.pk and len(secondary.calls()) == 1
    assert [a.outcome for a in outcome.attempts] == [AttemptOutcome.CREDENTIALS_REFUSED, AttemptOutcome.SENT]
    assert outcome.selection == "chose sendgrid: first healthy provider by priority; passed over sendgrid (credentials refused)"
    assert CircuitBreaker(f"db{own.pk}", CircuitPolicy.for_config(own.config)).state() == CircuitState.OPEN
    own.refresh_from_db()
    assert own.health_status == ProviderHealthStatus.UNHEALTHY and own.health_message.startswith("Credentials refused")
    assert NotificationAuditLog.objects.get(action=AuditAction.PROVIDER_FAILOVER).details["error_code"] == "401"
    # The next message does not knock on the refusing provider again.
    provider_send_with_failover(organization_id=organization.pk, channel=Channel.EMAIL, message=_email())
    assert len(primary.calls()) == 1 and len(secondary.calls()) == 2


def test_a_permanent_error_about_the_message_does_not_fail_over(two_sendgrids, organization):
    primary, secondary, _, _ = two_sendgrids
    primary.on("POST", "/v3/mail/send", Reply(400, {"errors": [{"message": "invalid to address"}]}))
    with pytest.raises(ProviderPermanentError) as err:
        provider_send_with_failover(organization_id=organization.pk, channel=Channel.EMAIL, message=_email())
    assert secondary.calls() == []
    assert [a.outcome for a in err.value.attempts] == [AttemptOutcome.PERMANENT_ERROR]
    assert failover_audit_rows(organization_id=organization.pk, channel=Channel.EMAIL, attempts=err.value.attempts) == []
    assert not NotificationAuditLog.objects.filter(action=AuditAction.PROVIDER_FAILOVER).exists()


def test_circuit_opens_after_n_failures_and_half_opens_after_the_cooldown(two_sendgrids, organization):
    primary, _, own, _ = two_sendgrids
    primary.on("POST", "/v3/mail/send", Reply(500))
    breaker = CircuitBreaker(f"db{own.pk}", CircuitPolicy.for_config(own.config))
    with time_machine.travel(time.time(), tick=False) as clock:
        for _ in range(2):
            provider_send_with_failover(organization_id=organization.pk, channel=Channel.EMAIL, message=_email())
        assert breaker.state() == CircuitState.OPEN

        outcome = provider_send_with_failover(organization_id=organization.pk, channel=Channel.EMAIL, message=_email())
        assert outcome.attempts[0].outcome == AttemptOutcome.SKIPPED_CIRCUIT_OPEN
        assert len(primary.calls()) == 2  # the open circuit kept the third message away

        clock.shift(31)
        assert breaker.state() == CircuitState.HALF_OPEN
        primary.on("POST", "/v3/mail/send", Reply(202))  # the provider recovered
        outcome = provider_send_with_failover(organization_id=organization.pk, channel=Channel.EMAIL, message=_email())
        assert outcome.provider_id == own.pk and len(primary.calls()) == 3
        assert breaker.state() == CircuitState.CLOSED


def test_a_failed_half_open_probe_reopens_for_a_full_cooldown(two_sendgrids):
    _, _, own, _ = two_sendgrids
    breaker = CircuitBreaker(f"db{own.pk}", CircuitPolicy.for_config(own.config))
    with time_machine.travel(time.time(), tick=False) as clock:
        breaker.record_failure(), breaker.record_failure()
        clock.shift(31)
        assert breaker.allow() is True
        assert breaker.allow() is False  # only one probe at a time
        assert breaker.record_failure() == CircuitState.OPEN
        clock.shift(20)
        assert breaker.state() == CircuitState.OPEN


def test_rate_limited_provider_passes_to_the_next_then_waits_never_drops(two_sendgrids, organization):
    primary, secondary, own, platform = two_sendgrids
    primary.on("POST", "/v3/mail/send", Reply(202))
    NotificationProvider.objects.filter(pk__in=[own.pk, platform.pk]).update(rate_limit_per_minute=1)

    first = provider_send_with_failover(organization_id=organization.pk, channel=Channel.EMAIL, message=_email())
    second = provider_send_with_failover(organization_id=organization.pk, channel=Channel.EMAIL, message=_email())
    assert (first.provider_id, second.provider_id) == (own.pk, platform.pk)
    assert second.attempts[0].outcome == AttemptOutcome.RATE_LIMITED
    with pytest.raises(ProviderTransientError) as err:
        provider_send_with_failover(organization_id=organization.pk, channel=Channel.EMAIL, message=_email())
    assert 0 < err.value.retry_after <= 60
    assert len(primary.calls()) == 1 and len(secondary.calls()) == 1


def test_unhealthy_providers_are_skipped(two_sendgrids, organization):
    primary, _, own, platform = two_sendgrids
    NotificationProvider.objects.filter(pk=own.pk).update(health_status=ProviderHealthStatus.UNHEALTHY)
    outcome = provider_send_with_failover(organization_id=organization.pk, channel=Channel.EMAIL, message=_email())
    assert outcome.provider_id == platform.pk and primary.calls() == []


def test_another_organizations_records_are_never_used(two_sendgrids, other_user):
    primary, _, _, platform = two_sendgrids
    other_org_id = other_user.memberships.get().organization_id
    outcome = provider_send_with_failover(organization_id=other_org_id, channel=Channel.EMAIL, message=_email())
    assert outcome.provider_id == platform.pk and primary.calls() == []


def test_without_records_the_environment_defaults_deliver(organization, django_assert_max_num_queries):
    with django_assert_max_num_queries(3):  # suppression check, provider records, outbox insert
        outcome = provider_send_with_failover(organization_id=organization.pk, channel=Channel.SMS,
                                              message=OutboundMessage(channel=Channel.SMS, to="+14155550100", text="hi", idempotency_key="5"))
    assert outcome.provider_code == "log_sms" and outcome.result.status == "delivered"
    assert ProviderOutbox.objects.get().idempotency_key == "5"

    outcome = provider_send_with_failover(organization_id=organization.pk, channel=Channel.EMAIL, message=_email(metadata={"user_id": 1}))
    assert outcome.provider_code == "django_email"
    assert mail.outbox[0].to == ["ada@example.com"] and "List-Unsubscribe" in mail.outbox[0].extra_headers


def test_suppressed_addresses_are_refused_before_any_call(two_sendgrids, organization):
    primary, secondary, _, _ = two_sendgrids
    suppression_add(address="Ada@Example.com", channel=Channel.EMAIL, reason=SuppressionReason.HARD_BOUNCE, organization_id=None)
    with pytest.raises(ProviderPermanentError) as err:
        provider_send_with_failover(organization_id=organization.pk, channel=Channel.EMAIL, message=_email())
    assert err.value.code == "suppressed" and "HARD_BOUNCE" in str(err.value.detail)
    assert primary.calls() == [] and secondary.calls() == []


def test_batch_send_fails_over_as_one_merged_call_per_provider(two_sendgrids, organization, django_assert_max_num_queries):
    from providers.services import provider_send_batch_with_failover

    primary, secondary, _, platform = two_sendgrids
    primary.on("POST", "/v3/mail/send", Reply(502))
    suppression_add(address="bounced@example.com", channel=Channel.EMAIL, reason=SuppressionReason.HARD_BOUNCE, organization_id=None)
    messages = [_email(to=f"user{i}@example.com", idempotency_key=str(i)) for i in range(4)] + [_email(to="bounced@example.com")]
    # suppressions, provider records, failover audit rows — whatever the batch size
    with django_assert_max_num_queries(4):
        results = provider_send_batch_with_failover(organization_id=organization.pk, channel=Channel.EMAIL, messages=messages)

    assert len(results) == 5
    assert [r.provider_id for r in results[:4]] == [platform.pk] * 4
    assert isinstance(results[4], ProviderPermanentError) and results[4].code == "suppressed"
    assert len(primary.calls()) == 1 and len(secondary.calls()) == 1  # one merged call each
    assert len(secondary.calls()[0].json["personalizations"]) == 4


def test_undecryptable_credentials_fail_over_instead_of_crashing(two_sendgrids, organization, settings):
    from cryptography.fernet import Fernet

    primary, _, own, platform = two_sendgrids
    NotificationProvider.objects.filter(pk=own.pk).update(secrets=Fernet(Fernet.generate_key()).encrypt(b"{}").decode())
    outcome = provider_send_with_failover(organization_id=organization.pk, channel=Channel.EMAIL, message=_email())
    assert outcome.provider_id == platform.pk and primary.calls() == []
    assert outcome.attempts[0].error_code == "configuration"


def test_batch_emails_carry_each_recipients_unsubscribe_link(two_sendgrids, organization):
    from providers.services import provider_send_batch_with_failover

    primary, _, _, _ = two_sendgrids
    primary.on("POST", "/v3/mail/send", Reply(202))
    deliveries = [DeliveryFactory(organization=organization, notification__organization=organization) for _ in range(2)]
    # As the delivery engine builds them: the recipient user names the unsubscribe link.
    messages = [_email(to=d.recipient_address, metadata={"notification_id": d.notification_id, "delivery_id": d.pk,
                                                         "user_id": d.notification.recipient_id, "category": d.notification.category})
                for d in deliveries]
    provider_send_batch_with_failover(organization_id=organization.pk, channel=Channel.EMAIL, messages=messages)

    links = [p["headers"]["List-Unsubscribe"] for p in primary.calls()[0].json["personalizations"]]
    assert len(set(links)) == 2 and all(link.startswith("<https://troubadour.test/u/") for link in links)


def test_a_delivery_held_back_by_rate_limits_waits_without_using_up_its_retries(make_provider, organization, user):
    from notifications.engine.delivery import deliver_batch
    from notifications.enums import DeliveryStatus
    from notifications.models import NotificationDelivery
    from providers.resilience import RateLimiter
    from tests.notifications.test_delivery_support import event_type_with_template, notification_with_deliveries

    record = make_provider("log_sms", rate_limit_per_minute=1)
    assert RateLimiter(f"db{record.pk}", per_minute=1, per_day=None).acquire().allowed  # another worker took the slot
    event_type_with_template()
    _, (delivery,) = notification_with_deliveries(organization=organization, recipient=user, channels=(Channel.SMS,))
    NotificationDelivery.objects.filter(pk=delivery.pk).update(attempts=delivery.max_attempts - 1)  # its last retry

    deliver_batch(delivery_ids=[delivery.pk])

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING and delivery.next_retry_at is not None
    assert delivery.attempts == delivery.max_attempts - 1  # the wait did not count as an attempt
    assert "rate limit" in delivery.error and delivery.error_history[-1]["code"] == "rate_limited"
    assert not ProviderOutbox.objects.exists()
