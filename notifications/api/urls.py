"""Every path of the notification REST API (mounted under /api/v1/ by config/urls.py through
`notifications.urls.api_urlpatterns`), grouped by resource. The paths are the contract of
shared API.md: clients depend on them."""
from django.urls import path

from ..realtime import sse
from . import events, history, inbox, preferences, reliability, subscribers, templates, topics, webhooks

api_urlpatterns: list = [
    # events and what became of them
    path("events/", events.EventsView.as_view(), name="events"),
    path("notifications/<int:pk>/trace/", events.NotificationTraceView.as_view(), name="notification-trace"),
    # a person's settings
    path("preferences/", preferences.PreferencesView.as_view(), name="preferences"),
    path("quiet-hours/", preferences.QuietHoursView.as_view(), name="quiet-hours"),
    path("quiet-hours/dnd/", preferences.DndView.as_view(), name="quiet-hours-dnd"),
    path("presence/heartbeat/", preferences.PresenceHeartbeatView.as_view(), name="presence-heartbeat"),
    path("admin/preferences/", preferences.AdminPreferencesView.as_view(), name="admin-preferences"),
    # the in-app inbox
    path("notifications/", inbox.InboxListView.as_view(), name="inbox-list"),
    path("notifications/unread-count/", inbox.UnreadCountView.as_view(), name="inbox-unread-count"),
    path("notifications/read-all/", inbox.ReadAllView.as_view(), name="inbox-read-all"),
    path("notifications/stream/", sse.stream_view, name="inbox-stream"),
    path("notifications/<int:notification_id>/read/", inbox.ReadView.as_view(), name="inbox-read"),
    path("notifications/<int:notification_id>/actions/<str:action_id>/", inbox.ActionView.as_view(), name="inbox-action"),
    path("notifications/<int:notification_id>/unread/", inbox.UnreadView.as_view(), name="inbox-unread"),
    path("notifications/<int:notification_id>/archive/", inbox.ArchiveView.as_view(), name="inbox-archive"),
    path("notifications/<int:notification_id>/acknowledge/", inbox.AcknowledgeView.as_view(), name="inbox-acknowledge"),
    # templates
    path("admin/templates/", templates.TemplateListView.as_view(), name="admin-templates"),
    path("admin/templates/<int:template_id>/", templates.TemplateDetailView.as_view(), name="admin-template"),
    path("admin/templates/<int:template_id>/preview/", templates.TemplatePreviewView.as_view(), name="admin-template-preview"),
    path("admin/templates/<int:template_id>/test-send/", templates.TemplateTestSendView.as_view(), name="admin-template-test-send"),
    path("admin/templates/<int:template_id>/versions/", templates.TemplateVersionListView.as_view(), name="admin-template-versions"),
    path("admin/templates/<int:template_id>/versions/<int:version>/restore/", templates.TemplateVersionRestoreView.as_view(),
         name="admin-template-version-restore"),
    # audit log and history
    path("admin/audit-log/", history.AuditLogView.as_view(), name="admin-audit-log"),
    path("admin/history/", history.HistoryView.as_view(), name="admin-history"),
    path("admin/history/<int:notification_id>/", history.HistoryDetailView.as_view(), name="admin-history-detail"),
    # organization webhooks
    path("admin/webhooks/", webhooks.WebhookListView.as_view(), name="admin-webhooks"),
    path("admin/webhooks/<int:webhook_id>/", webhooks.WebhookDetailView.as_view(), name="admin-webhook"),
    path("admin/webhooks/<int:webhook_id>/test/", webhooks.WebhookTestView.as_view(), name="admin-webhook-test"),
    # reliability: dead letters, escalation, channel configuration, deliveries
    path("admin/dead-letters/", reliability.DeadLetterListView.as_view(), name="admin-dead-letters"),
    path("admin/dead-letters/replay/", reliability.DeadLetterBulkReplayView.as_view(), name="admin-dead-letters-replay"),
    path("admin/dead-letters/discard/", reliability.DeadLetterBulkDiscardView.as_view(), name="admin-dead-letters-discard"),
    path("admin/dead-letters/<int:dead_letter_id>/", reliability.DeadLetterDetailView.as_view(), name="admin-dead-letter"),
    path("admin/dead-letters/<int:dead_letter_id>/replay/", reliability.DeadLetterReplayView.as_view(), name="admin-dead-letter-replay"),
    path("admin/dead-letters/<int:dead_letter_id>/discard/", reliability.DeadLetterDiscardView.as_view(), name="admin-dead-letter-discard"),
    path("admin/escalation-chains/", reliability.EscalationChainListView.as_view(), name="admin-escalation-chains"),
    path("admin/escalation-chains/<int:chain_id>/", reliability.EscalationChainDetailView.as_view(), name="admin-escalation-chain"),
    path("admin/channel-configurations/", reliability.ChannelConfigurationListView.as_view(), name="admin-channel-configurations"),
    path("admin/channel-configurations/<int:configuration_id>/", reliability.ChannelConfigurationDetailView.as_view(),
         name="admin-channel-configuration"),
    path("admin/deliveries/", reliability.DeliveryListView.as_view(), name="admin-deliveries"),
    path("admin/deliveries/<int:delivery_id>/", reliability.DeliveryDetailView.as_view(), name="admin-delivery"),
    path("admin/deliveries/<int:delivery_id>/retry/", reliability.DeliveryRetryView.as_view(), name="admin-delivery-retry"),
    # subscribers and the REST twins of the bus commands
    path("admin/subscribers/bulk/", subscribers.SubscriberBulkView.as_view(), name="admin-subscribers-bulk"),
    path("admin/subscribers/<str:external_id>/", subscribers.SubscriberView.as_view(), name="admin-subscriber"),
    path("admin/subscribers/<str:external_id>/preferences/", subscribers.SubscriberPreferencesView.as_view(),
         name="admin-subscriber-preferences"),
    path("admin/notifications/cancel/", subscribers.NotificationCancelView.as_view(), name="admin-notifications-cancel"),
    path("admin/notifications/<int:notification_id>/acknowledge/", subscribers.NotificationAcknowledgeView.as_view(),
         name="admin-notification-acknowledge"),
    path("admin/deliveries/retry/", subscribers.DeliveriesRetryView.as_view(), name="admin-deliveries-retry"),
    # topics and their subscribers (audiences of events)
    path("admin/topics/", topics.TopicListView.as_view(), name="admin-topics"),
    path("admin/topics/<str:key>/", topics.TopicDetailView.as_view(), name="admin-topic"),
    path("admin/topics/<str:key>/subscribers/", topics.TopicSubscribersView.as_view(), name="admin-topic-subscribers"),
]
