"""ASGI lifespan: what a web process starts beside serving requests."""
from __future__ import annotations

import asyncio
import logging

from django.conf import settings

logger = logging.getLogger(__name__)


async def lifespan(scope, receive, send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            if settings.REALTIME_BUS_CONSUMER:
                from . import bus

                bus.start(asyncio.get_running_loop())
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            from . import acks

            await acks.flush()  # acknowledgements still pending are written before the process goes
            if settings.REALTIME_BUS_CONSUMER:
                from . import bus

                await asyncio.get_running_loop().run_in_executor(None, bus.stop)
            await send({"type": "lifespan.shutdown.complete"})
            return
