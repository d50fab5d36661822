import os

from celery import Celery
from celery.signals import before_task_publish, task_prerun
from kombu.transport import TRANSPORT_ALIASES

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# The embedded run's broker (`filesystem://`) writes each message atomically; see common/embedded_broker.py.
# Every process imports this module (config/__init__.py), so the worker, beat, the web tier and the
# consumers all read and write the broker folder the same way.
TRANSPORT_ALIASES["filesystem"] = "common.embedded_broker:Transport"

app = Celery("troubadour")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@before_task_publish.connect
def _carry_log_ids(headers=None, **kwargs) -> None:
    """A task published during a request, a message or another task carries their ids."""
    from common.logging import CORRELATION_ID, CORRELATION_ID_HEADER, REQUEST_ID, REQUEST_ID_HEADER

    if headers is not None:
        headers.setdefault(REQUEST_ID_HEADER, REQUEST_ID.get())
        headers.setdefault(CORRELATION_ID_HEADER, CORRELATION_ID.get())


@task_prerun.connect
def _adopt_log_ids(task=None, **kwargs) -> None:
    from common.logging import CORRELATION_ID, CORRELATION_ID_HEADER, REQUEST_ID, REQUEST_ID_HEADER, clean_id, new_id

    request = getattr(task, "request", None)
    request_id = clean_id(getattr(request, REQUEST_ID_HEADER, "")) or new_id()
    REQUEST_ID.set(request_id)
    CORRELATION_ID.set(clean_id(getattr(request, CORRELATION_ID_HEADER, "")) or request_id)
