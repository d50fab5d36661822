"""Admin actions for dead letters and deliveries (wired into notifications/admin.py).

Staff act on any organization; the services audit every replay, discard and retry.
"""
from __future__ import annotations

from django.contrib import admin, messages

from common.exceptions import TroubadourError
from notifications.engine.retry import dead_letters_discard, dead_letters_replay, delivery_retry_now


@admin.action(description="Replay selected dead letters")
def replay_dead_letters(modeladmin, request, queryset) -> None:
    try:
        queued = dead_letters_replay(dead_letter_ids=list(queryset.values_list("pk", flat=True)),
                                     organization_id=None, user_id=request.user.pk)
    except TroubadourError as exc:
        modeladmin.message_user(request, f"Nothing replayed: {exc.detail}", level=messages.ERROR)
        return
    modeladmin.message_user(request, f"{len(queued)} deliveries queued again.", level=messages.SUCCESS)


@admin.action(description="Discard selected dead letters")
def discard_dead_letters(modeladmin, request, queryset) -> None:
    try:
        count = dead_letters_discard(dead_letter_ids=list(queryset.values_list("pk", flat=True)),
                                     organization_id=None, user_id=request.user.pk)
    except TroubadourError as exc:
        modeladmin.message_user(request, f"Nothing discarded: {exc.detail}", level=messages.ERROR)
        return
    modeladmin.message_user(request, f"{count} dead letters discarded.", level=messages.SUCCESS)


@admin.action(description="Retry selected deliveries now")
def retry_deliveries(modeladmin, request, queryset) -> None:
    done, refused = 0, []
    for pk in queryset.values_list("pk", flat=True)[:500]:
        try:
            delivery_retry_now(delivery_id=pk, organization_id=None, user_id=request.user.pk)
            done += 1
        except TroubadourError as exc:
            refused.append(f"#{pk}: {exc.detail}")
    if done:
        modeladmin.message_user(request, f"{done} deliveries queued again.", level=messages.SUCCESS)
    if refused:
        modeladmin.message_user(request, "Not retried: " + "; ".join(refused[:10]), level=messages.WARNING)


DEAD_LETTER_ACTIONS = [replay_dead_letters, discard_dead_letters]
DELIVERY_ACTIONS = [retry_deliveries]
