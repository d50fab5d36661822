"""Frames the channel layer drops are counted and logged, never silent.

channels_redis keeps a process's undelivered messages in one Redis sorted set per process
(``capacity`` messages at most) and, on group_send, skips a channel that is full — it only says
so at INFO on the ``channels_redis.core`` logger, which production logging filters out. This
filter raises those records to WARNING and counts the dropped frames in
``troubadour_realtime_frames_dropped_total`` (a Prometheus counter), so a burst that overflows
the layer shows on the dashboards and in the logs. The capacity itself comes from
CHANNEL_LAYER_CAPACITY (config/settings.py).
"""
from __future__ import annotations

import logging

from prometheus_client import Counter

FRAMES_DROPPED = Counter(
    "troubadour_realtime_frames_dropped",
    "Live frames the channel layer dropped because a process's channel was full (capacity).",
)


class ChannelFullFilter(logging.Filter):
    """On the ``channels_redis.core`` logger: an "over capacity" record becomes a WARNING and
    its count of full channels goes to FRAMES_DROPPED."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "over capacity" in str(record.msg) and not getattr(record, "channel_full_counted", False):
            record.channel_full_counted = True  # once, however many filters see the record
            dropped = record.args[0] if isinstance(record.args, tuple) and record.args else 1
            try:
                FRAMES_DROPPED.inc(int(str(dropped)))
            except (TypeError, ValueError):
                FRAMES_DROPPED.inc()
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg = "channel layer full, frames dropped: " + str(record.msg)
        return True

