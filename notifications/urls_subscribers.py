"""URLs of subscribers and the REST twins of the bus commands."""
from django.urls import path

from .api import subscribers as api

urlpatterns: list = []
api_urlpatterns: list = [
    path("admin/subscribers/bulk/", api.SubscriberBulkView.as_view(), name="admin-subscribers-bulk"),
    path("admin/subscribers/<str:external_id>/", api.SubscriberView.as_view(), name="admin-subscriber"),
    path("admin/subscribers/<str:external_id>/preferences/", api.SubscriberPreferencesView.as_view(),
         name="admin-subscriber-preferences"),
    path("admin/notifications/cancel/", api.NotificationCancelView.as_view(), name="admin-notifications-cancel"),
    path("admin/notifications/<int:notification_id>/acknowledge/", api.NotificationAcknowledgeView.as_view(),
         name="admin-notification-acknowledge"),
    path("admin/deliveries/retry/", api.DeliveriesRetryView.as_view(), name="admin-deliveries-retry"),
]
