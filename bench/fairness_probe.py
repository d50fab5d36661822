"""Fairness probe for benchmarks: while another organization's big send runs, organization B
triggers one notification every `interval` seconds; `stop()` waits for B's notifications and
returns their trigger -> SENT latency.

    from bench.fairness_probe import OtherOrganizationProbe
    probe = OtherOrganizationProbe(channel=Channel.EMAIL).start()
    ... run organization A's event (a 100,000-recipient audience) and wait for it ...
    figures = probe.stop()   # {"count", "p50_seconds", "p95_seconds", "max_seconds"}

It needs a provider for `channel` that the benchmark has set up (a platform-wide record works
for every organization) and Django set up in the benchmark process.
"""
from __future__ import annotations

import threading
import time
import uuid


class OtherOrganizationProbe:
    def __init__(self, *, channel: str = "EMAIL", interval: float = 1.0, timeout: float = 120.0) -> None:
        self.channel = channel
        self.interval = interval
        self.timeout = timeout
        self.event_ids: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.organization = None
        self.user = None

    def start(self) -> OtherOrganizationProbe:
        from accounts.models import Membership, MembershipRole, Organization, User

        tag = uuid.uuid4().hex[:8]
        self.organization = Organization.objects.create(name="Fairness probe B", slug=f"bench-fanout-probe-{tag}")
        self.user = User.objects.create(username=f"bench-fanout-probe-{tag}", email=f"probe-{tag}@bench.example",
                                        phone="+14155559999", display_name="Probe")
        Membership.objects.create(user=self.user, organization=self.organization, role=MembershipRole.MEMBER)
        self._thread = threading.Thread(target=self._run, name="fairness-probe", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        from django.db import connection, transaction

        from notifications.engine.intake import event_emit

        try:
            while not self._stop.is_set():
                with transaction.atomic():
                    result = event_emit(
                        organization=self.organization, type="task.assigned", recipient_ids=[self.user.pk],
                        channels=[self.channel], actor={"type": "system", "id": "probe"},
                        resource={"type": "task", "id": f"PROBE-{len(self.event_ids)}", "name": "Probe task"},
                        data={"taskTitle": "Probe", "projectName": "Fairness"},
                    )
                self.event_ids.append(str(result.event_id))
                self._stop.wait(self.interval)
        finally:
            connection.close()

    def stop(self) -> dict[str, float]:
        """Stop triggering, wait until B's deliveries are sent, return their latencies."""
        from django.db import connection

        from notifications.enums import DELIVERY_SUCCESS_STATUSES
        from notifications.models import NotificationDelivery

        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        rows = NotificationDelivery.objects.filter(notification__event_id__in=self.event_ids, channel=self.channel)
        deadline = time.monotonic() + self.timeout
        while rows.exclude(status__in=list(DELIVERY_SUCCESS_STATUSES)).exists() and time.monotonic() < deadline:
            time.sleep(0.25)
        with connection.cursor() as cursor:
            cursor.execute(
                """
                SELECT count(*),
                       percentile_cont(0.5) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM d.sent_at - n.created_at)),
                       percentile_cont(0.95) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM d.sent_at - n.created_at)),
                       MAX(EXTRACT(EPOCH FROM d.sent_at - n.created_at))
                FROM notifications_notificationdelivery d
                JOIN notifications_notification n ON n.id = d.notification_id
                WHERE n.organization_id = %s AND d.sent_at IS NOT NULL
                """,
                [self.organization.pk],
            )
            count, p50, p95, worst = cursor.fetchone()
        return {"count": float(count or 0), "triggered": float(len(self.event_ids)), "p50_seconds": float(p50 or 0),
                "p95_seconds": float(p95 or 0), "max_seconds": float(worst or 0)}
