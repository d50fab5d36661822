"""Notification URLs: the web pages and entry points here, the REST API in api/urls.py."""
from django.urls import path

from . import views, views_reliability, views_unsubscribe
from .api import webhooks as api_webhooks
from .api.urls import api_urlpatterns  # noqa: F401  (config/urls.py mounts it under /api/v1/)

urlpatterns: list = [
    path("inbox/", views.inbox_page, name="inbox"),
    path("outbox/", views.outbox_page, name="outbox"),
    path("webhooks/incoming/<uuid:public_id>/", api_webhooks.IncomingWebhookView.as_view(), name="webhook-incoming"),
    path("n/<str:signed>/ack/", views_reliability.AckLinkView.as_view(), name="notification-ack-link"),
    path("webhooks/twilio/sms/inbound/", views_reliability.TwilioSmsInboundView.as_view(), name="twilio-sms-inbound"),
    path("u/<str:token>/", views_unsubscribe.unsubscribe, name="unsubscribe"),
]
