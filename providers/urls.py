from django.urls import include, path

from . import api, views, webhooks

urlpatterns = [
    # The hardened tracking views first; the rest of anymail's (inbound) after them.
    path("webhooks/anymail/sendgrid/tracking/", webhooks.SendGridTrackingView.as_view(), name="providers-sendgrid-tracking"),
    path("webhooks/anymail/mailgun/tracking/", webhooks.MailgunTrackingView.as_view(), name="providers-mailgun-tracking"),
    path("webhooks/anymail/postmark/tracking/", webhooks.PostmarkTrackingView.as_view(), name="providers-postmark-tracking"),
    path("webhooks/anymail/amazon_ses/tracking/", webhooks.AmazonSesTrackingView.as_view(), name="providers-amazon-ses-tracking"),
    path("webhooks/anymail/", include("anymail.urls")),
    path("webhooks/twilio/status/", webhooks.TwilioStatusWebhookView.as_view(), name="providers-twilio-status"),
    path("webhooks/twilio/voice/gather/", webhooks.TwilioGatherWebhookView.as_view(), name="providers-twilio-gather"),
    path("webhooks/meta/whatsapp/", webhooks.MetaWhatsAppWebhookView.as_view(), name="providers-meta-whatsapp"),
    path("u/<str:token>/", views.unsubscribe, name="providers-unsubscribe"),
]

api_urlpatterns = [
    path("admin/providers/", api.ProviderListView.as_view(), name="admin-providers"),
    path("admin/providers/codes/", api.ProviderCodesView.as_view(), name="admin-provider-codes"),
    path("admin/providers/<int:provider_id>/", api.ProviderDetailView.as_view(), name="admin-provider"),
    path("admin/providers/<int:provider_id>/health-check/", api.ProviderHealthCheckView.as_view(), name="admin-provider-health-check"),
    path("push-subscriptions/", api.PushSubscriptionView.as_view(), name="push-subscriptions"),
]
