"""Web Push (RFC 8030 transport, RFC 8291 payload encryption, RFC 8292 VAPID) via pywebpush.

One message goes to every Web Push subscription of the recipient user; a push service
answering 404 or 410 says the subscription is gone, so it is deleted. A batch reads its
recipients' subscriptions in one query and posts to the devices concurrently.
"""
from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable

import requests
from django.conf import settings
from django.utils import timezone
from pywebpush import WebPushException, webpush

from common import outbound
from common.exceptions import ProviderPermanentError, ProviderTransientError
from common.channels import Channel

from ..base import (
    BaseProvider,
    HealthResult,
    OutboundMessage,
    SendResult,
    SendStatus,
    transient_or_permanent_for_status,
)
from ..registry import register
from .common import device_targets, push_payload, push_ttl, recipient_user_id

logger = logging.getLogger(__name__)


@register
class WebPushProvider(BaseProvider):
    """Credentials: vapid_private_key (default settings.VAPID_PRIVATE_KEY).
    Config: vapid_subject (default settings.VAPID_SUBJECT)."""

    code = "webpush"
    channel = Channel.PUSH
    name = "Web Push"
    sensitive_params = ("vapid_private_key",)

    def _vapid(self) -> tuple[str, dict[str, str]]:
        key = self.setting("vapid_private_key") or getattr(settings, "VAPID_PRIVATE_KEY", "")
        subject = self.setting("vapid_subject") or getattr(settings, "VAPID_SUBJECT", "") or "mailto:admin@troubadour.local"
        if not key:
            raise ProviderPermanentError("Web Push is not configured (VAPID_PRIVATE_KEY).", code="configuration")
        return key, {"sub": subject}

    def send(self, message: OutboundMessage) -> SendResult:
        result = self.send_batch([message])[0]
        if isinstance(result, Exception):
            raise result
        return result

    def send_batch(self, messages: Iterable[OutboundMessage]) -> list[SendResult | Exception]:
        """Every recipient's subscriptions in one query, then one POST per device from the send
        pool (at most PROVIDER_MAX_IN_FLIGHT at once per record); subscriptions the push service
        calls gone are deleted and the others' last success stamped, in the calling thread."""
        from ..concurrency import send_concurrently
        from ..models import PushSubscription, PushSubscriptionKind

        messages = list(messages)
        out: list[SendResult | Exception | None] = [None] * len(messages)
        user_ids: dict[int, int] = {}
        for index, message in enumerate(messages):
            try:
                user_ids[index] = recipient_user_id(message)
            except ProviderPermanentError as exc:
                out[index] = exc
        by_user: dict[int, list] = {}
        for subscription in PushSubscription.objects.filter(user_id__in=set(user_ids.values()), kind=PushSubscriptionKind.WEBPUSH):
            by_user.setdefault(subscription.user_id, []).append(subscription)
        jobs: list[tuple[int, PushSubscription]] = []
        for index, user_id in user_ids.items():
            targets = device_targets(messages[index], by_user.get(user_id, []), endpoint_of=lambda item: item.endpoint)
            if not targets:
                out[index] = ProviderPermanentError("The recipient has no Web Push subscription.", code="no_subscription")
            jobs.extend((index, subscription) for subscription in targets)
        if jobs:
            try:
                key, claims = self._vapid()
            except ProviderPermanentError as exc:
                return [r if r is not None else exc for r in out]
            prepared = {index: (push_ttl(messages[index]), json.dumps(push_payload(messages[index])))
                        for index in {i for i, _ in jobs}}

            def post(job: tuple[int, PushSubscription]) -> tuple[str, object]:
                index, subscription = job
                (ttl, urgency), data = prepared[index]
                return self._post_one(subscription, data=data, key=key, claims=claims, ttl=ttl, urgency=urgency,
                                      message=messages[index])

            answers = send_concurrently(("send", self.code, self.record_id or id(self)), post, jobs)
            delivered: dict[int, list[str]] = {}
            errors: dict[int, list[Exception]] = {}
            gone: list[int] = []
            ok_ids: list[int] = []
            for (index, subscription), answer in zip(jobs, answers):
                if isinstance(answer, Exception):
                    raise answer  # _post_one answers every failure of the request itself: this is a bug
                kind, value = answer
                if kind == "sent":
                    delivered.setdefault(index, []).append(str(value))
                    ok_ids.append(subscription.pk)
                elif kind == "gone":
                    gone.append(subscription.pk)
                    errors.setdefault(index, [])
                else:
                    errors.setdefault(index, []).append(value)  # type: ignore[arg-type]
            if gone:
                PushSubscription.objects.filter(pk__in=gone).delete()
            if ok_ids:
                PushSubscription.objects.filter(pk__in=ok_ids).update(last_success_at=timezone.now())
            for index in {i for i, _ in jobs}:
                failed = errors.get(index, [])
                if delivered.get(index):
                    out[index] = SendResult(provider_message_id=delivered[index][0], status=SendStatus.SENT,
                                            raw={"devices": len(delivered[index]),
                                                 "removed": sum(1 for (i, s) in jobs if i == index and s.pk in gone),
                                                 "failed": len(failed)})
                elif failed:
                    # Any transient failure makes the whole send worth retrying.
                    transient = [e for e in failed if isinstance(e, ProviderTransientError)]
                    out[index] = transient[0] if transient else failed[0]
                else:
                    out[index] = ProviderPermanentError("Every Web Push subscription of the recipient has expired.",
                                                        code="no_subscription")
        return [r for r in out if r is not None]

    def _post_one(self, subscription, *, data: str, key: str, claims: dict[str, str], ttl: int, urgency: str,
                  message: OutboundMessage) -> tuple[str, object]:
        """One device (any thread, no database): ("sent", location), ("gone", None) or ("error", exc)."""
        try:
            # A subscriber chose this URL: resolve it once, public addresses only, https, and
            # post to exactly that address, following no redirect (common.outbound).
            target = outbound.url_resolve_public(subscription.endpoint)
            outbound.require_https(target)
        except outbound.OutboundRefused as exc:
            logger.info("web push subscription %s refused: %s", subscription.pk, exc.reason)
            return "error", ProviderPermanentError("The push endpoint cannot be used.", code="endpoint_refused")
        try:
            with outbound.pinned_session(target) as session:
                response = self._post(subscription, session=session, data=data, key=key, claims=claims,
                                      ttl=ttl, urgency=urgency, message=message)
        except WebPushException as exc:
            status = getattr(exc.response, "status_code", None)
            if status in (404, 410):
                return "gone", None
            retry_after = exc.response.headers.get("Retry-After") if exc.response is not None else None
            return "error", transient_or_permanent_for_status(
                status, f"push service answered HTTP {status}",
                retry_after=float(retry_after) if retry_after and retry_after.isdigit() else None)
        except requests.RequestException as exc:
            return "error", ProviderTransientError(f"push service unreachable: {exc.__class__.__name__}", code="connection")
        return "sent", response.headers.get("Location") or f"webpush:{subscription.pk}:{uuid.uuid4().hex}"

    def _post(self, subscription, *, session: requests.Session, data: str, key: str, claims: dict[str, str], ttl: int,
              urgency: str, message: OutboundMessage):
        return webpush(
            subscription_info=subscription.subscription_info(),
            data=data,
            vapid_private_key=key,
            vapid_claims=dict(claims),
            ttl=ttl,
            headers={"Urgency": urgency, "Topic": str(message.idempotency_key)[:32]} if message.idempotency_key else {"Urgency": urgency},
            timeout=self.timeout,
            requests_session=session,
        )

    def health_check(self) -> HealthResult:
        try:
            from py_vapid import Vapid

            key, _ = self._vapid()
            Vapid.from_string(key) if "BEGIN" not in key else Vapid.from_pem(key.encode())
        except Exception as exc:  # noqa: BLE001 — a malformed key in any of the formats py_vapid accepts
            return HealthResult(ok=False, response_time_ms=0, detail=f"VAPID key unusable: {exc.__class__.__name__}")
        return HealthResult(ok=True, response_time_ms=0, detail="VAPID key loaded")
