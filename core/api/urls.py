from rest_framework.routers import SimpleRouter

from core.api.views import RunViewSet

router = SimpleRouter()
router.register("runs", RunViewSet, basename="run")
urlpatterns = router.urls
