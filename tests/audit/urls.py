"""The audit API mounted as config.urls mounts it, plus the admin, without other apps' routes."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("audit.api.urls")),
]
