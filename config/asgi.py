"""The ASGI application every web process serves (`make serve`, docker-compose `web`, `make run`).

HTTP goes to Django (sync views in threads, async views — the SSE stream — on the loop);
WebSocket `/ws/notifications/` to Channels; the lifespan protocol starts this process's
consumer of the in-app exchange.
"""
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_application = get_asgi_application()  # sets Django up before anything imports models

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from notifications.realtime.asgi import lifespan  # noqa: E402
from notifications.realtime.auth import SessionOrTokenAuthMiddleware  # noqa: E402
from notifications.realtime.consumers import NotificationConsumer  # noqa: E402

application = ProtocolTypeRouter({
    "http": django_application,
    "websocket": SessionOrTokenAuthMiddleware(URLRouter([
        path("ws/notifications/", NotificationConsumer.as_asgi()),
    ])),
    "lifespan": lifespan,
})
