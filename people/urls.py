from django.urls import path

from . import api, views, views_accounts

urlpatterns = [
    path("accounts/signup/", views_accounts.signup, name="signup"),
    path("accounts/verify-email/resend/", views_accounts.resend_verification, name="verify-email-resend"),
    path("accounts/verify-email/<str:token>/", views_accounts.verify_email, name="verify-email"),
    path("accounts/password-reset/", views_accounts.password_reset, name="password_reset"),
    path("accounts/password-reset/done/", views_accounts.password_reset_done, name="password_reset_done"),
    path("accounts/reset/<uidb64>/<token>/", views_accounts.password_reset_confirm, name="password_reset_confirm"),
    path("accounts/reset/done/", views_accounts.password_reset_complete, name="password_reset_complete"),
    path("me/", views.dashboard, name="me-dashboard"),
    path("me/profile/", views.profile, name="me-profile"),
    path("me/preferences/", views.preferences, name="me-preferences"),
    path("me/phone/code/", views.phone_code, name="me-phone-code"),
    path("me/phone/confirm/", views.phone_confirm, name="me-phone-confirm"),
]

api_urlpatterns = [
    path("me/", api.MeApi.as_view(), name="me"),
    path("me/invitations/summary/", api.InvitationSummaryApi.as_view(), name="me-invitations-summary"),
    path("me/invitations/history/", api.InvitationHistoryApi.as_view(), name="me-invitations-history"),
    path("me/delivery-analytics/", api.DeliveryAnalyticsApi.as_view(), name="me-delivery-analytics"),
]
