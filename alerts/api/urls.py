"""Routes of alert intake and the alerts API; included by config.urls under api/v1/."""

from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from alerts.api.sources import AlertSourceViewSet, AlertViewSet, ScheduleViewSet
from alerts.api.views import hook

router = SimpleRouter()
router.register("alert-sources", AlertSourceViewSet, basename="alert-source")
router.register("alerts", AlertViewSet, basename="alert")
router.register("schedules", ScheduleViewSet, basename="schedule")
urlpatterns = [path("hooks/<slug:source>/", hook, name="alert-hook"), *router.urls]
