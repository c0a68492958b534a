from django.urls import path
from rest_framework.routers import SimpleRouter

from core.api.approvals import ApprovalViewSet
from core.api.playbook_tests import PlaybookTestsView
from core.api.recovery import FailureInbox, ReplayDetail, ReplayView
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
    path("playbooks/<str:name>/replay/", ReplayView.as_view(), name="playbook-replay"),
    path("replays/<int:pk>/", ReplayDetail.as_view(), name="replay-detail"),
    path("failures/", FailureInbox.as_view(), name="failure-inbox"),
]
