"""Routes of the artifacts API; included by config.urls under api/v1/."""

from __future__ import annotations

from rest_framework.routers import SimpleRouter

from artifacts.api.views import ArtifactViewSet

router = SimpleRouter()
router.register("artifacts", ArtifactViewSet, basename="artifact")
urlpatterns = router.urls
