"""URLs of the reliability side: dead letters, delivery admin, acknowledgement entry points."""
from django.urls import path

from .api import reliability as api
from . import views_reliability as views

urlpatterns: list = [
    path("n/<str:signed>/ack/", views.AckLinkView.as_view(), name="notification-ack-link"),
    path("webhooks/twilio/sms/inbound/", views.TwilioSmsInboundView.as_view(), name="twilio-sms-inbound"),
]

api_urlpatterns: list = [
    path("admin/dead-letters/", api.DeadLetterListView.as_view(), name="admin-dead-letters"),
    path("admin/dead-letters/replay/", api.DeadLetterBulkReplayView.as_view(), name="admin-dead-letters-replay"),
    path("admin/dead-letters/discard/", api.DeadLetterBulkDiscardView.as_view(), name="admin-dead-letters-discard"),
    path("admin/dead-letters/<int:dead_letter_id>/", api.DeadLetterDetailView.as_view(), name="admin-dead-letter"),
    path("admin/dead-letters/<int:dead_letter_id>/replay/", api.DeadLetterReplayView.as_view(), name="admin-dead-letter-replay"),
    path("admin/dead-letters/<int:dead_letter_id>/discard/", api.DeadLetterDiscardView.as_view(), name="admin-dead-letter-discard"),
    path("admin/escalation-chains/", api.EscalationChainListView.as_view(), name="admin-escalation-chains"),
    path("admin/escalation-chains/<int:chain_id>/", api.EscalationChainDetailView.as_view(), name="admin-escalation-chain"),
    path("admin/channel-configurations/", api.ChannelConfigurationListView.as_view(), name="admin-channel-configurations"),
    path("admin/channel-configurations/<int:configuration_id>/", api.ChannelConfigurationDetailView.as_view(),
         name="admin-channel-configuration"),
    path("admin/deliveries/", api.DeliveryListView.as_view(), name="admin-deliveries"),
    path("admin/deliveries/<int:delivery_id>/", api.DeliveryDetailView.as_view(), name="admin-delivery"),
    path("admin/deliveries/<int:delivery_id>/retry/", api.DeliveryRetryView.as_view(), name="admin-delivery-retry"),
]
