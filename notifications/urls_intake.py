"""Intake-side URLs: events, traces, preferences, quiet hours, DND, presence."""
from django.urls import path

from .api import preferences as api_intake

urlpatterns: list = []
api_urlpatterns: list = [
    path("events/", api_intake.EventsView.as_view(), name="events"),
    path("notifications/<int:pk>/trace/", api_intake.NotificationTraceView.as_view(), name="notification-trace"),
    path("preferences/", api_intake.PreferencesView.as_view(), name="preferences"),
    path("quiet-hours/", api_intake.QuietHoursView.as_view(), name="quiet-hours"),
    path("quiet-hours/dnd/", api_intake.DndView.as_view(), name="quiet-hours-dnd"),
    path("presence/heartbeat/", api_intake.PresenceHeartbeatView.as_view(), name="presence-heartbeat"),
    path("admin/preferences/", api_intake.AdminPreferencesView.as_view(), name="admin-preferences"),
]
