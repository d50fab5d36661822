"""Small server-side SVG charts for the dashboard: no JavaScript, no CDN, readable at 390 px.

The SVG is built from numbers only; labels are escaped. Each chart scales with its viewBox.
"""
from __future__ import annotations

from datetime import date, timedelta
from html import escape

from django.utils.safestring import SafeString, mark_safe

PALETTE = {"email": "#7b3fe4", "sms": "#f2a541", "push": "#2857a4", "whatsapp": "#2e8b57", "voice": "#c0392b", "in_app": "#6b6880"}
OK, FAIL, OTHER = "#2e8b57", "#c0392b", "#d8d4e8"


def _nice_max(value: int) -> int:
    """The axis top: a multiple of 4, so the quarter grid lines fall on whole counts."""
    for step in (4, 8, 12, 20, 40, 60, 100, 200, 400, 600, 1000, 2000, 4000, 6000, 10000):
        if value <= step:
            return step
    return ((value // 4000) + 1) * 4000


def channel_bars(rows: list[dict]) -> SafeString:
    """Per channel: one bar of total sent, split into delivered / failed / not yet final."""
    # About as wide in user units as the card is in pixels: text stays 11-13 px from 390 px up.
    width, bar_h, gap, left, top = 400, 24, 14, 78, 8
    height = top + max(1, len(rows)) * (bar_h + gap) + 20
    peak = _nice_max(max((r["total_sent"] for r in rows), default=0))
    scale = (width - left - 76) / peak
    parts = [f'<svg class="chart" id="chart-channels" role="img" aria-label="Deliveries per channel" '
             f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif" font-size="13">']
    if not rows:
        parts.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" fill="#6b6880">No deliveries yet</text>')
    for i, row in enumerate(rows):
        y = top + i * (bar_h + gap)
        ok, failed = row["successful_deliveries"], row["failed_deliveries"]
        other = max(0, row["total_sent"] - ok - failed)
        label = escape(row["delivery_type"].replace("_", " ").upper())
        parts.append(f'<text x="{left - 8}" y="{y + bar_h * 0.68:.1f}" text-anchor="end" fill="#1d1b2f">{label}</text>')
        x = left
        for value, color, name in ((ok, OK, "delivered"), (failed, FAIL, "failed"), (other, OTHER, "in flight")):
            if value:
                w = value * scale
                parts.append(f'<rect class="bar" data-channel="{escape(row["delivery_type"])}" data-kind="{name}" data-value="{value}" '
                             f'x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" rx="3" fill="{color}"><title>{label}: {value} {name}</title></rect>')
                x += w
        parts.append(f'<text x="{x + 6:.1f}" y="{y + bar_h * 0.68:.1f}" fill="#6b6880">{row["total_sent"]} · {row["success_rate"]:g}%</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - numbers and escaped labels only


def daily_series(rows: list[dict], *, since: date, until: date) -> SafeString:
    """Stacked bars per day (one colour per channel) of invitations sent, over [since, until]."""
    days = (until - since).days + 1
    width, height, left, bottom, top = 400, 200, 30, 24, 10
    plot_w, plot_h = width - left - 8, height - top - bottom
    totals: dict[date, dict[str, int]] = {}
    for row in rows:
        totals.setdefault(date.fromisoformat(row["date"]), {})[row["delivery_type"]] = row["total_sent"]
    peak = _nice_max(max((sum(v.values()) for v in totals.values()), default=0))
    slot = plot_w / days
    bar_w = max(2.0, slot * 0.7)
    parts = [f'<svg class="chart" id="chart-daily" role="img" aria-label="Invitations sent per day" '
             f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif" font-size="12">']
    for k in range(5):  # grid lines and y labels
        value = peak * k / 4
        y = top + plot_h - plot_h * k / 4
        parts.append(f'<line x1="{left}" x2="{width - 8}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eeedf2"/>')
        parts.append(f'<text class="tick" x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" fill="#6b6880">{value:g}</text>')
    for i in range(days):
        day = since + timedelta(days=i)
        x = left + i * slot + (slot - bar_w) / 2
        y = top + plot_h
        for channel, value in sorted(totals.get(day, {}).items()):
            h = plot_h * value / peak
            y -= h
            parts.append(f'<rect class="day-bar" data-date="{day.isoformat()}" data-channel="{escape(channel)}" data-value="{value}" '
                         f'x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="{PALETTE.get(channel, OTHER)}">'
                         f'<title>{day:%b %d} · {escape(channel)}: {value}</title></rect>')
        every = max(1, days // 5)
        if i == days - 1:  # the last day's label ends at the edge instead of running past it
            parts.append(f'<text class="day-label" x="{width - 2}" y="{height - 6}" text-anchor="end" fill="#6b6880">{day:%b %d}</text>')
        elif i % every == 0 and days - 1 - i >= every * 0.8:
            parts.append(f'<text class="day-label" x="{x + bar_w / 2:.1f}" y="{height - 6}" text-anchor="middle" fill="#6b6880">{day:%b %d}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - numbers and escaped labels only
