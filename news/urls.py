from django.urls import path

from . import api

urlpatterns: list = []

api_urlpatterns = [
    path("news/articles/", api.ArticlesApi.as_view(), name="news-articles"),
    path("news/articles/<int:article_id>/", api.ArticleApi.as_view(), name="news-article"),
    path("news/articles/<int:article_id>/invitations/", api.ArticleInvitationsApi.as_view(), name="news-article-invitations"),
]
