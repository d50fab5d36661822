"""Celery queues: tasks name their queue from here, workers subscribe to these names."""
from enum import StrEnum


class Queue(StrEnum):
    DEFAULT = "default"
    EVENTS = "events"
    DELIVERY = "delivery"
    NARRATION = "narration"
    MAINTENANCE = "maintenance"


ALL_QUEUES = ",".join(q.value for q in Queue)
