"""Playbook tests from the API, the CLI and at publish: a failing expectation refuses the
publish, named, and changes nothing."""

from __future__ import annotations

from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import AuditEvent
from playbooks.models import PlaybookVersion
from playbooks.versions import create_playbook, publish_version
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

URL = "/api/v1/playbooks/"


def _greet(expected: str) -> dict[str, Any]:
    return {
        "name": "greet",
        "steps": [{"id": "hello", "action": "util.echo", "with": {"message": "hi {{ inputs.who }}"}}],
        "inputs": {"who": {"type": "string", "default": "there"}},
        "tests": [
            {"name": "says hello", "inputs": {"who": "ann"},
             "expect": {"outcome": "succeeded", "values": {"steps.hello.output.message": expected}}},
        ],
    }  # fmt: skip


def test_a_failing_test_refuses_the_publish_naming_the_expectation(alice: User) -> None:
    version = create_playbook(definition=_greet("hi bob"), actor="user:alice")

    response = client_for(alice).post(f"{URL}greet/versions/1/publish/")

    assert response.status_code == 400
    assert response.json()["errors"] == [{
        "path": "tests[0]",
        "message": "test 'says hello' fails: expected steps.hello.output.message to be "
                   '"hi bob", but it is "hi ann"',
    }]  # fmt: skip
    version.refresh_from_db()
    assert version.state == PlaybookVersion.State.DRAFT
    assert not AuditEvent.objects.filter(kind="playbook.published").exists()


def test_passing_tests_let_the_publish_through(alice: User) -> None:
    create_playbook(definition=_greet("hi ann"), actor="user:alice")

    response = client_for(alice).post(f"{URL}greet/versions/1/publish/")

    assert response.status_code == 200, response.json()
    assert response.json()["state"] == "published"


def test_the_api_runs_a_versions_tests_for_any_role(dave: User) -> None:
    create_playbook(definition=_greet("hi bob"), actor="user:alice")

    response = client_for(dave).post(f"{URL}greet/versions/1/test/")

    assert response.status_code == 200
    body = response.json()
    assert (body["playbook"], body["version"], body["passed"]) == ("greet", 1, False)
    [test] = body["tests"]
    assert test["name"] == "says hello"
    assert test["outcome"] == "succeeded"
    assert test["steps"] == {"hello": "succeeded"}
    assert test["failures"] == [
        'expected steps.hello.output.message to be "hi bob", but it is "hi ann"'
    ]
    assert client_for(dave).post(f"{URL}greet/versions/2/test/").status_code == 404
    assert client_for(None).post(f"{URL}greet/versions/1/test/").status_code in (401, 403)


def test_publishing_by_code_is_refused_too(db: None) -> None:
    from playbooks.versions import DefinitionInvalid

    version = create_playbook(definition=_greet("hi bob"), actor="system:test")
    with pytest.raises(DefinitionInvalid, match="test 'says hello' fails"):
        publish_version(version=version, actor="system:test")


def _call(*args: str) -> tuple[str, str | None]:
    out = StringIO()
    try:
        call_command("test_playbooks", *args, stdout=out)
    except CommandError as exc:
        return out.getvalue(), str(exc)
    return out.getvalue(), None


def test_the_command_tests_the_latest_version_and_exits_1_on_a_failure(db: None) -> None:
    create_playbook(definition=_greet("hi ann"), actor="system:test")
    out, error = _call("greet")
    assert error is None
    assert "PASS greet v1: says hello" in out
    assert "1 of 1 tests passed" in out

    from playbooks.models import Playbook
    from playbooks.versions import create_version

    create_version(playbook=Playbook.objects.get(name="greet"), definition=_greet("hi bob"),
                   actor="system:test")  # fmt: skip
    out, error = _call()
    assert error == "1 of 1 tests failed"
    assert "FAIL greet v2: says hello" in out
    assert '  - expected steps.hello.output.message to be "hi bob", but it is "hi ann"' in out
    out, error = _call("greet", "--playbook-version", "1")
    assert error is None
    assert _call("nope")[1] == "no playbook named 'nope'"


def test_the_command_tests_definition_files(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(yaml.safe_dump(_greet("hi ann")), encoding="utf-8")
    bad.write_text("name: x\nsteps: [{id: a, action: nope.nope}]\n", encoding="utf-8")
    out, error = _call("--file", str(good))
    assert error is None
    assert f"PASS {good}: says hello" in out
    error = _call("--file", str(bad))[1]
    assert error is not None
    assert error == f"{bad}: invalid definition: steps.a.action: unknown action 'nope.nope'"
