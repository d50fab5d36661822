from django.urls import path

from . import api

urlpatterns: list = []

api_urlpatterns = [
    path("stories/", api.StoryListCreateApi.as_view(), name="story-list"),
    path("stories/<int:story_id>/", api.StoryDetailApi.as_view(), name="story-detail"),
    path("conversation-styles/", api.ConversationStyleListApi.as_view(), name="conversation-style-list"),
]
