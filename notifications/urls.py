"""Notification URLs, gathered from the intake side and the delivery/inbox side."""
from django.urls import path

from . import urls_admin, urls_delivery, urls_intake

urlpatterns: list = [*urls_intake.urlpatterns, *urls_delivery.urlpatterns, *urls_admin.urlpatterns]
api_urlpatterns: list = [*urls_intake.api_urlpatterns, *urls_delivery.api_urlpatterns, *urls_admin.api_urlpatterns]

from . import urls_reliability  # noqa: E402

urlpatterns += urls_reliability.urlpatterns
api_urlpatterns += urls_reliability.api_urlpatterns

from . import urls_subscribers  # noqa: E402

urlpatterns += urls_subscribers.urlpatterns
api_urlpatterns += urls_subscribers.api_urlpatterns

from . import views_unsubscribe  # noqa: E402

urlpatterns.append(path("u/<str:token>/", views_unsubscribe.unsubscribe, name="unsubscribe"))
