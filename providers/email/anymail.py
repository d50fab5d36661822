"""Email service providers through django-anymail: SendGrid, Amazon SES, Mailgun, Postmark.

The anymail backend is built per send with `get_connection(backend, **credentials)`, so each
organization's own credentials work side by side with the platform's. Every ESP accepts an
API base URL in config (`api_url`; SES: `endpoint_url`) so tests and regional accounts can
point it elsewhere. Status comes back through anymail's tracking webhooks, normalized in
`providers.webhooks`: `/webhooks/anymail/<esp>/tracking/` for the platform's account,
`/webhooks/anymail/<esp>/tracking/<provider id>/` for a record's own account, authenticated
by the record's `webhook_secret` (basic auth `user:password`), SendGrid's
`webhook_verification_key` or Mailgun's `webhook_signing_key`.
"""
from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any, ClassVar, cast

import requests
from anymail.exceptions import (
    AnymailAPIError,
    AnymailError,
    AnymailRecipientsRefused,
    AnymailUnsupportedFeature,
)
from anymail.message import AnymailMessage
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import get_connection

from common.exceptions import ProviderPermanentError, ProviderTransientError
from common.channels import Channel

from ..aws import AWS_DOMAINS
from ..base import (
    BaseProvider,
    HealthResult,
    OutboundMessage,
    SendResult,
    SendStatus,
    transient_or_permanent_for_status,
)
from ..registry import register
from .common import build_email, unsubscribe_headers


def _anymail_error(exc: Exception) -> Exception:
    if isinstance(exc, AnymailRecipientsRefused):
        return ProviderPermanentError("Recipient refused by the email provider.", code="invalid_recipient")
    if isinstance(exc, (ImproperlyConfigured, AnymailUnsupportedFeature)):
        # The same message would fail the same way next time: not a reason to retry.
        return ProviderPermanentError(f"Email provider misconfigured: {str(exc).splitlines()[0][:200]}", code="configuration")
    status = getattr(exc, "status_code", None)
    cause = exc.__cause__ or exc.__context__
    if status is None and cause is not None:
        # boto3 (SES) errors carry the HTTP status in their response metadata.
        meta = getattr(cause, "response", None)
        if isinstance(meta, dict):
            status = meta.get("ResponseMetadata", {}).get("HTTPStatusCode")
    detail = str(exc).splitlines()[0][:300] if str(exc) else exc.__class__.__name__
    if status is None and isinstance(exc, AnymailAPIError) and cause is None:
        # An API error answer without HTTP status (e.g. a rejected payload): not transient.
        return ProviderPermanentError(detail, code="api_error")
    return transient_or_permanent_for_status(status, detail)


class AnymailEmailProvider(BaseProvider):
    channel = Channel.EMAIL
    backend: ClassVar[str] = ""
    esp_name: ClassVar[str] = ""
    supports_webhooks = True
    # Open/click tracking set per message. Amazon SES refuses the flags (even False): its
    # tracking is a property of the configuration set.
    per_message_tracking: ClassVar[bool] = True
    # One API call for many recipients with merge data; SES only batches stored templates.
    merge_batches: ClassVar[bool] = True
    # Recipients per merged call: SendGrid takes 1,000 personalizations, Mailgun 1,000
    # recipient-variables, Postmark 500 messages per batch call.
    merge_batch_size: ClassVar[int] = 1000
    concurrent_sends = True  # single sends are one HTTP call over the record's kept-alive session

    def connection_kwargs(self) -> dict[str, Any]:
        raise NotImplementedError

    def _connection(self):
        """The record's ESP backend, opened once per process and configuration: its HTTP session
        (keep-alive pool sized to the in-flight limit) serves every send, concurrent ones too."""
        return self.pooled("anymail", self._open_connection)

    def _open_connection(self):
        connection = get_connection(self.backend, fail_silently=False, **self.connection_kwargs())
        connection.open()
        session = getattr(connection, "session", None)
        if session is not None:
            from ..concurrency import pool_session

            pool_session(session)
        return connection

    def _apply_options(self, email: AnymailMessage, message: OutboundMessage) -> None:
        if self.per_message_tracking:
            email.track_opens = message.track_opens
            email.track_clicks = message.track_clicks
        if message.idempotency_key:
            email.metadata = {"delivery_id": str(message.idempotency_key)}
        tags = message.metadata.get("tags")
        if tags:
            email.tags = [str(t) for t in tags][:5]
        template_id = message.options.get("template_id")
        if template_id:
            # The ESP's own stored template, filled with the event's template data.
            email.template_id = str(template_id)
            email.merge_global_data = dict(message.options.get("template_data") or {})

    def send(self, message: OutboundMessage) -> SendResult:
        # build_email builds an instance of message_class: an AnymailMessage here.
        email = cast(AnymailMessage, build_email(message, message_class=AnymailMessage, from_email=self.setting("from_email"),
                                                 connection=self._connection()))
        self._apply_options(email, message)
        try:
            email.send()
        except (AnymailError, ImproperlyConfigured) as exc:
            raise _anymail_error(exc) from None
        status = email.anymail_status
        recipient = status.recipients.get(message.to.lower()) or next(iter(status.recipients.values()), None)
        message_id = (recipient.message_id if recipient else None) or status.message_id
        return SendResult(
            provider_message_id=str(message_id or ""),
            status=SendStatus.QUEUED if (recipient and recipient.status == "queued") else SendStatus.SENT,
            raw={"esp": self.esp_name, "status": sorted(status.status or [])},
        )

    def send_batch(self, messages: Iterable[OutboundMessage]) -> list[SendResult | Exception]:
        """Messages with identical content go out as one ESP call with per-recipient merge data
        (each recipient gets a separate message; unsubscribe headers and delivery ids differ)."""
        messages = list(messages)
        results: list[SendResult | Exception | None] = [None] * len(messages)
        groups: OrderedDict[tuple, list[int]] = OrderedDict()
        seen: dict[tuple, int] = {}
        for index, m in enumerate(messages):
            if m.attachments or m.cc or m.bcc or m.options.get("template_id") or not self.merge_batches:
                groups[("single", index)] = [index]
                continue
            key = (m.subject, m.title, m.text, m.html, m.from_address, m.reply_to, m.track_opens, m.track_clicks,
                   tuple(sorted(m.headers.items())))
            # Merge data is keyed by address: a second message to the same address in this batch
            # goes in another call. Each call holds at most `merge_batch_size` recipients.
            occurrence = seen.get((key, (m.to or "").lower()), 0)
            seen[(key, (m.to or "").lower())] = occurrence + 1
            part = (key, occurrence, 0)
            while len(groups.get(part, ())) >= self.merge_batch_size:
                part = (key, occurrence, part[2] + 1)
            groups.setdefault(part, []).append(index)
        connection = self._connection()

        def send_group(indexes: list[int]) -> list[SendResult | Exception]:
            if len(indexes) == 1:
                try:
                    return [self.send(messages[indexes[0]])]
                except (ProviderTransientError, ProviderPermanentError) as exc:
                    return [exc]
            return self._send_merged([messages[i] for i in indexes], connection)

        from ..concurrency import send_concurrently

        # Each merged call (up to 1,000 recipients) and each single message is one request:
        # they go out side by side, at most PROVIDER_MAX_IN_FLIGHT per record.
        index_groups = list(groups.values())
        outcomes = send_concurrently(("send", self.code, self.record_id or id(self)), send_group, index_groups,
                                     catch=(ProviderTransientError, ProviderPermanentError))
        for indexes, outcome in zip(index_groups, outcomes):
            for i, result in zip(indexes, outcome if isinstance(outcome, list) else [outcome] * len(indexes)):
                results[i] = result
        return [r for r in results if r is not None]

    def _send_merged(self, batch: list[OutboundMessage], connection) -> list[SendResult | Exception]:
        first = batch[0]
        try:
            email = cast(AnymailMessage, build_email(first, message_class=AnymailMessage, from_email=self.setting("from_email"),
                                                     connection=connection, per_recipient_headers=False))
        except ProviderPermanentError as exc:
            return [exc] * len(batch)
        email.extra_headers.pop("X-Troubadour-Delivery", None)
        valid = [m for m in batch if m.to and "@" in m.to]
        valid_ids = {id(m) for m in valid}  # identity: comparing dataclasses would be O(n²)
        email.to = [m.to for m in valid]
        if self.per_message_tracking:
            email.track_opens, email.track_clicks = first.track_opens, first.track_clicks
        email.merge_data = {m.to: {} for m in valid}
        email.merge_metadata = {m.to: {"delivery_id": str(m.idempotency_key)} for m in valid if m.idempotency_key}
        merge_headers = {m.to: unsubscribe_headers(m) for m in valid}
        if any(merge_headers.values()):
            email.merge_headers = merge_headers
        try:
            if valid:
                email.send()
        except (AnymailError, ImproperlyConfigured) as exc:
            error = _anymail_error(exc)
            return [error if id(m) in valid_ids else ProviderPermanentError(f"Invalid email address {m.to!r}.", code="invalid_recipient") for m in batch]
        out: list[SendResult | Exception] = []
        for m in batch:
            if id(m) not in valid_ids:
                out.append(ProviderPermanentError(f"Invalid email address {m.to!r}.", code="invalid_recipient"))
                continue
            recipient = email.anymail_status.recipients.get(m.to.lower())
            if recipient is None or recipient.status in ("rejected", "invalid", "failed"):
                out.append(ProviderPermanentError("Recipient refused by the email provider.", code="invalid_recipient"))
                continue
            out.append(SendResult(provider_message_id=str(recipient.message_id or ""), status=SendStatus.QUEUED,
                                  raw={"esp": self.esp_name, "batch_size": len(valid)}))
        return out

    # Health: a cheap authenticated GET on the ESP's API.
    def _probe(self) -> requests.Response:
        raise NotImplementedError

    def health_check(self) -> HealthResult:
        started = time.monotonic()
        try:
            response = self._probe()
        except ProviderPermanentError as exc:
            return HealthResult(ok=False, response_time_ms=self._elapsed_ms(started), detail=str(exc))
        except requests.RequestException as exc:
            return HealthResult(ok=False, response_time_ms=self._elapsed_ms(started), detail=f"connection failed: {exc.__class__.__name__}")
        remaining = response.headers.get("X-RateLimit-Remaining")
        return HealthResult(
            ok=response.status_code < 400,
            response_time_ms=self._elapsed_ms(started),
            detail="" if response.status_code < 400 else f"HTTP {response.status_code}",
            rate_limit_remaining=int(remaining) if remaining and remaining.isdigit() else None,
        )


@register
class SendGridProvider(AnymailEmailProvider):
    code = "sendgrid"
    name = "SendGrid"
    esp_name = "SendGrid"
    backend = "anymail.backends.sendgrid.EmailBackend"
    sensitive_params = ("api_key", "webhook_secret")
    required_params = ("api_key",)
    env_credentials = {"api_key": "SENDGRID_API_KEY"}

    def _api_url(self) -> str:
        return (self.config.get("api_url") or "https://api.sendgrid.com/v3/").rstrip("/") + "/"

    def connection_kwargs(self) -> dict[str, Any]:
        return {"api_key": self.require("api_key"), "api_url": self._api_url(), "timeout": self.timeout}

    def _probe(self) -> requests.Response:
        return requests.get(self._api_url() + "scopes", headers={"Authorization": f"Bearer {self.require('api_key')}"}, timeout=self.timeout)


@register
class MailgunProvider(AnymailEmailProvider):
    code = "mailgun"
    name = "Mailgun"
    esp_name = "Mailgun"
    backend = "anymail.backends.mailgun.EmailBackend"
    sensitive_params = ("api_key", "webhook_signing_key", "webhook_secret")
    required_params = ("api_key",)
    env_credentials = {"api_key": "MAILGUN_API_KEY"}

    def _api_url(self) -> str:
        return (self.config.get("api_url") or "https://api.mailgun.net/v3/").rstrip("/") + "/"

    def connection_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"api_key": self.require("api_key"), "api_url": self._api_url(), "timeout": self.timeout}
        if self.config.get("sender_domain"):
            kwargs["sender_domain"] = self.config["sender_domain"]
        return kwargs

    def _probe(self) -> requests.Response:
        return requests.get(self._api_url() + "domains", auth=("api", self.require("api_key")), params={"limit": 1}, timeout=self.timeout)


@register
class PostmarkProvider(AnymailEmailProvider):
    code = "postmark"
    name = "Postmark"
    esp_name = "Postmark"
    backend = "anymail.backends.postmark.EmailBackend"
    sensitive_params = ("server_token", "webhook_secret")
    required_params = ("server_token",)
    env_credentials = {"server_token": "POSTMARK_SERVER_TOKEN"}
    merge_batch_size = 500  # /email/batch takes 500 messages

    def _api_url(self) -> str:
        return (self.config.get("api_url") or "https://api.postmarkapp.com/").rstrip("/") + "/"

    def connection_kwargs(self) -> dict[str, Any]:
        return {"server_token": self.require("server_token"), "api_url": self._api_url(), "timeout": self.timeout}

    def _probe(self) -> requests.Response:
        return requests.get(self._api_url() + "server", headers={"X-Postmark-Server-Token": self.require("server_token"), "Accept": "application/json"}, timeout=self.timeout)


@register
class AmazonSesProvider(AnymailEmailProvider):
    """Credentials: access_key_id, secret_access_key (or the instance role when empty, for
    Amazon's own endpoints only: a custom endpoint_url needs explicit keys — providers.aws).
    Config: region, endpoint_url, configuration_set_name."""

    code = "amazon_ses"
    name = "Amazon SES"
    esp_name = "Amazon SES"
    backend = "anymail.backends.amazon_ses.EmailBackend"
    per_message_tracking = False  # open/click tracking: enable it on `configuration_set_name`
    merge_batches = False
    sensitive_params = ("secret_access_key", "webhook_secret")
    env_credentials = {"access_key_id": "AWS_ACCESS_KEY_ID", "secret_access_key": "AWS_SECRET_ACCESS_KEY"}
    endpoint_domains = AWS_DOMAINS

    def _session_params(self) -> dict[str, Any]:
        from ..aws import aws_session_params

        return aws_session_params(self)  # never the default chain for a custom endpoint

    def _client_params(self) -> dict[str, Any]:
        from botocore.config import Config

        params: dict[str, Any] = {"config": Config(connect_timeout=self.timeout, read_timeout=self.timeout, retries={"max_attempts": 1})}
        if self.config.get("endpoint_url"):
            params["endpoint_url"] = self.config["endpoint_url"]
        return params

    def connection_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"session_params": self._session_params(), "client_params": self._client_params()}
        if self.config.get("configuration_set_name"):
            kwargs["configuration_set_name"] = self.config["configuration_set_name"]
        return kwargs

    def health_check(self) -> HealthResult:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError

        started = time.monotonic()
        try:
            client = boto3.session.Session(**self._session_params()).client("sesv2", **self._client_params())
            account = client.get_account()
        except ProviderPermanentError as exc:
            return HealthResult(ok=False, response_time_ms=self._elapsed_ms(started), detail=str(exc.detail))
        except (BotoCoreError, ClientError) as exc:
            return HealthResult(ok=False, response_time_ms=self._elapsed_ms(started), detail=exc.__class__.__name__)
        quota = account.get("SendQuota", {})
        remaining = None
        if quota.get("Max24HourSend") is not None:
            remaining = int(quota["Max24HourSend"] - quota.get("SentLast24Hours", 0))
        return HealthResult(ok=bool(account.get("SendingEnabled", True)), response_time_ms=self._elapsed_ms(started), rate_limit_remaining=remaining)
