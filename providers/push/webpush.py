"""Web Push (RFC 8030 transport, RFC 8291 payload encryption, RFC 8292 VAPID) via pywebpush.

One message goes to every Web Push subscription of the recipient user; a push service
answering 404 or 410 says the subscription is gone, so it is deleted.
"""
from __future__ import annotations

import json
import logging
import uuid

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
        from ..models import PushSubscription, PushSubscriptionKind

        user_id = recipient_user_id(message)
        subscriptions = list(PushSubscription.objects.filter(user_id=user_id, kind=PushSubscriptionKind.WEBPUSH))
        subscriptions = device_targets(message, subscriptions, endpoint_of=lambda item: item.endpoint)
        if not subscriptions:
            raise ProviderPermanentError("The recipient has no Web Push subscription.", code="no_subscription")
        key, claims = self._vapid()
        ttl, urgency = push_ttl(message)
        data = json.dumps(push_payload(message))
        delivered: list[str] = []
        gone: list[int] = []
        ok_ids: list[int] = []
        errors: list[Exception] = []
        for subscription in subscriptions:
            try:
                # A subscriber chose this URL: resolve it once, public addresses only, https, and
                # post to exactly that address, following no redirect (common.outbound).
                target = outbound.url_resolve_public(subscription.endpoint)
                outbound.require_https(target)
            except outbound.OutboundRefused as exc:
                logger.info("web push subscription %s refused: %s", subscription.pk, exc.reason)
                errors.append(ProviderPermanentError("The push endpoint cannot be used.", code="endpoint_refused"))
                continue
            try:
                with outbound.pinned_session(target) as session:
                    response = self._post(subscription, session=session, data=data, key=key, claims=claims,
                                          ttl=ttl, urgency=urgency, message=message)
            except WebPushException as exc:
                status = getattr(exc.response, "status_code", None)
                if status in (404, 410):
                    gone.append(subscription.pk)
                    continue
                retry_after = exc.response.headers.get("Retry-After") if exc.response is not None else None
                errors.append(transient_or_permanent_for_status(status, f"push service answered HTTP {status}", retry_after=float(retry_after) if retry_after and retry_after.isdigit() else None))
                continue
            except requests.RequestException as exc:
                errors.append(ProviderTransientError(f"push service unreachable: {exc.__class__.__name__}", code="connection"))
                continue
            delivered.append(response.headers.get("Location") or f"webpush:{subscription.pk}:{uuid.uuid4().hex}")
            ok_ids.append(subscription.pk)
        if gone:
            PushSubscription.objects.filter(pk__in=gone).delete()
        if delivered:
            PushSubscription.objects.filter(pk__in=ok_ids).update(last_success_at=timezone.now())
            return SendResult(provider_message_id=delivered[0], status=SendStatus.SENT,
                              raw={"devices": len(delivered), "removed": len(gone), "failed": len(errors)})
        if errors:
            # Any transient failure makes the whole send worth retrying.
            transient = [e for e in errors if isinstance(e, ProviderTransientError)]
            raise transient[0] if transient else errors[0]
        raise ProviderPermanentError("Every Web Push subscription of the recipient has expired.", code="no_subscription")

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
