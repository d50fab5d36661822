"""The delivery channels, shared by the provider layer and the notification platform.

It lives below both so that `providers/` can name a channel without importing
`notifications/` (see docs/architecture.md for who may import whom).
"""
from __future__ import annotations

from django.db import models


class Channel(models.TextChoices):
    IN_APP = "IN_APP", "In-app"
    EMAIL = "EMAIL", "Email"
    PUSH = "PUSH", "Push"
    SMS = "SMS", "SMS"
    WHATSAPP = "WHATSAPP", "WhatsApp"
    VOICE = "VOICE", "Voice call"
