"""POST /api/v1/playbooks/{name}/versions/{n}/test/: run a version's playbook tests.

Served by core, not beside the other playbook routes: the tests run on the engine, which
the playbooks app may not import."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.generics import get_object_or_404
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import roles
from accounts.permissions import RolePermission
from core.playbook_testing import run_definition_tests
from playbooks.models import PlaybookVersion


class TestResultSerializer(serializers.Serializer[dict[str, object]]):
    name = serializers.CharField()
    passed = serializers.BooleanField()
    failures = serializers.ListField(child=serializers.CharField())
    outcome = serializers.CharField(help_text="the run's status when the test stopped")
    steps = serializers.DictField(child=serializers.CharField(), help_text="each step's status")


class TestRunSerializer(serializers.Serializer[dict[str, object]]):
    playbook = serializers.CharField()
    version = serializers.IntegerField()
    passed = serializers.BooleanField(help_text="every test passed (true when there are none)")
    tests = TestResultSerializer(many=True)


class PlaybookTestsView(APIView):
    """Runs on the engine with the actions mocked: no network call, nothing stored."""

    permission_classes = [RolePermission]
    write_roles = roles.ROLES  # any role may run tests: they change nothing

    @extend_schema(
        summary="Run a version's playbook tests",
        parameters=[OpenApiParameter("number", int, OpenApiParameter.PATH)],
        request=None,
        responses={200: TestRunSerializer},
    )
    def post(self, request: Request, name: str, number: int) -> Response:
        version = get_object_or_404(
            PlaybookVersion.objects.select_related("playbook"), playbook__name=name, number=number
        )
        results = [r.as_dict() for r in run_definition_tests(version.definition)]
        return Response({
            "playbook": name, "version": number,
            "passed": all(r["passed"] for r in results), "tests": results,
        })  # fmt: skip
