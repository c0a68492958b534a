from rest_framework.routers import SimpleRouter

from core.api.approvals import ApprovalViewSet
from core.api.views import RunViewSet

router = SimpleRouter()
router.register("runs", RunViewSet, basename="run")
router.register("approvals", ApprovalViewSet, basename="approval")
urlpatterns = router.urls
