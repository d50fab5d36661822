"""The admin index as an operator dashboard (django-unfold's DASHBOARD_CALLBACK).

The numbers come from notifications.dashboard (aggregate queries); this module turns them into
chart geometry for server-side SVG (templates/admin/index.html): no script, no chart library,
nothing the page's Content-Security-Policy has to allow. Every bar and tile links to the
filtered admin list behind it.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django.urls import reverse

from notifications.dashboard import DeliveryStats, ProviderRow, operator_dashboard

BAR_WIDTH = 360  # px of the longest bar
ROW_HEIGHT = 26
SPARK_W, SPARK_H = 120, 24


def _changelist(model: str, **filters: Any) -> str:
    url = reverse(f"admin:{model}_changelist")
    return f"{url}?{urlencode(filters)}" if filters else url


def _since_param(since: datetime) -> str:
    return since.strftime("%Y-%m-%d %H:%M:%S")


def _ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value / 1000:.1f} s" if value >= 1000 else f"{value:.0f} ms"


def delivery_bars(stats: list[DeliveryStats], *, by: str, since: datetime) -> dict[str, Any]:
    """Horizontal stacked bars (succeeded / failed / other) per channel or provider."""
    top = max((s.total for s in stats), default=0) or 1
    rows = []
    for i, s in enumerate(stats):
        scale = BAR_WIDTH / top
        ok_w = s.ok * scale
        failed_w = s.failed * scale
        other_w = max(0.0, (s.total - s.ok - s.failed) * scale)
        filters = {"created_at__gte": _since_param(since)}
        if s.key != "—":
            filters[f"{by}__exact"] = s.key
        rows.append({
            "key": s.key, "label": "not sent yet" if s.key == "—" else s.key, "y": i * ROW_HEIGHT, "text_y": i * ROW_HEIGHT + 17,
            "ok_w": round(ok_w, 1), "failed_x": round(ok_w, 1), "failed_w": round(failed_w, 1),
            "other_x": round(ok_w + failed_w, 1), "other_w": round(other_w, 1),
            "total": s.total, "ok": s.ok, "failed": s.failed,
            "rate": "—" if s.success_rate is None else f"{s.success_rate:g}%",
            "p50": _ms(s.p50_ms), "p95": _ms(s.p95_ms),
            "href": _changelist("notifications_notificationdelivery", **filters),
            "failed_href": _changelist("notifications_notificationdelivery", status__exact="FAILED", **filters),
        })
    return {"rows": rows, "height": max(ROW_HEIGHT, len(rows) * ROW_HEIGHT), "width": BAR_WIDTH}


def sparkline(values: list[int]) -> dict[str, Any]:
    """Response times of the last health checks; a failed check (-1) is drawn as a red dot on top."""
    if not values:
        return {"points": "", "failures": [], "count": 0}
    top = max([v for v in values if v >= 0] or [1]) or 1
    step = SPARK_W / max(1, len(values) - 1)
    points, failures = [], []
    for i, v in enumerate(values):
        x = round(i * step, 1)
        if v < 0:
            failures.append({"x": x, "y": 3})
            y = 2.0
        else:
            y = round(SPARK_H - 2 - (v / top) * (SPARK_H - 4), 1)
        points.append(f"{x},{y}")
    return {"points": " ".join(points), "failures": failures, "count": len(values), "max_ms": top}


def provider_rows(rows: list[ProviderRow]) -> list[dict[str, Any]]:
    return [{
        "name": r.record.name, "code": r.record.code, "channel": r.record.channel,
        "scope": r.record.organization.name if r.record.organization is not None else "platform",
        "health": r.record.health_status, "circuit": r.circuit,
        "checked": r.record.last_health_check_at,
        "href": reverse("admin:providers_notificationprovider_change", args=[r.record.pk]),
        "history_href": _changelist("providers_providerhealthmetric", provider__id__exact=r.record.pk),
        "spark": sparkline(r.response_times),
    } for r in rows]


def cost_bars(costs: list[dict[str, Any]]) -> dict[str, Any]:
    height, width = 120, 28
    top = max((float(c["total"]) for c in costs), default=0.0) or 1.0
    bars = []
    for i, c in enumerate(costs):
        h = round(float(c["total"]) / top * (height - 20), 1)
        bars.append({"x": i * (width + 6), "y": round(height - 16 - h, 1), "h": h, "w": width, "date": c["date"],
                     "label": c["date"].strftime("%d"), "total": c["total"], "currency": c["currency"],
                     "href": _changelist("providers_providercostdaily", date__gte=c["date"].isoformat(),
                                         date__lte=c["date"].isoformat())})
    return {"bars": bars, "height": height, "width": max(1, len(costs)) * (width + 6), "currency": costs[0]["currency"] if costs else ""}


def dashboard_callback(request, context: dict[str, Any]) -> dict[str, Any]:
    data = operator_dashboard()
    windows = []
    for name, window in data["windows"].items():
        windows.append({
            "name": name, "label": "last 24 hours" if name == "24h" else "last 7 days",
            "channels": delivery_bars(window["channels"], by="channel", since=window["since"]),
            "providers": delivery_bars(window["providers"], by="provider", since=window["since"]),
            "total": sum(s.total for s in window["channels"]),
        })
    counts = data["counts"]
    context.update({
        "console_windows": windows,
        "console_tiles": [
            {"label": "Open dead letters", "value": counts["dead_letters"], "alert": counts["dead_letters"] > 0,
             "href": _changelist("notifications_deadletter", status__exact="OPEN")},
            {"label": "Held (quiet hours)", "value": counts["held"], "alert": False,
             "href": _changelist("notifications_notificationdelivery", status__exact="HELD")},
            {"label": "Waiting to send", "value": counts["pending"], "alert": False,
             "href": _changelist("notifications_notificationdelivery", status__exact="PENDING")},
            {"label": "Scheduled", "value": counts["scheduled"], "alert": False,
             "href": _changelist("notifications_notification", status__exact="SCHEDULED")},
        ],
        "console_providers": provider_rows(data["providers"]),
        "console_costs": cost_bars(data["costs"]),
    })
    return context
