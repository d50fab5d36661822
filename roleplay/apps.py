from django.apps import AppConfig


class RoleplayConfig(AppConfig):
    name = "roleplay"

    def ready(self) -> None:
        from invitations.content_types import register_item_extension

        from .content import ROLE_EXTENSION

        register_item_extension(ROLE_EXTENSION)
