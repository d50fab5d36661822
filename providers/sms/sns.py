"""SMS through Amazon SNS `Publish` (boto3). SNS does not report a per-message price."""
from __future__ import annotations

import time

from common.exceptions import ProviderPermanentError, ProviderTransientError
from common.channels import Channel

from ..aws import AWS_DOMAINS, aws_session_params
from ..base import (
    BaseProvider,
    HealthResult,
    OutboundMessage,
    SendResult,
    SendStatus,
    transient_or_permanent_for_status,
)
from ..phone import normalize_e164
from ..registry import register
from .segments import count_segments, gsm7_substitute


@register
class SnsSmsProvider(BaseProvider):
    """Credentials: access_key_id, secret_access_key (or the instance role, for Amazon's own
    endpoints only: a custom endpoint_url needs explicit keys — providers.aws).
    Config: region, endpoint_url, sender_id, sms_type (Transactional/Promotional)."""

    code = "sns_sms"
    channel = Channel.SMS
    name = "Amazon SNS SMS"
    concurrent_sends = True  # one API call; the boto3 client is kept per record (thread-safe)
    sensitive_params = ("secret_access_key",)
    env_credentials = {"access_key_id": "AWS_ACCESS_KEY_ID", "secret_access_key": "AWS_SECRET_ACCESS_KEY"}
    endpoint_domains = AWS_DOMAINS

    def client(self):
        return self.pooled("sns", self._new_client)

    def _new_client(self):
        import boto3
        from botocore.config import Config

        session_params = aws_session_params(self)  # never the default chain for a custom endpoint
        client_params = {"config": Config(connect_timeout=self.timeout, read_timeout=self.timeout, retries={"max_attempts": 1})}
        if self.config.get("endpoint_url"):
            client_params["endpoint_url"] = self.config["endpoint_url"]
        return boto3.session.Session(**session_params).client("sns", **client_params)

    def _error(self, exc: Exception) -> Exception:
        from botocore.exceptions import (
            ClientError,
            ConnectTimeoutError,
            EndpointConnectionError,
            ReadTimeoutError,
        )

        if isinstance(exc, ClientError):
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("Throttling", "ThrottlingException", "InternalError", "ServiceUnavailable"):
                return ProviderTransientError(f"SNS {code}", code=code)
            err = transient_or_permanent_for_status(status, f"SNS {code or status}")
            return err
        if isinstance(exc, (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError)):
            return ProviderTransientError(f"SNS unreachable: {exc.__class__.__name__}", code="connection")
        return ProviderPermanentError(f"SNS error: {exc.__class__.__name__}", code="sns")

    def send(self, message: OutboundMessage) -> SendResult:
        from botocore.exceptions import BotoCoreError, ClientError

        to = normalize_e164(message.to)
        text = message.text
        if message.options.get("unicode") is False:
            # SNS picks the encoding from the text itself: look-alikes made GSM-7 keep it there.
            text = gsm7_substitute(text)
        attributes = {"AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": self.config.get("sms_type") or "Transactional"}}
        sender = message.options.get("from") or self.config.get("sender_id")
        if sender and str(sender).startswith("+"):
            # A number is an origination number; SNS's sender id is alphanumeric (up to 11).
            attributes["AWS.MM.SMS.OriginationNumber"] = {"DataType": "String", "StringValue": str(sender)}
        elif sender:
            attributes["AWS.SNS.SMS.SenderID"] = {"DataType": "String", "StringValue": str(sender)}
        try:
            response = self.client().publish(PhoneNumber=to, Message=text, MessageAttributes=attributes)
        except (BotoCoreError, ClientError) as exc:
            raise self._error(exc) from None
        return SendResult(provider_message_id=response["MessageId"], status=SendStatus.SENT,
                          segments=count_segments(text).segments, raw={"message_id": response["MessageId"]})

    def health_check(self) -> HealthResult:
        from botocore.exceptions import BotoCoreError, ClientError

        started = time.monotonic()
        try:
            self.client().get_sms_attributes(attributes=["MonthlySpendLimit"])
        except ProviderPermanentError as exc:
            return HealthResult(ok=False, response_time_ms=self._elapsed_ms(started), detail=str(exc.detail))
        except (BotoCoreError, ClientError) as exc:
            return HealthResult(ok=False, response_time_ms=self._elapsed_ms(started), detail=str(self._error(exc)))
        return HealthResult(ok=True, response_time_ms=self._elapsed_ms(started))
