"""API keys looked up once per process, revocation honoured at once.

`POST /api/v1/events/` authenticates every call with an organization API key; reading the key,
its organization, its creator and the creator's membership is a four-table query per call.
The key found (only a key that needs nothing more than that query to be accepted) is kept in a
process memo (common.generations) stamped with the ``api-keys`` generation. Anything that can
change whether a key is accepted, or the organization it acts for, bumps that generation:
saving or deleting an ApiKey, an Organization, a Membership or a User (unless only
``last_login`` changed), and the revocations done with ``QuerySet.update`` (accounts.services).
Every process then reads the database again on its next call.

Each call gets its own copy of the key and of its organization (a view may change them); the
memo's objects are never handed out.
"""
from __future__ import annotations

import copy

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from common.generations import GenerationMemo

from .models import ApiKey, Membership, Organization, User

api_keys: GenerationMemo[ApiKey | None] = GenerationMemo("api-keys")


def api_key_copy(key: ApiKey) -> ApiKey:
    """A copy a request may use (and change) without touching the memo's object."""
    clone = copy.copy(key)  # Model.__getstate__ copies _state and its fields cache
    clone.organization = copy.copy(key.organization)
    if key.created_by_id is not None:
        clone.created_by = copy.copy(key.created_by)
        for name in ("_perm_cache", "_user_perm_cache", "_group_perm_cache"):
            clone.created_by.__dict__.pop(name, None)
    return clone


def api_keys_changed() -> None:
    api_keys.bump()


@receiver(post_save, sender=ApiKey, dispatch_uid="accounts.key_cache.key_saved")
@receiver(post_delete, sender=ApiKey, dispatch_uid="accounts.key_cache.key_deleted")
@receiver(post_save, sender=Organization, dispatch_uid="accounts.key_cache.org_saved")
@receiver(post_delete, sender=Organization, dispatch_uid="accounts.key_cache.org_deleted")
@receiver(post_save, sender=Membership, dispatch_uid="accounts.key_cache.membership_saved")
@receiver(post_delete, sender=Membership, dispatch_uid="accounts.key_cache.membership_deleted")
@receiver(post_delete, sender=User, dispatch_uid="accounts.key_cache.user_deleted")
def _changed(sender, **kwargs) -> None:
    api_keys_changed()


@receiver(post_save, sender=User, dispatch_uid="accounts.key_cache.user_saved")
def _user_saved(sender, instance: User, update_fields=None, created: bool = False, **kwargs) -> None:
    if created:
        return  # a new account created no key yet
    if update_fields is not None and set(update_fields) <= {"last_login"}:
        return  # every sign-in saves last_login; it decides nothing about keys
    api_keys_changed()
