"""The one signal accounts listens to: a membership ending, however it ends.

Memberships are removed from the admin (the membership page, the organization's inline, a bulk
action) and by cascade when a user or an organization is deleted; only a post_delete receiver
sees all of these. It only calls the service.
"""
from __future__ import annotations

from django.db.models.signals import post_delete
from django.dispatch import receiver

from .models import Membership
from .services import membership_departed


@receiver(post_delete, sender=Membership, dispatch_uid="accounts.membership_departed")
def _membership_deleted(sender, instance: Membership, **kwargs) -> None:
    # Runs in the deleting transaction: if the removal rolls back, so does the revocation.
    membership_departed(user_id=instance.user_id, organization_id=instance.organization_id)
