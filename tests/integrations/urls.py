"""Only the integrations API, as config/urls.py mounts it, for tests independent of other apps."""

from django.urls import include, path

urlpatterns = [path("api/v1/", include("integrations.api.urls"))]
