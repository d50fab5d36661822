"""Admin building blocks shared by the apps' admin modules."""
from __future__ import annotations


class ReadOnlyAdminMixin:
    """Records only the system writes (deliveries, audit rows, health checks, costs...): they can
    be viewed and filtered, never added, edited or deleted from the console. Actions that act
    on them (retry, replay) call the services the API uses."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
