from django.urls import path

from . import api, api_recommendations, views

urlpatterns = [
    path("", views.home, name="home"),
    path("stories/<int:story_id>/", views.story_detail, name="story-page"),
    path("i/<str:token>", views.invitation_landing, name="invitation-landing"),
    path("u/stop/<str:token>/", views.invitee_optout, name="invitee-optout"),
]

api_urlpatterns = [
    path("me/recommendations/", api_recommendations.RecommendationsApi.as_view(), name="me-recommendations"),
    path("stories/<int:story_id>/invitations/", api.StoryInvitationsApi.as_view(), name="story-invitations"),
    path("invitations/<int:invitation_id>/", api.InvitationApi.as_view(), name="invitation-detail"),
    path("invitations/<int:invitation_id>/revoke/", api.InvitationRevokeApi.as_view(), name="invitation-revoke"),
    path("invitations/<int:invitation_id>/reissue/", api.InvitationReissueApi.as_view(), name="invitation-reissue"),
    path("stories/<int:story_id>/invitations/progress/", api.StoryInvitationProgressApi.as_view(), name="story-invitations-progress"),
    path("invitations/by-token/<str:token>/", api.InvitationByTokenApi.as_view(), name="invitation-by-token"),
    path("invitations/by-token/<str:token>/accept/", api.InvitationAcceptApi.as_view(), name="invitation-accept"),
    path("invitations/by-token/<str:token>/decline/", api.InvitationDeclineApi.as_view(), name="invitation-decline"),
]
