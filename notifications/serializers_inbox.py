"""The inbox item: one definition for the REST inbox, the WebSocket frame and the SSE event."""
from __future__ import annotations

from rest_framework import serializers

from common.links import link_safe_or_empty
from notifications.models import Notification


class InboxNotificationSerializer(serializers.ModelSerializer):
    actor = serializers.SerializerMethodField()
    resource = serializers.SerializerMethodField()
    is_read = serializers.SerializerMethodField()

    class Meta:
        model = Notification
        fields = [
            "id", "event_type", "category", "criticality", "title", "body", "action_url", "action_label", "image_url",
            "actor", "resource", "is_read", "read_at", "archived_at", "acknowledged_at", "created_at",
        ]

    def to_representation(self, instance: Notification) -> dict:
        data = super().to_representation(instance)
        # A row stored before links were checked at intake must not reach a page as a script link.
        data["action_url"] = link_safe_or_empty(data.get("action_url"))
        data["image_url"] = link_safe_or_empty(data.get("image_url"))
        return data

    def get_actor(self, obj: Notification) -> dict:
        return {"type": obj.actor_type, "id": obj.actor_id, "name": obj.actor_name}

    def get_resource(self, obj: Notification) -> dict:
        return {"type": obj.resource_type, "id": obj.resource_id, "name": obj.resource_name}

    def get_is_read(self, obj: Notification) -> bool:
        return obj.read_at is not None
