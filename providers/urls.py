from django.urls import path

from . import api, webhooks, webhooks_bird_onesignal, webhooks_vonage

urlpatterns = [
    # Email status: only the hardened tracking views, only for ESPs an active record uses
    # (django-anymail's own URLs, inbound included, are not mounted).
    path("webhooks/anymail/<slug:esp>/tracking/", webhooks.anymail_tracking, name="providers-anymail-tracking"),
    path("webhooks/anymail/<slug:esp>/tracking/<int:provider_id>/", webhooks.anymail_tracking, name="providers-anymail-tracking-record"),
    path("webhooks/twilio/status/", webhooks.TwilioStatusWebhookView.as_view(), name="providers-twilio-status"),
    path("webhooks/twilio/whatsapp/inbound/", webhooks.TwilioWhatsAppInboundWebhookView.as_view(), name="providers-twilio-whatsapp-inbound"),
    path("webhooks/twilio/voice/gather/", webhooks.TwilioGatherWebhookView.as_view(), name="providers-twilio-gather"),
    path("webhooks/vonage/voice/event/", webhooks_vonage.VonageVoiceEventWebhookView.as_view(), name="providers-vonage-voice-event"),
    path("webhooks/vonage/sms/status/", webhooks_vonage.VonageSmsReceiptWebhookView.as_view(), name="providers-vonage-sms-status"),
    path("webhooks/messagebird/sms/status/", webhooks_bird_onesignal.MessageBirdSmsStatusWebhookView.as_view(),
         name="providers-messagebird-sms-status"),
    path("webhooks/onesignal/<int:provider_id>/<str:token>/", webhooks_bird_onesignal.OneSignalWebhookView.as_view(),
         name="providers-onesignal"),
    path("webhooks/meta/whatsapp/", webhooks.MetaWhatsAppWebhookView.as_view(), name="providers-meta-whatsapp"),
]

api_urlpatterns = [
    path("admin/providers/", api.ProviderListView.as_view(), name="admin-providers"),
    path("admin/providers/codes/", api.ProviderCodesView.as_view(), name="admin-provider-codes"),
    path("admin/providers/<int:provider_id>/", api.ProviderDetailView.as_view(), name="admin-provider"),
    path("admin/providers/<int:provider_id>/health-check/", api.ProviderHealthCheckView.as_view(), name="admin-provider-health-check"),
    path("push-subscriptions/", api.PushSubscriptionView.as_view(), name="push-subscriptions"),
]
