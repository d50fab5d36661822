"""Firebase Cloud Messaging HTTP v1 with a service account (google-auth).

Credentials: service_account (the JSON key, as an object or a string). Config: project_id
(default: the key's), base_url (default https://fcm.googleapis.com).
FCM v1 has no multicast or batch endpoint any more; `send_batch` (a delivery batch of up to
500 push messages) and multi-device sends fan out concurrently over the record's kept-alive
authorized session, at most PROVIDER_MAX_IN_FLIGHT at once (providers/concurrency.py). A token FCM reports UNREGISTERED is deleted.
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterable
from typing import Any

import requests
from google.auth.exceptions import GoogleAuthError
from google.auth.transport.requests import AuthorizedSession
from google.auth.transport.requests import Request as GoogleAuthRequest
from google.oauth2 import service_account

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
from .common import click_url, device_targets, push_data, push_payload, push_ttl, recipient_user_id

SCOPES = ["https://www.googleapis.com/auth/firebase.messaging"]
_credentials_cache: dict[str, service_account.Credentials] = {}
_cache_lock = threading.Lock()


def _credentials(info: dict[str, Any]) -> service_account.Credentials:
    # Keep one credentials object per key so its access token is reused until it expires.
    fingerprint = hashlib.sha256(json.dumps(info, sort_keys=True).encode()).hexdigest()
    with _cache_lock:
        creds = _credentials_cache.get(fingerprint)
        if creds is None:
            creds = service_account.Credentials.from_service_account_info(info, scopes=SCOPES)
            _credentials_cache[fingerprint] = creds
        return creds


def _authorized_session(creds) -> AuthorizedSession:
    from ..concurrency import pool_session

    return pool_session(AuthorizedSession(creds))


@register
class FcmProvider(BaseProvider):
    code = "fcm"
    channel = Channel.PUSH
    name = "Firebase Cloud Messaging"
    sensitive_params = ("service_account",)
    required_params = ("service_account",)
    env_credentials = {"service_account": "FCM_SERVICE_ACCOUNT_JSON"}

    def _info(self) -> dict[str, Any]:
        info = self.require("service_account")
        if isinstance(info, str):
            try:
                info = json.loads(info)
            except ValueError:
                raise ProviderPermanentError("FCM service account is not valid JSON.", code="configuration") from None
        return info

    def _session(self) -> tuple[AuthorizedSession, str]:
        info = self._info()
        project = self.config.get("project_id") or info.get("project_id")
        if not project:
            raise ProviderPermanentError("FCM project_id is not configured.", code="configuration")
        token_uri = str(info.get("token_uri") or "")
        if token_uri:
            # The key's JSON names where google-auth posts its signed assertion: whoever supplied
            # the key chose it, so it must be a public https URL like any other tenant endpoint.
            try:
                outbound.url_resolve_public(token_uri, schemes=("https", "http") if outbound.loopback_allowed() else ("https",))
            except outbound.OutboundRefused:
                raise ProviderPermanentError("FCM service account token_uri cannot be used.", code="configuration") from None
        try:
            creds = _credentials(info)
        except (ValueError, GoogleAuthError):
            raise ProviderPermanentError("FCM service account key is unusable.", code="configuration") from None
        # Refresh once, up front: concurrent sends on a stale token would each fetch a new one.
        with _cache_lock:
            if not creds.valid:
                try:
                    creds.refresh(GoogleAuthRequest())
                except GoogleAuthError as exc:
                    if getattr(exc, "retryable", False):
                        raise ProviderTransientError("FCM token endpoint unavailable.", code="auth_unavailable") from None
                    raise ProviderPermanentError(f"FCM authentication failed: {exc.__class__.__name__}", code="auth") from None
                except requests.RequestException as exc:
                    raise ProviderTransientError(f"FCM token endpoint unreachable: {exc.__class__.__name__}", code="connection") from None
        base = (self.config.get("base_url") or "https://fcm.googleapis.com").rstrip("/")
        return self.pooled("fcm", lambda: _authorized_session(creds)), f"{base}/v1/projects/{project}/messages:send"

    def _body(self, message: OutboundMessage, token: str) -> dict[str, Any]:
        ttl, urgency = push_ttl(message)
        payload = push_payload(message)
        options = message.options
        data = push_data(message)
        if message.idempotency_key:
            data["delivery_id"] = str(message.idempotency_key)
        url = click_url(message)
        if url:
            data["url"] = url
        android = options.get("android") or {}
        android_notification = {k: v for k, v in (
            ("channel_id", android.get("channel_id")), ("icon", options.get("icon")), ("sound", options.get("sound")),
            ("click_action", options.get("click_action") if options.get("click_action") != url else None),
        ) if v not in (None, "")}
        if isinstance(options.get("badge"), int):
            android_notification["notification_count"] = options["badge"]
        ios = options.get("ios") or {}
        aps: dict[str, Any] = {}
        badge = ios.get("badge", options.get("badge") if isinstance(options.get("badge"), int) else None)
        if badge is not None:
            aps["badge"] = badge
        if ios.get("sound") or options.get("sound"):
            aps["sound"] = ios.get("sound") or options.get("sound")
        if ios.get("content_available"):
            aps["content-available"] = 1
        web = options.get("web") or {}
        web_notification = {k: v for k, v in (
            ("icon", web.get("icon") or options.get("icon")),
            ("badge", web.get("badge") or (options.get("badge") if isinstance(options.get("badge"), str) else None)),
            ("requireInteraction", True if web.get("require_interaction") else None),
        ) if v not in (None, "")}
        webpush: dict[str, Any] = {"headers": {"TTL": str(ttl), "Urgency": urgency}}
        if web_notification:
            webpush["notification"] = web_notification
        if url.startswith("https://"):
            webpush["fcm_options"] = {"link": url}
        body: dict[str, Any] = {
            "message": {
                "token": token,
                "notification": {"title": payload["title"], "body": payload["body"]},
                "data": data,
                "android": {"ttl": f"{ttl}s", "priority": "HIGH" if urgency == "high" else "NORMAL"},
                "webpush": webpush,
                "apns": {"headers": {"apns-priority": "10" if urgency == "high" else "5",
                                     "apns-expiration": str(int(time.time()) + ttl)}},
            }
        }
        if android_notification:
            body["message"]["android"]["notification"] = android_notification
        if aps:
            body["message"]["apns"]["payload"] = {"aps": aps}
        return body

    def _post(self, session: AuthorizedSession, url: str, body: dict[str, Any]) -> tuple[str | None, Exception | None, bool]:
        """→ (message name, error, token gone)."""
        try:
            response = session.post(url, json=body, timeout=self.timeout)
        except GoogleAuthError as exc:
            if getattr(exc, "retryable", False):
                return None, ProviderTransientError("FCM token endpoint unavailable.", code="auth_unavailable"), False
            return None, ProviderPermanentError(f"FCM authentication failed: {exc.__class__.__name__}", code="auth"), False
        except requests.RequestException as exc:
            return None, ProviderTransientError(f"FCM unreachable: {exc.__class__.__name__}", code="connection"), False
        if response.status_code < 300:
            return response.json().get("name", ""), None, False
        try:
            error = response.json().get("error", {})
        except ValueError:
            error = {}
        fcm_code = ""
        for detail in error.get("details", []) or []:
            fcm_code = detail.get("errorCode", fcm_code)
        status_name = error.get("status", "")
        if response.status_code == 404 or fcm_code == "UNREGISTERED" or (fcm_code == "INVALID_ARGUMENT" and "token" in error.get("message", "").lower()):
            return None, ProviderPermanentError("FCM token is no longer registered.", code="unregistered"), True
        retry_after = response.headers.get("Retry-After")
        err = transient_or_permanent_for_status(response.status_code, f"FCM {fcm_code or status_name or response.status_code}",
                                                retry_after=float(retry_after) if retry_after and retry_after.isdigit() else None)
        return None, err, False

    def _tokens_for(self, user_ids: Iterable[int]) -> dict[int, list[tuple[int, str]]]:
        from ..models import PushSubscription, PushSubscriptionKind

        tokens: dict[int, list[tuple[int, str]]] = {}
        for pk, user_id, endpoint in PushSubscription.objects.filter(user_id__in=set(user_ids), kind=PushSubscriptionKind.FCM).values_list("pk", "user_id", "endpoint"):
            tokens.setdefault(user_id, []).append((pk, endpoint))
        return tokens

    def send(self, message: OutboundMessage) -> SendResult:
        result = self.send_batch([message])[0]
        if isinstance(result, Exception):
            raise result
        return result

    def send_batch(self, messages: Iterable[OutboundMessage]) -> list[SendResult | Exception]:
        messages = list(messages)
        out: list[SendResult | Exception | None] = [None] * len(messages)
        user_ids: list[int | None] = []
        for i, m in enumerate(messages):
            try:
                user_ids.append(recipient_user_id(m))
            except ProviderPermanentError as exc:
                user_ids.append(None)
                out[i] = exc
        tokens = self._tokens_for(u for u in user_ids if u is not None)
        jobs: list[tuple[int, int, str]] = []  # (message index, subscription pk, token)
        for i, user_id in enumerate(user_ids):
            if user_id is None:
                continue
            if not tokens.get(user_id):
                out[i] = ProviderPermanentError("The recipient has no FCM device.", code="no_subscription")
                continue
            targets = device_targets(messages[i], tokens[user_id], endpoint_of=lambda item: item[1])
            if not targets:
                out[i] = ProviderPermanentError("None of the targeted devices belongs to the recipient.", code="no_subscription")
                continue
            jobs.extend((i, pk, token) for pk, token in targets)
        if jobs:
            session, url = self._session()
            from ..concurrency import send_concurrently

            # FCM's HTTP v1 API takes one message per request (its multi-message batch endpoint
            # is retired): a deliver_batch's 500 messages go out side by side over the record's
            # kept-alive session, at most PROVIDER_MAX_IN_FLIGHT at once per record.
            answers = send_concurrently(("send", self.code, self.record_id or id(self)),
                                        lambda job: self._post(session, url, self._body(messages[job[0]], job[2])), jobs)
            names: dict[int, list[str]] = {}
            errors: dict[int, list[Exception]] = {}
            gone: list[int] = []
            for (i, pk, _token), answer in zip(jobs, answers):
                if isinstance(answer, Exception):
                    raise answer  # _post answers every failure of the request itself: this is a bug
                name, error, is_gone = answer
                if is_gone:
                    gone.append(pk)
                if name:
                    names.setdefault(i, []).append(name)
                elif error is not None:
                    errors.setdefault(i, []).append(error)
            if gone:
                from ..models import PushSubscription

                PushSubscription.objects.filter(pk__in=gone).delete()
            for i in {job[0] for job in jobs}:
                if names.get(i):
                    out[i] = SendResult(provider_message_id=names[i][0], status=SendStatus.SENT,
                                        raw={"devices": len(names[i]), "failed": len(errors.get(i, []))})
                else:
                    errs = errors.get(i, [])
                    transient = [e for e in errs if isinstance(e, ProviderTransientError)]
                    out[i] = transient[0] if transient else (errs[0] if errs else ProviderPermanentError("No FCM device accepted the message.", code="no_subscription"))
        return [r for r in out if r is not None]

    def health_check(self) -> HealthResult:
        started = time.monotonic()
        try:
            session, url = self._session()
            # validate_only checks auth and the request shape without notifying anyone.
            response = session.post(url, json={"validate_only": True, "message": {"topic": "troubadour-health", "data": {"ping": "1"}}}, timeout=self.timeout)
        except ProviderPermanentError as exc:
            return HealthResult(ok=False, response_time_ms=self._elapsed_ms(started), detail=str(exc))
        except (GoogleAuthError, requests.RequestException) as exc:
            return HealthResult(ok=False, response_time_ms=self._elapsed_ms(started), detail=f"FCM unreachable: {exc.__class__.__name__}")
        ok = response.status_code < 300
        return HealthResult(ok=ok, response_time_ms=self._elapsed_ms(started), detail="" if ok else f"HTTP {response.status_code}")
