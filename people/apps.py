from django.apps import AppConfig


class PeopleConfig(AppConfig):
    """The people-facing product: sign-up and account emails, the profile, the preference
    center and the dashboard. It composes the services of accounts, invitations and
    notifications; it owns no tables."""

    name = "people"
    default_auto_field = "django.db.models.BigAutoField"
