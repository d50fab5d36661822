"""Who is on the other end of a WebSocket.

A browser is authenticated by its session cookie, and only from an allowed origin (a page on
another site could otherwise open a socket with the visitor's cookie: the WebSocket handshake
is not covered by CSRF). Other clients send ``Authorization: Token <key>`` (DRF token); a
header cannot be set by a page of another site, so no origin check applies. An organization
API key is not a person and has no inbox: refused like an anonymous caller.
"""
from __future__ import annotations

from channels.auth import AuthMiddlewareStack
from channels.security.websocket import AllowedHostsOriginValidator
from django.contrib.auth.models import AnonymousUser
from notifications.realtime.db import db_async


@db_async
def _user_for_token(key: str):
    from rest_framework.authtoken.models import Token

    try:
        token = Token.objects.select_related("user").get(key=key)
    except (Token.DoesNotExist, ValueError):
        return AnonymousUser()
    return token.user if token.user.is_active else AnonymousUser()


class SessionOrTokenAuthMiddleware:
    def __init__(self, inner) -> None:
        self.inner = inner
        self.session_app = AllowedHostsOriginValidator(AuthMiddlewareStack(inner))

    async def __call__(self, scope, receive, send):
        header = dict(scope.get("headers") or []).get(b"authorization")
        if header is None:
            return await self.session_app(scope, receive, send)
        keyword, _, key = header.decode("latin-1").partition(" ")
        user = AnonymousUser()
        if keyword == "Token" and key.strip():
            user = await _user_for_token(key.strip())
        return await self.inner({**scope, "user": user, "auth": "token"}, receive, send)
