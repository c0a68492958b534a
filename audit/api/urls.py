"""Routes of the audit API; included by config.urls under api/v1/."""

from __future__ import annotations

from rest_framework.routers import DefaultRouter

from audit.api.views import AuditEventViewSet

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("audit", AuditEventViewSet, basename="audit")

urlpatterns = router.urls
