"""Routes of alert intake; included by config.urls under api/v1/."""

from __future__ import annotations

from django.urls import path

from alerts.api.views import hook

urlpatterns = [path("hooks/<slug:source>/", hook, name="alert-hook")]
