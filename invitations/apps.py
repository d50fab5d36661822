from django.apps import AppConfig


class InvitationsConfig(AppConfig):
    name = "invitations"

    def ready(self) -> None:
        from .content_types import register
        from .content_types.story import STORY

        register(STORY)
