"""Publish Celery tasks by name, so that a service never imports the module declaring a task.

Tasks are declared in each app's ``tasks.py`` (they call services); services publish work
through here, by the task's stable name. That keeps imports flowing one way:
``tasks.py`` → services → ``common.publish``.
"""
from __future__ import annotations

import contextvars
from collections.abc import Iterable, Sequence
from typing import Any

from celery import current_app
from django.db import transaction

_discovered = False


def _discover() -> None:
    """Import every app's ``tasks.py`` (a worker does it at start; a web process on first publish).

    Imported directly, not through Celery's ``import_default_modules``: that signal also runs
    Django's system checks (the worker fixup's model validation), seconds of CPU charged to the
    first request of a web process that publishes a task.
    """
    from django.apps import apps

    global _discovered
    current_app.loader.autodiscover_tasks([config.name for config in apps.get_app_configs()])
    _discovered = True


def task_publish(name: str, *, args: Sequence[Any], countdown: float | None = None, queue: str | None = None) -> None:
    """Send one task now. A task registered in this process is sent through its own object,
    so ``task_always_eager`` (tests, the embedded run) applies; routing comes from
    ``task_routes`` unless ``queue`` names one."""
    options: dict[str, Any] = {}
    if countdown is not None:
        options["countdown"] = countdown
    if queue is not None:
        options["queue"] = queue
    task = current_app.tasks.get(name)
    if task is None and not _discovered:
        _discover()
        task = current_app.tasks.get(name)
    if task is not None:
        task.apply_async(args=list(args), **options)
    else:
        current_app.send_task(name, args=list(args), **options)


def tasks_publish_on_commit(name: str, *, calls: Iterable[Sequence[Any]], queue: str | None = None) -> None:
    """Send one task per argument list once the current transaction commits (at once when
    none is open; never if it rolls back). Robust: the rows are committed whatever happens to
    the publish, and the sweepers pick up what a broker outage lost."""
    pending = [list(args) for args in calls]
    if not pending:
        return

    def _publish() -> None:
        for args in pending:
            task_publish(name, args=args, queue=queue)

    # Published with the log ids of this moment (e.g. the correlation id of the event that
    # queued them), not with whatever is current when the transaction commits.
    context = contextvars.copy_context()
    transaction.on_commit(lambda: context.run(_publish), robust=True)
