from django.apps import AppConfig


class NewsConfig(AppConfig):
    name = "news"
    verbose_name = "News feed"

    def ready(self) -> None:
        from invitations.content_types import register

        from .content import NEWS

        register(NEWS)
