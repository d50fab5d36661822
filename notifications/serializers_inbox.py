"""The inbox item: one definition for the REST inbox, the WebSocket frame and the SSE event."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from common.links import link_safe_or_empty
from notifications.models import Notification


def inbox_display(notification: Notification) -> dict:
    """The IN_APP fields of an inbox item (seed 004 §4.3), from its merged channel options."""
    if hasattr(notification, "inapp_options"):  # the inbox list reads only this part (engine.inbox)
        options = notification.inapp_options or {}
    else:
        options = (notification.channel_options or {}).get("IN_APP") or {}
    actions = []
    for action in options.get("actions") or []:
        item = {"id": action.get("id"), "label": action.get("label"), "action": action.get("action")}
        if action.get("url"):
            item["url"] = link_safe_or_empty(action["url"])
        if action.get("data"):
            item["data"] = action["data"]
        actions.append(item)
    return {
        "type": options.get("type") or "toast",
        "actions": actions,
        "expires_at": options.get("expires_at"),
        "persistent": bool(options.get("persistent", False)),
        "icon": link_safe_or_empty(options.get("icon") or ""),
        "metadata": options.get("metadata") or {},
        "duration": options.get("duration"),
    }


class InboxActionSerializer(serializers.Serializer):
    id = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]  # a field named like Field.label; DRF allows it
    action = serializers.ChoiceField(choices=["navigate", "dismiss", "custom"])
    url = serializers.CharField(required=False)
    data = serializers.DictField(required=False)  # type: ignore[assignment]  # a field named like Serializer.data


class InboxNotificationSerializer(serializers.ModelSerializer):
    actor = serializers.SerializerMethodField()
    resource = serializers.SerializerMethodField()
    is_read = serializers.SerializerMethodField()
    type = serializers.SerializerMethodField()
    actions = serializers.SerializerMethodField()
    expires_at = serializers.SerializerMethodField()
    persistent = serializers.SerializerMethodField()
    icon = serializers.SerializerMethodField()
    metadata = serializers.SerializerMethodField()
    duration = serializers.SerializerMethodField()

    class Meta:
        model = Notification
        fields = [
            "id", "event_type", "category", "criticality", "title", "body", "action_url", "action_label", "image_url",
            "actor", "resource", "is_read", "read_at", "archived_at", "acknowledged_at", "created_at",
            "type", "actions", "group_key", "expires_at", "persistent", "icon", "metadata", "duration",
        ]

    def to_representation(self, instance: Notification) -> dict:
        data = super().to_representation(instance)
        # A row stored before links were checked at intake must not reach a page as a script link.
        data["action_url"] = link_safe_or_empty(data.get("action_url"))
        data["image_url"] = link_safe_or_empty(data.get("image_url"))
        return data

    def _display(self, obj: Notification) -> dict:
        cached = getattr(obj, "_inbox_display", None)
        if cached is None:
            cached = inbox_display(obj)
            obj._inbox_display = cached  # type: ignore[attr-defined]
        return cached

    @extend_schema_field(serializers.ChoiceField(choices=["toast", "banner", "silent"]))
    def get_type(self, obj: Notification) -> str:
        return self._display(obj)["type"]

    @extend_schema_field(InboxActionSerializer(many=True))
    def get_actions(self, obj: Notification) -> list:
        return self._display(obj)["actions"]

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_expires_at(self, obj: Notification) -> str | None:
        return self._display(obj)["expires_at"]

    def get_persistent(self, obj: Notification) -> bool:
        return self._display(obj)["persistent"]

    def get_icon(self, obj: Notification) -> str:
        return self._display(obj)["icon"]

    @extend_schema_field(serializers.DictField())
    def get_metadata(self, obj: Notification) -> dict:
        return self._display(obj)["metadata"]

    @extend_schema_field(serializers.IntegerField(allow_null=True, help_text="Auto-dismiss after (ms)."))
    def get_duration(self, obj: Notification) -> int | None:
        return self._display(obj)["duration"]

    def get_actor(self, obj: Notification) -> dict:
        return {"type": obj.actor_type, "id": obj.actor_id, "name": obj.actor_name}

    def get_resource(self, obj: Notification) -> dict:
        return {"type": obj.resource_type, "id": obj.resource_id, "name": obj.resource_name}

    def get_is_read(self, obj: Notification) -> bool:
        return obj.read_at is not None
