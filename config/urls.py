"""URL routes: the API under /api/v1/, health and metrics, admin."""

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config import health

urlpatterns = [
    path("admin/", admin.site.urls),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("core.approvals.urls")),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/v1/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include("playbooks.api.urls")),
    path("api/v1/", include("core.api.urls")),
    path("api/v1/", include("integrations.api.urls")),
    path("api/v1/", include("audit.api.urls")),
    path("api/v1/", include("artifacts.api.urls")),
    path("api/v1/", include("alerts.api.urls")),
    path("healthz", health.healthz, name="healthz"),
    path("metrics", health.metrics, name="metrics"),
]

# bench/intake.py's baseline: a view that inserts one row; never mounted otherwise.
if settings.BULWARK_BENCH_VIEWS:
    from bench.minimal_view import minimal

    urlpatterns.append(path("bench/minimal/", minimal))
