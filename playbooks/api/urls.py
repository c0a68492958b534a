"""Routes of the playbooks API, included under /api/v1/."""

from rest_framework.routers import SimpleRouter

from playbooks.api.views import PlaybookViewSet

router = SimpleRouter()
router.register("playbooks", PlaybookViewSet, basename="playbook")

urlpatterns = router.urls
