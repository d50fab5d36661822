"""The embedded run's broker: a message file is never visible to a consumer before it is whole
(kombu's own filesystem transport let a worker read a half-written file and stop)."""
from __future__ import annotations

import os
import threading
import uuid

from kombu import Connection

import common.embedded_broker as embedded_broker


def _options(tmp_path) -> dict:
    for sub in ("out", "processed", "control"):
        (tmp_path / sub).mkdir()
    return {"data_folder_in": str(tmp_path / "out"), "data_folder_out": str(tmp_path / "out"),
            "processed_folder": str(tmp_path / "processed"), "control_folder": str(tmp_path / "control"),
            "store_processed": False}


def test_filesystem_urls_use_the_atomic_transport():
    import config.celery  # noqa: F401  (registers the alias)

    with Connection("filesystem://") as conn:
        assert isinstance(conn.transport, embedded_broker.Transport)


def test_a_message_is_invisible_while_it_is_written(tmp_path, monkeypatch):
    options = _options(tmp_path)
    seen_while_writing: list[list[str]] = []
    real_dumps = embedded_broker.dumps

    def dumps_and_look(payload):
        # Called after the file is opened and before its bytes are written.
        seen_while_writing.append([n for n in os.listdir(options["data_folder_out"]) if n.endswith(".q.msg")])
        return real_dumps(payload)

    monkeypatch.setattr(embedded_broker, "dumps", dumps_and_look)
    with Connection("filesystem://", transport=embedded_broker.Transport, transport_options=options) as conn:
        queue = conn.SimpleQueue("q")
        queue.put({"n": 1})
        assert seen_while_writing == [[]]
        message = queue.get(timeout=1)
        assert message.payload == {"n": 1}
        message.ack()


def test_a_consumer_draining_while_a_producer_writes_reads_every_message_whole(tmp_path):
    options = _options(tmp_path)
    total = 150
    # The transport keeps declared bindings for the whole process: a queue name of its own.
    name = f"drain-{uuid.uuid4().hex}"

    def produce():
        with Connection("filesystem://", transport=embedded_broker.Transport, transport_options=options) as conn:
            queue = conn.SimpleQueue(name)
            for i in range(total):
                queue.put({"i": i, "pad": "x" * 100_000})

    received = []
    with Connection("filesystem://", transport=embedded_broker.Transport, transport_options=options) as conn:
        queue = conn.SimpleQueue(name)  # declared (and bound) before anything is published, as a worker does
        producer = threading.Thread(target=produce)
        producer.start()
        while len(received) < total:
            message = queue.get(timeout=10)
            received.append(message.payload["i"])
            message.ack()
    producer.join()
    assert sorted(received) == list(range(total))
