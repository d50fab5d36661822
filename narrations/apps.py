from django.apps import AppConfig


class NarrationsConfig(AppConfig):
    name = "narrations"
