from __future__ import annotations

from django.contrib import admin, messages
from unfold.admin import ModelAdmin, TabularInline

from common.exceptions import TroubadourError

from .models import InvitationHistory, InvitationStatus, InviteeOptOut, StoryInvitation
from .selectors import invitations_delivery_states
from .services import invitation_revoke


class InvitationHistoryInline(TabularInline):
    model = InvitationHistory
    extra = 0
    can_delete = False
    fields = ("created_at", "action", "user", "data")
    readonly_fields = fields
    ordering = ("id",)

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(StoryInvitation)
class StoryInvitationAdmin(ModelAdmin):
    list_display = (
        "id", "invitee", "story", "inviter", "conversation_style", "status", "delivery_summary", "created_at", "expires_at",
    )
    list_filter = ("status", "conversation_style", "invitation_type", "created_at")
    search_fields = ("invitee_email", "invitee_phone", "story__title", "inviter__username", "inviter__email")
    list_select_related = ("story", "inviter")
    raw_id_fields = ("story", "inviter", "character", "narration")
    readonly_fields = (
        "token_hash", "notification", "delivery_summary", "created_at", "viewed_at", "accepted_at", "declined_at", "revoked_at", "completed_at",
    )
    date_hierarchy = "created_at"
    inlines = [InvitationHistoryInline]
    actions = ["revoke_selected"]

    @admin.display(description="Invitee")
    def invitee(self, obj: StoryInvitation) -> str:
        return obj.invitee

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        # The page's delivery states in one query, not one per row (the page's objects are cached
        # on the queryset, so the annotation reaches the template).
        page = list(changelist.result_list)
        states = invitations_delivery_states(invitations=page)
        for invitation in page:
            invitation.delivery_states = states[invitation.pk]
        return changelist

    @admin.display(description="Delivery")
    def delivery_summary(self, obj: StoryInvitation) -> str:
        states = getattr(obj, "delivery_states", None)
        if states is None:
            states = invitations_delivery_states(invitations=[obj])[obj.pk]
        return ", ".join(f"{channel}: {state}" for channel, state in states.items()) or "—"

    @admin.action(description="Revoke selected invitations")
    def revoke_selected(self, request, queryset) -> None:
        revoked = failed = 0
        for invitation in queryset.filter(status__in=[InvitationStatus.PENDING, InvitationStatus.ACCEPTED]).select_related("inviter"):
            try:
                invitation_revoke(invitation_id=invitation.pk, inviter=invitation.inviter, actor=request.user)
                revoked += 1
            except TroubadourError:
                failed += 1
        self.message_user(request, f"Revoked {revoked} invitation(s).", messages.SUCCESS)
        if failed:
            self.message_user(request, f"{failed} invitation(s) could not be revoked.", messages.WARNING)


@admin.register(InvitationHistory)
class InvitationHistoryAdmin(ModelAdmin):
    list_display = ("id", "invitation", "action", "user", "created_at")
    list_filter = ("action", "created_at")
    search_fields = ("invitation__invitee_email", "invitation__invitee_phone")
    list_select_related = ("invitation", "user")
    raw_id_fields = ("invitation", "user")
    readonly_fields = ("invitation", "user", "action", "data", "created_at")


@admin.register(InviteeOptOut)
class InviteeOptOutAdmin(ModelAdmin):
    list_display = ("address", "inviter", "source", "created_at")
    list_filter = ("source",)
    search_fields = ("address", "inviter__username", "inviter__email")
    raw_id_fields = ("inviter",)
    readonly_fields = ("created_at",)
