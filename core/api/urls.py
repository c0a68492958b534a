from django.urls import path
from rest_framework.routers import SimpleRouter

from core.api.approvals import ApprovalViewSet
from core.api.playbook_tests import PlaybookTestsView
from core.api.views import RunViewSet

router = SimpleRouter()
router.register("runs", RunViewSet, basename="run")
router.register("approvals", ApprovalViewSet, basename="approval")
urlpatterns = [
    *router.urls,
    path(
        "playbooks/<str:name>/versions/<int:number>/test/",
        PlaybookTestsView.as_view(),
        name="playbook-version-test",
    ),
]
