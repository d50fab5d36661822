"""Who is on call: reads over OnCallRotation / OnCallShift."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.utils import timezone

from .models import OnCallShift


def oncall_users_at(*, rotation_ids: Iterable[int], at: datetime | None = None) -> dict[int, int]:
    """rotation id → id of the user on call at `at` (one query for every rotation).

    Overlapping shifts (a hand-over, a swap) resolve to the shift that started last, so an
    override entered on top of the regular schedule wins.
    """
    ids = {int(pk) for pk in rotation_ids}
    if not ids:
        return {}
    at = at or timezone.now()
    rows = (
        OnCallShift.objects.filter(rotation_id__in=ids, starts_at__lte=at, ends_at__gt=at)
        .order_by("rotation_id", "-starts_at", "-pk")
        .values_list("rotation_id", "user_id")
    )
    current: dict[int, int] = {}
    for rotation_id, user_id in rows:
        current.setdefault(rotation_id, user_id)
    return current
