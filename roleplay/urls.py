from django.urls import path

from . import api

urlpatterns: list = []

api_urlpatterns = [
    path("stories/<int:story_id>/roleplay-templates/", api.StoryTemplatesApi.as_view(), name="story-roleplay-templates"),
    path("roleplay-templates/", api.TemplatesApi.as_view(), name="roleplay-templates"),
    path("roleplay-templates/<int:roleplay_template_id>/", api.TemplateApi.as_view(), name="roleplay-template"),
]
