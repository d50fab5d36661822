"""Acknowledgement entry points outside the API: the signed link and SMS replies."""
from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views import View

from common.exceptions import Gone, NotFound, PermissionDenied
from notifications.engine.ack import (
    AckSource,
    ack_link_notification_id,
    notification_acknowledge,
    notification_acknowledge_by_sms,
    sms_deliveries_to,
)
from notifications.models import Notification
from providers.webhooks import TWILIO_CODES, Sender, TwilioWebhookView, platform_senders, senders_of, senders_scope


class AckLinkView(View):
    """``/n/<signed>/ack/``: GET shows what is being acknowledged, POST acknowledges.

    The link is the credential. GET does not change anything, because mail scanners and
    link previews fetch every URL of a message; one click on the page's button does.
    """

    http_method_names = ["get", "post"]

    def _notification(self, signed: str) -> Notification | HttpResponse:
        try:
            notification_id = ack_link_notification_id(signed=signed)
        except Gone as exc:
            return render(self.request, "reliability/ack.html", {"error": str(exc.detail)}, status=410)
        except NotFound as exc:
            return render(self.request, "reliability/ack.html", {"error": str(exc.detail)}, status=404)
        notification = Notification.objects.filter(pk=notification_id).first()
        if notification is None:
            return render(self.request, "reliability/ack.html", {"error": "This notification no longer exists."}, status=404)
        return notification

    def get(self, request: HttpRequest, signed: str) -> HttpResponse:
        notification = self._notification(signed)
        if isinstance(notification, HttpResponse):
            return notification  # the page saying why it cannot be acknowledged
        return render(request, "reliability/ack.html", {"notification": notification, "done": notification.acknowledged_at is not None})

    def post(self, request: HttpRequest, signed: str) -> HttpResponse:
        notification = self._notification(signed)
        if isinstance(notification, HttpResponse):
            return notification  # the page saying why it cannot be acknowledged
        try:
            notification = notification_acknowledge(
                notification_id=notification.pk, source=AckSource.LINK, user_id=notification.recipient_id
            )
        except PermissionDenied as exc:
            return render(request, "reliability/ack.html", {"error": str(exc.detail)}, status=403)
        return render(request, "reliability/ack.html", {"notification": notification, "done": True})


class TwilioSmsInboundView(TwilioWebhookView):
    """``/webhooks/twilio/sms/inbound/``: a reply "ACK" or "1" acknowledges, STOP (and the
    carriers' other opt-out keywords) suppresses the number, START lifts it (signature-verified).

    The reply is checked against the accounts that texted that phone recently (or the
    platform's), and acknowledges only what a verified account delivered to it. The answer
    names nothing: the sender of the reply proves only that it can sign for an account."""

    provider_code = "twilio_sms"

    def candidates(self, request: HttpRequest) -> list[Sender]:
        sent = sms_deliveries_to(from_number=request.POST.get("From", "")).filter(provider__in=TWILIO_CODES)
        return senders_of(sent.values_list("provider_record_id", "provider")) or platform_senders(("twilio_sms",))

    def handle(self, request: HttpRequest) -> HttpResponse:
        from twilio.twiml.messaging_response import MessagingResponse

        from invitations.optout import sms_inbound_keyword_apply

        # Carrier keywords first: STOP suppresses the number (and the carrier answers it itself).
        if sms_inbound_keyword_apply(
            from_number=request.POST.get("From", ""), body=request.POST.get("Body", ""),
            organization_ids=[s.record.organization_id if s.record is not None else None for s in self.senders],
        ):
            return HttpResponse(str(MessagingResponse()), content_type="application/xml")
        acknowledged = notification_acknowledge_by_sms(
            from_number=request.POST.get("From", ""), body=request.POST.get("Body", ""), **senders_scope(self.senders)
        )
        response = MessagingResponse()
        if acknowledged is not None:
            response.message("Acknowledged. Thank you.")
        return HttpResponse(str(response), content_type="application/xml")
