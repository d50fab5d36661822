"""Writes and external calls of the provider layer.

`provider_send_with_failover` is what the delivery engine calls for one message. Status
reports (webhooks, polling) go up through `providers.hooks` to the notification platform.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction

from common.metrics import record_provider_call
from common.exceptions import (
    ProviderError,
    ProviderPermanentError,
    ProviderTransientError,
    ValidationError,
)
from common.channels import Channel
from notifications.enums import (
    AuditAction,
    AuditActorType,
)

from .base import (
    BaseProvider,
    HealthResult,
    OutboundMessage,
    SendResult,
)
from .enums import ProviderHealthStatus
from .models import (
    NotificationProvider,
    SuppressedAddress,
)
from .endpoints import endpoint_errors, endpoints_refuse_internal
from .journal import journal_record, send_journaled
from .registry import registry
from .faults import breaker_failure, is_credentials_error, provider_credentials_refused
from .hooks import audit_report
from .resilience import CircuitBreaker, CircuitPolicy, RateLimiter
from .selection import Selection, SelectionPolicy, provider_config_errors, provider_select
from .secrets import env_references_check, resolve_credentials, secrets_decrypt, secrets_encrypt
from .selectors import (
    ProviderBinding,
    binding_for_record,
    provider_bindings_for_channel,
    provider_success_rates_24h,
    suppression_check,
)

logger = logging.getLogger(__name__)

ADDRESSED_CHANNELS = (Channel.EMAIL, Channel.SMS, Channel.WHATSAPP, Channel.VOICE)


# --- sending ---------------------------------------------------------------------------


class AttemptOutcome:
    SENT = "sent"
    TRANSIENT_ERROR = "transient_error"
    PERMANENT_ERROR = "permanent_error"
    SKIPPED_CIRCUIT_OPEN = "skipped_circuit_open"
    SKIPPED_UNHEALTHY = "skipped_unhealthy"
    RATE_LIMITED = "rate_limited"
    # 401/403: the provider's credentials, not the message — its circuit opens, the next one is tried.
    CREDENTIALS_REFUSED = "credentials_refused"


# What a passed-over provider's attempt is called in the delivery's trace.
_PASSED_OVER = {
    AttemptOutcome.SKIPPED_UNHEALTHY: "unhealthy",
    AttemptOutcome.SKIPPED_CIRCUIT_OPEN: "circuit open",
    AttemptOutcome.RATE_LIMITED: "rate limited",
    AttemptOutcome.CREDENTIALS_REFUSED: "credentials refused",
}
_FAILED_OVER = (AttemptOutcome.TRANSIENT_ERROR, AttemptOutcome.CREDENTIALS_REFUSED)


@dataclass
class SendAttempt:
    provider_id: int | None
    provider_code: str
    outcome: str
    error: str = ""
    error_code: str = ""
    duration_ms: int | None = None


@dataclass
class SendOutcome:
    result: SendResult
    provider_code: str
    provider_id: int | None
    attempts: list[SendAttempt] = field(default_factory=list)
    selection: str = ""  # why this provider, for the delivery's trace

    @property
    def failed_over(self) -> bool:
        return any(a.outcome in _FAILED_OVER for a in self.attempts)

    def as_dict(self) -> dict[str, Any]:
        return {"provider_code": self.provider_code, "provider_id": self.provider_id, "result": self.result.as_dict(),
                "attempts": [asdict(a) for a in self.attempts], "selection": self.selection}


def _passed_over(attempts: Iterable[SendAttempt]) -> list[tuple[str, str]]:
    return [(a.provider_code, _PASSED_OVER.get(a.outcome) or f"failed: {a.error_code or 'error'}")
            for a in attempts if a.outcome != AttemptOutcome.SENT]


def _select(bindings: list[ProviderBinding], policy: SelectionPolicy | None, message: OutboundMessage) -> Selection:
    return provider_select(bindings, policy=policy, address=message.to, seed=str(message.idempotency_key or ""),
                           success_rates=provider_success_rates_24h)


def _no_coverage(selection: Selection, channel: str) -> ProviderPermanentError:
    # Nothing will change until a provider covering the country is configured: not worth retries.
    error = ProviderPermanentError(f"No {channel} provider covers {selection.region} ({', '.join(selection.excluded)} do not).",
                                   code="no_coverage")
    error.selection = selection.explain_none()  # type: ignore[attr-defined]
    return error


def provider_instantiate(binding: ProviderBinding, *, global_records: Iterable[NotificationProvider] | None = None) -> BaseProvider:
    cls = registry.get(binding.code)
    credentials = resolve_credentials(binding.record, code=binding.code, global_records=global_records)
    if binding.organization_id is not None:
        endpoints_refuse_internal(binding, config=binding.config, credentials=credentials)
    return cls(config=binding.config, credentials=credentials, record_id=binding.record_id)


def _instantiate_or_transient(binding: ProviderBinding, global_records: Iterable[NotificationProvider]) -> BaseProvider:
    try:
        return provider_instantiate(binding, global_records=global_records)
    except ImproperlyConfigured as exc:
        # Undecryptable secrets (rotated keys) break this provider, not the message: fail over.
        logger.error("provider %s (%s) is misconfigured: %s", binding.record_id, binding.code, exc.__class__.__name__)
        raise ProviderTransientError(f"Provider {binding.code} is misconfigured.", code="configuration") from None


def _redact(exc: ProviderError, provider: BaseProvider | None) -> ProviderError:
    """Mask the provider's credentials in an error before it is stored, audited or answered."""
    if provider is not None:
        exc.detail = provider.redact(exc.detail)
        exc.args = (exc.detail,)
    return exc


def _with_attempts(exc: Exception, attempts: list[SendAttempt]) -> Exception:
    exc.attempts = attempts  # type: ignore[attr-defined]
    return exc


def _rate_limiter(binding: ProviderBinding) -> RateLimiter:
    return RateLimiter(binding.key, per_minute=binding.rate_limit_per_minute, per_day=binding.daily_limit,
                       per_second=(binding.config or {}).get("rate_limit_per_second"))


def _rate_wait_budget() -> float:
    """Seconds a batch may wait inside the worker for per-second slots (PROVIDER_RATE_WAIT_SECONDS)."""
    from django.conf import settings

    return float(getattr(settings, "PROVIDER_RATE_WAIT_SECONDS", 5))


def _gate(binding: ProviderBinding, attempts: list[SendAttempt], retry_hints: list[float]) -> CircuitBreaker | None:
    """Circuit, health and rate limit checks; None when this provider must be skipped."""
    if binding.health_status == ProviderHealthStatus.UNHEALTHY:
        attempts.append(SendAttempt(binding.record_id, binding.code, AttemptOutcome.SKIPPED_UNHEALTHY))
        return None
    policy = CircuitPolicy.for_config(binding.config)
    breaker = CircuitBreaker(binding.key, policy)
    if not breaker.allow():
        attempts.append(SendAttempt(binding.record_id, binding.code, AttemptOutcome.SKIPPED_CIRCUIT_OPEN))
        retry_hints.append(policy.cooldown)
        return None
    decision = _rate_limiter(binding).acquire()
    if not decision.allowed and 0 < decision.retry_after < 1 <= _rate_wait_budget():
        # A per-second window: the slot is a moment away, wait for it here (no retry burnt).
        time.sleep(decision.retry_after)
        decision = _rate_limiter(binding).acquire()
    if not decision.allowed:
        attempts.append(SendAttempt(binding.record_id, binding.code, AttemptOutcome.RATE_LIMITED))
        retry_hints.append(decision.retry_after)
        return None
    return breaker


RATE_LIMITED_CODE = "rate_limited"


def _unavailable_code(attempts: list[SendAttempt]) -> str:
    """`rate_limited` when only rate limits kept the message back: it waits for a slot and
    that wait must not use up its retries (it is never dropped for being one too many)."""
    if attempts and all(a.outcome == AttemptOutcome.RATE_LIMITED for a in attempts):
        return RATE_LIMITED_CODE
    return "no_provider_available"


def provider_send_with_failover(*, organization_id: int | None, channel: str, message: OutboundMessage,
                                policy: SelectionPolicy | None = None) -> SendOutcome:
    """Send one message through the channel's providers in the order `policy` chooses
    (providers.selection; priority when None).

    Skips UNHEALTHY providers, open circuits and providers over their rate limit. A
    transient error counts against the provider's circuit and moves on to the next one (the
    outcome, or the error raised, lists every attempt: the notification platform writes the
    PROVIDER_FAILOVER audit rows in its own transaction);
    a permanent error stops at once (no other provider would do better) — except refused
    credentials (401/403), the provider's fault: its circuit opens, it is marked unhealthy,
    operators are alerted and the next provider is tried. When nothing
    succeeded, raises ProviderTransientError with `retry_after` (seconds, when known) and
    `attempts` — the message is never dropped. Suppressed addresses fail permanently.
    """
    message.channel = channel
    if channel in ADDRESSED_CHANNELS and message.to:
        suppressed = suppression_check(addresses=[message.to], channel=channel, organization_id=organization_id)
        if suppressed:
            reason = next(iter(suppressed.values()))
            raise ProviderPermanentError(f"Address is suppressed ({reason}).", code="suppressed")
    bindings, global_records = provider_bindings_for_channel(organization_id=organization_id, channel=channel)
    selection = _select(bindings, policy, message)
    if not selection.candidates:
        raise _no_coverage(selection, channel)
    attempts: list[SendAttempt] = []
    retry_hints: list[float] = []
    last_transient: ProviderError | None = None
    for binding in selection.candidates:
        breaker = _gate(binding, attempts, retry_hints)
        if breaker is None:
            continue
        started = time.monotonic()
        provider = None
        try:
            provider = _instantiate_or_transient(binding, global_records)
            result = provider.send(message)
            journal_record(provider_code=binding.code, messages=[message], results=[result])
        except ProviderTransientError as exc:
            _redact(exc, provider)
            breaker_failure(binding, breaker)
            attempts.append(SendAttempt(binding.record_id, binding.code, AttemptOutcome.TRANSIENT_ERROR, str(exc.detail)[:300],
                                        exc.code or "", int((time.monotonic() - started) * 1000)))
            hint = getattr(exc, "retry_after", None)
            if hint:
                retry_hints.append(float(hint))
            last_transient = exc
            continue
        except ProviderPermanentError as exc:
            _redact(exc, provider)
            refused = is_credentials_error(exc)
            attempts.append(SendAttempt(binding.record_id, binding.code,
                                        AttemptOutcome.CREDENTIALS_REFUSED if refused else AttemptOutcome.PERMANENT_ERROR,
                                        str(exc.detail)[:300], exc.code or "", int((time.monotonic() - started) * 1000)))
            if refused:
                provider_credentials_refused(binding=binding, breaker=breaker, detail=str(exc.detail))
                last_transient = exc
                continue
            exc.selection = selection.explain(binding, _passed_over(attempts[:-1]))  # type: ignore[attr-defined]
            raise _with_attempts(exc, attempts)
        breaker.record_success()
        attempts.append(SendAttempt(binding.record_id, binding.code, AttemptOutcome.SENT, duration_ms=int((time.monotonic() - started) * 1000)))
        return SendOutcome(result=result, provider_code=binding.code, provider_id=binding.record_id, attempts=attempts,
                           selection=selection.explain(binding, _passed_over(attempts)))
    tried = [a for a in attempts if a.outcome in _FAILED_OVER]
    detail = (f"All {len(tried)} provider(s) for {channel} failed; last: {last_transient.detail}" if last_transient
              else f"No {channel} provider available right now ({', '.join(sorted({a.outcome for a in attempts}))}).")
    error = ProviderTransientError(detail, code="all_providers_failed" if last_transient else _unavailable_code(attempts))
    # The soonest moment any provider may take it again (rate window, cooldown, Retry-After).
    error.retry_after = min(retry_hints) if retry_hints else None  # type: ignore[attr-defined]
    error.selection = selection.explain_none(_passed_over(attempts))  # type: ignore[attr-defined]
    raise _with_attempts(error, attempts)


def provider_send_batch_with_failover(*, organization_id: int | None, channel: str, messages: list[OutboundMessage],
                                      policy: SelectionPolicy | None = None) -> list[SendOutcome | Exception]:
    """Batch variant: each provider gets the still-unsent messages in one `send_batch`
    (anymail merge data, FCM fan-out). Messages whose selection orders the providers alike
    (the same strategy, country and draw) travel together. Results are in the order of `messages`."""
    results: list[SendOutcome | Exception | None] = [None] * len(messages)
    attempts: dict[int, list[SendAttempt]] = {i: [] for i in range(len(messages))}
    pending: list[int] = []
    suppressed = suppression_check(addresses=[m.to for m in messages], channel=channel, organization_id=organization_id) if channel in ADDRESSED_CHANNELS else {}
    for i, m in enumerate(messages):
        m.channel = channel
        reason = suppressed.get((m.to or "").strip().lower())
        if reason:
            results[i] = ProviderPermanentError(f"Address is suppressed ({reason}).", code="suppressed")
        else:
            pending.append(i)
    bindings, global_records = provider_bindings_for_channel(organization_id=organization_id, channel=channel)
    groups: dict[tuple[str, ...], tuple[Selection, list[int]]] = {}
    selections: dict[int, Selection] = {}
    for i in pending:
        selection = selections[i] = _select(bindings, policy, messages[i])
        if not selection.candidates:
            results[i] = _no_coverage(selection, channel)
            continue
        groups.setdefault(selection.order_key, (selection, []))[1].append(i)
    retry_hints: list[float] = []
    for selection, indexes in groups.values():
        _send_batch_through(selection.candidates, indexes, messages=messages, results=results, attempts=attempts,
                            retry_hints=retry_hints, global_records=global_records, channel=channel)
    for i, result in enumerate(results):
        if i in selections and isinstance(result, SendOutcome):
            chosen = next(b for b in selections[i].candidates if b.record_id == result.provider_id and b.code == result.provider_code)
            result.selection = selections[i].explain(chosen, _passed_over(attempts[i]))
        elif i in selections and result is not None and not getattr(result, "selection", ""):
            result.selection = selections[i].explain_none(_passed_over(attempts[i]))  # type: ignore[union-attr]
    return [r for r in results if r is not None]


def _send_wave(binding: ProviderBinding, global_records, channel: str, messages: list[OutboundMessage], wave: list[int],
               attempts: dict[int, list[SendAttempt]], results: list, provider: BaseProvider | None):
    """One provider call (batch or concurrent sends) for the messages at ``wave``; fills
    ``results`` and ``attempts``. Returns the provider, the indexes to try on the next provider
    (transient failures, refused credentials), whether any message was accepted and the
    provider's answer when it refused its credentials."""
    started = time.monotonic()
    try:
        provider = provider or _instantiate_or_transient(binding, global_records)
        outcomes = send_journaled(provider, [messages[i] for i in wave])
    except (ProviderTransientError, ProviderPermanentError) as exc:
        outcomes = [exc] * len(wave)
    record_provider_call(channel=channel, provider=binding.code, seconds=time.monotonic() - started, outcomes=outcomes)
    failed_over: list[int] = []
    any_success = False
    refused = ""
    for i, outcome in zip(wave, outcomes):
        if isinstance(outcome, ProviderError):
            _redact(outcome, provider)
        if isinstance(outcome, SendResult):
            any_success = True
            attempts[i].append(SendAttempt(binding.record_id, binding.code, AttemptOutcome.SENT))
            results[i] = SendOutcome(result=outcome, provider_code=binding.code, provider_id=binding.record_id, attempts=attempts[i])
        elif isinstance(outcome, ProviderTransientError):
            attempts[i].append(SendAttempt(binding.record_id, binding.code, AttemptOutcome.TRANSIENT_ERROR, str(outcome.detail)[:300], outcome.code or ""))
            failed_over.append(i)
        elif is_credentials_error(outcome):
            refused = str(outcome.detail)
            attempts[i].append(SendAttempt(binding.record_id, binding.code, AttemptOutcome.CREDENTIALS_REFUSED, refused[:300], outcome.code or ""))
            failed_over.append(i)
        else:
            attempts[i].append(SendAttempt(binding.record_id, binding.code, AttemptOutcome.PERMANENT_ERROR, str(getattr(outcome, "detail", outcome))[:300],
                                           getattr(outcome, "code", "") or ""))
            results[i] = _with_attempts(outcome, attempts[i])
    return provider, failed_over, any_success, refused


def _send_batch_through(candidates: list[ProviderBinding], indexes: list[int], *, messages: list[OutboundMessage],
                        results: list[SendOutcome | Exception | None], attempts: dict[int, list[SendAttempt]],
                        retry_hints: list[float], global_records: list[NotificationProvider], channel: str) -> None:
    """Send `messages[indexes]` through `candidates` in order, failing over what did not go."""
    pending = list(indexes)
    for binding in candidates:
        if not pending:
            break
        probe: list[SendAttempt] = []
        breaker = _gate(binding, probe, retry_hints)
        if breaker is None:
            for i in pending:
                attempts[i].extend(probe)
            continue
        # The gate took one rate-limit slot; the others are taken in waves: what the windows
        # grant goes out at once, and while the next slot is a moment away (a per-second window)
        # the rest waits for it here, within PROVIDER_RATE_WAIT_SECONDS, instead of burning a retry.
        limiter = _rate_limiter(binding)
        deadline = time.monotonic() + _rate_wait_budget()
        wave, queue = [pending[0]], pending[1:]
        granted, wait = limiter.acquire_many(len(queue))
        wave += queue[:granted]
        queue = queue[granted:]
        still: list[int] = []
        provider = None
        failing = False
        while wave:
            provider, failed_over, any_success, refused = _send_wave(binding, global_records, channel, messages, wave, attempts,
                                                                     results, provider)
            still += failed_over
            if refused:
                provider_credentials_refused(binding=binding, breaker=breaker, detail=refused)
                failing = True
                break
            if any_success:
                breaker.record_success()
            elif failed_over:
                breaker_failure(binding, breaker)
                failing = True  # the rest goes to the next provider, untried here
                break
            # Only a per-second window is worth waiting for (it alone ends in under a second).
            if not queue or not 0 < wait < 1 or time.monotonic() + wait > deadline:
                break
            time.sleep(wait)
            granted, wait = limiter.acquire_many(len(queue))
            wave, queue = queue[:granted], queue[granted:]
        if failing:
            still += queue
        elif queue:
            rate_hint = wait if wait > 0 else 1.0
            if limiter.per_second:
                # Spread the hand-back over the time the window needs for all of them.
                rate_hint = max(rate_hint, len(queue) / limiter.per_second)
            retry_hints.append(rate_hint)
            for i in queue:
                attempts[i].append(SendAttempt(binding.record_id, binding.code, AttemptOutcome.RATE_LIMITED))
            still += queue
        pending = sorted(still)
    for i in pending:
        tried = any(a.outcome in _FAILED_OVER for a in attempts[i])
        code = "all_providers_failed" if tried else _unavailable_code(attempts[i])
        detail = (f"Every {channel} provider is at its rate limit; waiting for a slot." if code == RATE_LIMITED_CODE
                  else f"No {channel} provider could send this message now.")
        error = ProviderTransientError(detail, code=code)
        error.retry_after = min(retry_hints) if retry_hints else None  # type: ignore[attr-defined]
        results[i] = _with_attempts(error, attempts[i])


# --- suppression -----------------------------------------------------------------------------


def suppression_add(*, address: str, channel: str, reason: str, organization_id: int | None, provider_code: str = "", detail: str = "") -> SuppressedAddress:
    """Suppress an address for one organization, or (organization_id None, the platform's
    call only) for every organization. No default: a caller always says which."""
    obj = SuppressedAddress(organization_id=organization_id, address=address.strip().lower(), channel=channel, reason=reason,
                            provider_code=provider_code, detail=detail[:500])
    try:
        with transaction.atomic():
            obj.save()
    except IntegrityError:
        # organization_id=None is the IS NULL lookup (the platform-wide row); the stubs refuse None.
        obj = SuppressedAddress.objects.get(organization_id=organization_id,  # type: ignore[misc]
                                            address__iexact=address.strip(), channel=channel)
    return obj


# --- provider records (admin API) ------------------------------------------------------------


def _validate_record(*, code: str, channel: str, config: dict[str, Any], credentials: dict[str, Any], env_refs: dict[str, Any],
                     organization_id: int | None = None, actor_id: int | None = None) -> None:
    cls = registry.get(code)
    if channel and channel != cls.channel:
        raise ValidationError({"channel": [f"Provider {code!r} serves {cls.channel}, not {channel}."]})
    if not isinstance(config, dict):
        raise ValidationError({"config": ["Must be an object."]})
    leaked = sorted(set(config) & set(cls.sensitive_params))
    if leaked:
        raise ValidationError({"config": [f"Sensitive parameters belong in secrets: {', '.join(leaked)}."]})
    problems = cls.config_errors(config) + provider_config_errors(config)
    if problems:
        raise ValidationError({"config": problems})
    env_problems = env_references_check(env_refs)
    if env_problems:
        raise ValidationError({"secret_env_refs": env_problems})
    if organization_id is not None and not _platform_admin(actor_id):
        endpoint_problems = endpoint_errors(cls, config=config, credentials=credentials)
        if endpoint_problems:
            raise ValidationError({"config": endpoint_problems})


def _platform_admin(actor_id: int | None) -> bool:
    """Internal callers (no actor: commands, data migrations) and superusers may point an
    organization's record anywhere; organization admins may not."""
    if actor_id is None:
        return True
    from django.contrib.auth import get_user_model

    return get_user_model().objects.filter(pk=actor_id, is_superuser=True, is_active=True).exists()


@transaction.atomic(durable=True)
def provider_create(*, organization_id: int | None, code: str, name: str, channel: str = "", description: str = "", priority: int = 0, is_active: bool = True,
                    is_default: bool = False, config: dict[str, Any] | None = None, secrets: dict[str, Any] | None = None,
                    secret_env_refs: dict[str, str] | None = None, rate_limit_per_minute: int | None = None,
                    daily_limit: int | None = None, actor_id: int | None = None, check_credentials: bool = False) -> NotificationProvider:
    """`check_credentials` (the API; the admin form runs the full health check itself, with an
    explicit "save without checking"): an active record given secrets whose service
    refuses them is not saved (one health check against the service)."""
    cls = registry.get(code)
    config, secrets, secret_env_refs = dict(config or {}), dict(secrets or {}), dict(secret_env_refs or {})
    _validate_record(code=code, channel=channel, config=config, credentials=secrets, env_refs=secret_env_refs,
                     organization_id=organization_id, actor_id=actor_id)
    # organization_id=None is the IS NULL lookup (a global record); the stubs refuse None.
    if NotificationProvider.objects.filter(organization_id=organization_id, code=code).exists():  # type: ignore[misc]
        raise ValidationError({"code": [f"A {code!r} provider already exists for this scope."]})
    record = NotificationProvider.objects.create(
        organization_id=organization_id, code=code, channel=cls.channel, name=name, description=description, priority=priority, is_active=is_active,
        is_default=is_default, config=config, secrets=secrets_encrypt(secrets), secret_env_refs=secret_env_refs,
        rate_limit_per_minute=rate_limit_per_minute, daily_limit=daily_limit,
    )
    if check_credentials and is_active and secrets:
        _credentials_check(record)
    _configured_audit(record, actor_id=actor_id, change="created", keys=sorted(secrets))
    return record


@transaction.atomic(durable=True)
def provider_update(*, provider_id: int, actor_id: int | None = None, secrets: dict[str, Any] | None = None,
                    check_credentials: bool = False, **fields: Any) -> NotificationProvider:
    """Partial update. `secrets` merges into the stored ones; a key set to null or "" is removed.
    `check_credentials`: as for `provider_create`, when new secrets are given."""
    record = NotificationProvider.objects.select_for_update().get(pk=provider_id)
    allowed = {"name", "priority", "is_active", "is_default", "config", "secret_env_refs", "rate_limit_per_minute", "daily_limit", "description"}
    unknown = set(fields) - allowed
    if unknown:
        raise ValidationError({k: ["This field cannot be changed."] for k in sorted(unknown)})
    for key, value in fields.items():
        setattr(record, key, value)
    merged = secrets_decrypt(record.secrets)
    for key, value in (secrets or {}).items():
        if value in (None, ""):
            merged.pop(key, None)
        else:
            merged[key] = value
    _validate_record(code=record.code, channel=record.channel, config=record.config or {}, credentials=merged, env_refs=record.secret_env_refs or {},
                     organization_id=record.organization_id, actor_id=actor_id)
    record.secrets = secrets_encrypt(merged)
    record.save()
    if check_credentials and record.is_active and any(v not in (None, "") for v in (secrets or {}).values()):
        _credentials_check(record)
    _configured_audit(record, actor_id=actor_id, change="updated", keys=sorted(secrets or {}), fields=sorted(fields))
    return record


def provider_credentials_probe(*, provider: BaseProvider | None = None, code: str = "", config: dict[str, Any] | None = None,
                               credentials: dict[str, Any] | None = None) -> HealthResult:
    """One health check of a provider (or of these settings, not yet saved) against its service:
    what the admin form and `check_credentials` both ask before a record is saved. Never raises;
    the answer's detail is redacted."""
    try:
        provider = provider or registry.get(code)(config=dict(config or {}), credentials=dict(credentials or {}))
        result = provider.health_check()
    except Exception as exc:  # noqa: BLE001 - a misconfigured provider may fail to even start
        detail = str(exc.detail) if isinstance(exc, ProviderError) else exc.__class__.__name__
        result = HealthResult(ok=False, response_time_ms=None, detail=detail)
    if provider is not None:
        result.detail = provider.redact(result.detail or "")
    return result


def _credentials_check(record: NotificationProvider) -> None:
    """Refuse (and so roll back) a record whose service answers that its credentials are wrong.
    Anything else (unreachable, slow) is the health check's business, not a reason to refuse."""
    try:
        provider = provider_instantiate(binding_for_record(record))
    except ImproperlyConfigured:
        return
    result = provider_credentials_probe(provider=provider)
    if result.credentials_refused:
        raise ValidationError({"secrets": [f"{record.code}: the service refused these credentials ({result.detail[:200]})."]},
                              code="credentials_refused")
    if record.health_status == ProviderHealthStatus.UNHEALTHY and result.ok:
        # New credentials that work end the outage a refusal had declared.
        NotificationProvider.objects.filter(pk=record.pk).update(health_status=ProviderHealthStatus.HEALTHY, health_message="")
        CircuitBreaker(f"db{record.pk}", CircuitPolicy.for_config(record.config)).reset()


@transaction.atomic(durable=True)
def provider_delete(*, provider_id: int, actor_id: int | None = None) -> None:
    record = NotificationProvider.objects.select_for_update().get(pk=provider_id)
    _configured_audit(record, actor_id=actor_id, change="deleted", keys=[])
    record.delete()


def _configured_audit(record: NotificationProvider, *, actor_id: int | None, change: str, keys: list[str], fields: list[str] | None = None) -> None:
    audit_report(dict(
        organization_id=record.organization_id, action=AuditAction.PROVIDER_CONFIGURED, actor_type=AuditActorType.USER if actor_id else AuditActorType.SYSTEM,
        actor_id=str(actor_id or ""), provider_id=record.pk if change != "deleted" else None, user_id=actor_id,
        # Names of the secrets changed, never their values.
        details={"change": change, "code": record.code, "provider_id": record.pk, "secret_keys": keys, "fields": fields or []},
    ))
