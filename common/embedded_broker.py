"""The broker of the embedded run (`make run`): kombu's filesystem transport, with one fix.

kombu writes a message file in place (open, lock, write). A consumer listing the folder in
between moves the file away and reads it empty — its lock is advisory and the reader never
takes it — and the JSON error that follows stops the Celery worker for good. Here a message is
written under a name no consumer looks at and renamed into place, which is atomic on one
filesystem. `config/celery.py` makes this the transport behind `filesystem://`.
"""
from __future__ import annotations

import os
import uuid
from time import monotonic
from typing import Any

from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    # Same signature as kombu's filesystem Channel._put, which itself renames its base's `message`.
    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        # The consumer only takes names ending in ".<queue>.msg": this one is invisible until renamed.
        partial = os.path.join(self.data_folder_out, f".{name}.partial")
        try:
            with open(partial, "wb", buffering=0) as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise filesystem.ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel
