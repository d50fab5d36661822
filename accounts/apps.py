from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and organizations"

    def ready(self) -> None:
        from . import schema  # noqa: F401  (registers the OpenAPI extension)
        from . import key_cache  # noqa: F401  (what invalidates the API keys memo)
        from . import signals  # noqa: F401  (a membership ending revokes what it held)
