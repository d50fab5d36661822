"""Provider implementations by code. Filled once, in `ProvidersConfig.ready()`."""
from __future__ import annotations

from importlib import import_module

from common.exceptions import ValidationError

from .base import BaseProvider

# Every provider module; importing one registers its classes.
PROVIDER_MODULES = (
    "providers.email.anymail",
    "providers.email.smtp",
    "providers.email.django_backend",
    "providers.email.google_workspace",
    "providers.sms.twilio",
    "providers.sms.vonage",
    "providers.sms.sns",
    "providers.sms.plivo",
    "providers.sms.messagebird",
    "providers.push.webpush",
    "providers.push.fcm",
    "providers.push.onesignal",
    "providers.whatsapp.twilio",
    "providers.whatsapp.meta",
    "providers.voice.twilio",
    "providers.voice.vonage",
    "providers.log",
)


class DuplicateProviderError(RuntimeError):
    pass


class ProviderRegistry:
    def __init__(self) -> None:
        self._by_code: dict[str, type[BaseProvider]] = {}

    def register(self, cls: type[BaseProvider]) -> type[BaseProvider]:
        if not cls.code or not cls.channel:
            raise ValueError(f"{cls.__name__} must define code and channel")
        existing = self._by_code.get(cls.code)
        if existing is not None and existing is not cls:
            raise DuplicateProviderError(f"provider code {cls.code!r} is already registered by {existing.__name__}")
        self._by_code[cls.code] = cls
        return cls

    def get(self, code: str) -> type[BaseProvider]:
        try:
            return self._by_code[code]
        except KeyError:
            raise ValidationError({"code": [f"Unknown provider code {code!r}."]}) from None

    def __contains__(self, code: str) -> bool:
        return code in self._by_code

    def codes(self, channel: str | None = None) -> list[str]:
        return sorted(c for c, cls in self._by_code.items() if channel is None or cls.channel == channel)

    def all(self) -> list[type[BaseProvider]]:
        return [self._by_code[c] for c in sorted(self._by_code)]


registry = ProviderRegistry()


def register(cls: type[BaseProvider]) -> type[BaseProvider]:
    """Class decorator for provider modules."""
    return registry.register(cls)


def autodiscover() -> None:
    for module in PROVIDER_MODULES:
        import_module(module)
