"""Routes for the integrations API; config/urls.py includes these under api/v1/."""

from __future__ import annotations

from rest_framework.routers import DefaultRouter

from integrations.api.views import ConnectionViewSet, IntegrationViewSet

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("connections", ConnectionViewSet, basename="connection")
router.register("integrations", IntegrationViewSet, basename="integration")

urlpatterns = router.urls
