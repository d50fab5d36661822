"""The notification configuration an event reads, kept once per process (common.generations).

Every event reads the same few rows: its event type, its template and the template's channel
blocks, the channel configuration of its organization and of the platform, and whether the
organization has an outgoing webhook. Those reads are memoized per process under the
``notification-config`` generation, which any save or delete of an EventType,
NotificationTemplate, TemplateChannel, ChannelConfiguration, CriticalityRouting or Webhook
bumps (signals below), and so does loading the catalogue (notifications.taxonomy, which writes
in bulk). A change made with ``QuerySet.update`` on those tables bypasses the signals: call
``config_changed()`` after it.

``NOTIFICATION_CONFIG_MEMO=false`` turns the memo off (the in-process test suite does, since
its tests edit those tables with ``QuerySet.update``).
"""
from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from django.conf import settings
from django.db.models.signals import post_delete, post_save

from common.generations import GenerationMemo
from notifications.models import (
    ChannelConfiguration,
    CriticalityRouting,
    EventType,
    NotificationTemplate,
    TemplateChannel,
    Webhook,
)

T = TypeVar("T")

_memo: GenerationMemo[Any] = GenerationMemo("notification-config", maxsize=4096)


def config_read(key: Hashable, loader: Callable[[], T]) -> T:
    """``loader()``, or what it returned under the current configuration generation. The value
    is shared by every caller in this process: treat it as read-only."""
    if not getattr(settings, "NOTIFICATION_CONFIG_MEMO", True):
        return loader()
    return _memo.get(key, loader)


def config_changed(**kwargs: Any) -> None:
    """The configuration changed: every process reads it again from its next event."""
    _memo.bump()


for _model in (EventType, NotificationTemplate, TemplateChannel, ChannelConfiguration, CriticalityRouting, Webhook):
    post_save.connect(config_changed, sender=_model, dispatch_uid=f"config_memo.saved.{_model.__name__}")
    post_delete.connect(config_changed, sender=_model, dispatch_uid=f"config_memo.deleted.{_model.__name__}")
