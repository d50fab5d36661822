"""The console's aggregates and pages without a browser: the dashboard numbers, the routing
trace as a table, the index only for staff."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import User
from notifications.dashboard import delivery_stats, operator_dashboard
from tests.operations.console_support import console_world
from tests.providers.factories import NotificationFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def test_delivery_stats_are_aggregates_with_percentile_latencies(organization, django_assert_max_num_queries):
    world = console_world(organization)
    since = world["now"] - timedelta(hours=24)
    with django_assert_max_num_queries(2):  # counts + percentiles, whatever the number of rows
        stats = {s.key: s for s in delivery_stats(since=since, by="channel")}
    email = stats["EMAIL"]
    assert (email.total, email.ok, email.failed, email.success_rate) == (10, 8, 2, 80.0)
    assert email.p50_ms == pytest.approx(4500) and email.p95_ms == pytest.approx(7650)  # sent 1..8 s after creation
    assert stats["SMS"].total == 4 and stats["SMS"].success_rate == 100.0
    assert "PUSH" not in stats  # three days old
    data = operator_dashboard(now=world["now"])
    assert data["counts"] == {"dead_letters": 1, "held": 1, "pending": 0, "scheduled": 1}
    assert {p.record.name: p.circuit for p in data["providers"]} == {"SMS primary": "open", "SMS backup": "closed"}
    assert len(data["costs"]) == 14 and data["costs"][-1]["currency"] == "EUR"


def test_the_routing_trace_is_a_readable_table(client, organization):
    staff = User.objects.create_superuser(username="ops", email="ops@example.com", password="pass-word-123")
    notification = NotificationFactory(organization=organization, trace={
        "EMAIL": {"used": True, "decision": "send", "reason": "", "detail": "",
                  "steps": [{"check": "preference", "result": "pass", "reason": "default"}]},
        "SMS": {"used": False, "decision": "skipped", "reason": "quiet_hours", "detail": "<b>22:00</b>",
                "steps": [{"check": "quiet_hours", "result": "fail", "reason": "quiet_hours"}]},
        "routing": {"event_type": "task.assigned", "criticality": "MEDIUM", "channels_considered": ["EMAIL", "SMS"]},
    })
    client.force_login(staff)
    html = client.get(f"/admin/notifications/notification/{notification.pk}/change/").content.decode()
    assert "<table class='console-trace' id='routing-trace'>" in html
    assert "<tr data-channel='SMS'><td>SMS</td><td><span class='console-badge decision-skipped'>skipped</span></td><td>quiet_hours</td>" in html
    assert "<li><strong>quiet_hours</strong>: fail — quiet_hours</li>" in html
    assert "&lt;b&gt;22:00&lt;/b&gt;" in html and "<b>22:00</b>" not in html  # escaped, never markup
    assert "<th>channels considered</th><td>[&quot;EMAIL&quot;, &quot;SMS&quot;]</td>" in html


def test_the_dashboard_is_for_staff_only(client, user, organization):
    client.force_login(user)  # an organization owner, not staff
    response = client.get("/admin/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
