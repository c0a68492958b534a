"""Routes of the audit API; included by config.urls under api/v1/."""

from __future__ import annotations

from django.urls import path
from rest_framework.routers import DefaultRouter

from audit.api.digests import AuditDigestViewSet, AuditPublicKeyView, AuditVerifyView
from audit.api.export import AuditExportView
from audit.api.holds import AuditTombstoneViewSet, LegalHoldViewSet
from audit.api.views import AuditEventViewSet

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("audit/digests", AuditDigestViewSet, basename="audit-digest")
router.register("audit/legal-holds", LegalHoldViewSet, basename="audit-legal-hold")
router.register("audit/tombstones", AuditTombstoneViewSet, basename="audit-tombstone")
router.register("audit", AuditEventViewSet, basename="audit")

# Before the router's routes: "export" would otherwise be taken for an event's id.
urlpatterns = [
    path("audit/export/", AuditExportView.as_view(), name="audit-export"),
    path("audit/public-key/", AuditPublicKeyView.as_view(), name="audit-public-key"),
    path("audit/verify/", AuditVerifyView.as_view(), name="audit-verify"),
    *router.urls,
]
