"""Gunicorn's uvicorn worker with the settings the web tier relies on."""
from uvicorn_worker import UvicornWorker as _UvicornWorker


class UvicornWorker(_UvicornWorker):
    CONFIG_KWARGS = {
        "loop": "auto",
        "http": "auto",
        "lifespan": "on",  # starts the process's in-app bus consumer (notifications.realtime.asgi)
        "ws_ping_interval": 20.0,  # detects dead peers; keeps proxies from closing idle sockets
        "ws_ping_timeout": 20.0,
        "ws_max_size": 64 * 1024,  # client frames are small JSON
        # Frames are small JSON: compressing them costs CPU on both ends and a zlib context
        # (tens of KB) per open socket, for next to nothing saved.
        "ws_per_message_deflate": False,
    }
