"""What every view of the notification API needs: who is calling (a person or an
organization's API key) and input validation that answers 400 with the serializer's errors."""
from __future__ import annotations

from typing import Any

from rest_framework.request import Request

from accounts.authentication import ServicePrincipal
from accounts.models import ApiKey
from common.exceptions import PermissionDenied, ValidationError


def is_service(request: Request) -> bool:
    return isinstance(request.user, ServicePrincipal) or isinstance(request.auth, ApiKey)


def person(request: Request):
    """The signed-in person (API keys act for an organization, not for a user)."""
    if is_service(request):
        raise PermissionDenied("This endpoint is for signed-in users, not API keys.")
    return request.user


def validated(serializer_class, data: Any, **kwargs) -> dict[str, Any]:
    serializer = serializer_class(data=data, **kwargs)
    if not serializer.is_valid():
        raise ValidationError(serializer.errors)
    return serializer.validated_data
