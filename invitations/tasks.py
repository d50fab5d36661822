"""Invitation maintenance tasks (thin: one service call each)."""
from __future__ import annotations

from celery import shared_task


from .services import invitations_expire_due


@shared_task(name="invitations.expire_due", ignore_result=True)
def expire_due_task() -> int:
    """Expire pending invitations past their date; a crontab entry in config.beat runs it."""
    return invitations_expire_due()
