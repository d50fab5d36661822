from __future__ import annotations

from datetime import datetime

from django.contrib.auth.models import AnonymousUser
from django.utils import timezone
from rest_framework import authentication, exceptions

from .models import ApiKey
from .selectors import api_key_creator_problem, api_key_get_active


class ServicePrincipal(AnonymousUser):
    """The caller behind an organization API key: authenticated, but not a person."""

    def __init__(self, api_key: ApiKey) -> None:
        super().__init__()
        self.api_key = api_key
        self.organization = api_key.organization

    @property
    def is_authenticated(self) -> bool:  # type: ignore[override]
        return True

    def __str__(self) -> str:
        return f"api-key:{self.api_key.prefix}"


_last_used_written: dict[int, datetime] = {}  # key id -> when this process last wrote last_used_at


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Api-Key"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header.startswith(self.keyword + " "):
            return None
        raw = header[len(self.keyword) + 1 :].strip()
        if not raw:
            raise exceptions.AuthenticationFailed("Empty API key.")
        key = api_key_get_active(raw_key=raw)
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        problem = api_key_creator_problem(key)
        if problem:
            raise exceptions.AuthenticationFailed(problem)
        # One cheap write at most once a minute per key and process, not on every request (the
        # key may come from the memo, whose last_used_at is as old as the memo's copy).
        now = timezone.now()
        seen = [at for at in (key.last_used_at, _last_used_written.get(key.pk)) if at is not None]
        if not seen or (now - max(seen)).total_seconds() > 60:
            _last_used_written[key.pk] = now
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        return ServicePrincipal(key), key

    def authenticate_header(self, request) -> str:
        return self.keyword
