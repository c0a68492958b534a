"""URL routes: the API under /api/v1/, health and metrics, admin."""

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import include, path
from django.views.decorators.csp import csp_override
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from config import csp, health

urlpatterns = [
    path("admin/", admin.site.urls),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("core.approvals.urls")),
    path("", include("web.urls")),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Swagger UI's page carries a <style> block of its own; its script comes from a URL
    # (the split view), so only this page's styles are relaxed.
    path(
        "api/v1/docs/",
        csp_override(csp.API_DOCS)(SpectacularSwaggerSplitView.as_view(url_name="api-schema")),
        name="api-docs",
    ),
    path("favicon.ico", RedirectView.as_view(url=static("web/favicon.svg"), permanent=True)),
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
