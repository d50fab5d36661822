"""Root URLs. Each app's `urls.py` exposes `urlpatterns` (web, webhooks) and
`api_urlpatterns` (mounted under /api/v1/)."""
from importlib import import_module

from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

from common import views as common_views
from notifications.metrics import metrics_view

APPS = ("accounts", "narrations", "invitations", "notifications", "providers", "people", "news", "roleplay", "batchjobs")

api_urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI and Redoc from drf-spectacular-sidecar's static files; no inline script (CSP).
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="schema", template_name="api_docs/swagger_ui.html"),
         name="api-docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="schema", template_name="api_docs/redoc.html"),
         name="api-redoc"),
]
web_urlpatterns: list = []
for app in APPS:
    module = import_module(f"{app}.urls")
    api_urlpatterns += getattr(module, "api_urlpatterns", [])
    web_urlpatterns += getattr(module, "urlpatterns", [])

urlpatterns = [
    path("health/live", common_views.live, name="health-live"),
    path("health/ready", common_views.ready, name="health-ready"),
    path("metrics", metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(template_name="accounts/login.html"), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/v1/", include(api_urlpatterns)),
    *web_urlpatterns,
]
if settings.DEBUG or not settings.DATABASE_URL:
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)

# JSON error answers under /api/ (HTML elsewhere): see common.views.
handler400 = "common.views.bad_request"
handler403 = "common.views.permission_denied"
handler404 = "common.views.not_found"
handler500 = "common.views.server_error"
