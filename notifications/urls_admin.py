"""URLs of organization administration (audit log, history, webhooks) and incoming webhooks."""
from django.urls import path

from .api import history as api_admin
from .api import webhooks as api_webhooks

urlpatterns: list = [
    path("webhooks/incoming/<uuid:public_id>/", api_webhooks.IncomingWebhookView.as_view(), name="webhook-incoming"),
]

api_urlpatterns: list = [
    path("admin/audit-log/", api_admin.AuditLogView.as_view(), name="admin-audit-log"),
    path("admin/history/", api_admin.HistoryView.as_view(), name="admin-history"),
    path("admin/history/<int:notification_id>/", api_admin.HistoryDetailView.as_view(), name="admin-history-detail"),
    path("admin/webhooks/", api_webhooks.WebhookListView.as_view(), name="admin-webhooks"),
    path("admin/webhooks/<int:webhook_id>/", api_webhooks.WebhookDetailView.as_view(), name="admin-webhook"),
    path("admin/webhooks/<int:webhook_id>/test/", api_webhooks.WebhookTestView.as_view(), name="admin-webhook-test"),
]
