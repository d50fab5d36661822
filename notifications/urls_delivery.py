"""URLs of rendering, delivery and the in-app inbox (the intake side lives in urls_intake.py)."""
from django.urls import path

from . import views
from .api import inbox as api_inbox
from .api import templates as api_templates
from .realtime import sse

urlpatterns: list = [
    path("inbox/", views.inbox_page, name="inbox"),
    path("outbox/", views.outbox_page, name="outbox"),
]

api_urlpatterns: list = [
    path("notifications/", api_inbox.InboxListView.as_view(), name="inbox-list"),
    path("notifications/unread-count/", api_inbox.UnreadCountView.as_view(), name="inbox-unread-count"),
    path("notifications/read-all/", api_inbox.ReadAllView.as_view(), name="inbox-read-all"),
    path("notifications/stream/", sse.stream_view, name="inbox-stream"),
    path("notifications/<int:notification_id>/read/", api_inbox.ReadView.as_view(), name="inbox-read"),
    path("notifications/<int:notification_id>/unread/", api_inbox.UnreadView.as_view(), name="inbox-unread"),
    path("notifications/<int:notification_id>/archive/", api_inbox.ArchiveView.as_view(), name="inbox-archive"),
    path("notifications/<int:notification_id>/acknowledge/", api_inbox.AcknowledgeView.as_view(), name="inbox-acknowledge"),
    path("admin/templates/", api_templates.TemplateListView.as_view(), name="admin-templates"),
    path("admin/templates/<int:template_id>/", api_templates.TemplateDetailView.as_view(), name="admin-template"),
    path("admin/templates/<int:template_id>/preview/", api_templates.TemplatePreviewView.as_view(), name="admin-template-preview"),
    path("admin/templates/<int:template_id>/test-send/", api_templates.TemplateTestSendView.as_view(), name="admin-template-test-send"),
    path("admin/templates/<int:template_id>/versions/", api_templates.TemplateVersionListView.as_view(), name="admin-template-versions"),
    path("admin/templates/<int:template_id>/versions/<int:version>/restore/", api_templates.TemplateVersionRestoreView.as_view(),
         name="admin-template-version-restore"),
]
