"""The ASGI side of the realtime tier: WebSocket consumer, async SSE, presence, in-app bus consumer."""
