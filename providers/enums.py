"""Enumerations of the provider layer."""
from __future__ import annotations

from django.db import models


class ProviderHealthStatus(models.TextChoices):
    HEALTHY = "HEALTHY", "Healthy"
    DEGRADED = "DEGRADED", "Degraded"
    UNHEALTHY = "UNHEALTHY", "Unhealthy"
    UNKNOWN = "UNKNOWN", "Unknown"
