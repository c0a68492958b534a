"""The playbooks API: create, versions, publish, validate, schema; roles and error shapes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User

from integrations.context import ActionContext
from integrations.registry import action
from playbooks.models import PlaybookVersion
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

URL = "/api/v1/playbooks/"
YAML = """\
name: triage
title: Triage
steps:
  - id: greet
    action: util.echo
    with: {message: hello}
"""


@action("apitests.delete_mailbox", side_effect="destructive")
def _delete_mailbox(ctx: ActionContext, *, mailbox: str) -> dict[str, Any]:
    """Delete a mailbox (test-only destructive action)."""
    return {"deleted": mailbox}


def triage(message: str = "hello") -> dict[str, Any]:
    return {
        "name": "triage",
        "title": "Triage",
        "steps": [{"id": "greet", "action": "util.echo", "with": {"message": message}}],
    }


def test_an_author_creates_a_playbook_from_yaml_text(alice: User) -> None:
    response = client_for(alice).post(URL, {"definition": YAML}, format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["name"] == "triage"
    assert body["active_version"] is None
    assert body["latest_version"] == 1
    assert [(v["number"], v["state"], v["author"]) for v in body["versions"]] == [
        (1, "draft", "alice")
    ]
    assert PlaybookVersion.objects.get().source_text == YAML


def test_an_author_creates_a_playbook_from_an_object(alice: User) -> None:
    response = client_for(alice).post(URL, {"definition": triage()}, format="json")

    assert response.status_code == 201, response.json()
    version = client_for(alice).get(f"{URL}triage/versions/1/").json()
    assert version["definition"] == triage()
    assert version["source_text"] == ""
    assert len(version["content_hash"]) == 64


def test_an_invalid_definition_gets_400_with_every_path(alice: User) -> None:
    bad = {
        "name": "triage",
        "steps": [{"id": "a", "action": "no.such_action"}, {"id": "a", "action": "util.echo"}],
    }

    response = client_for(alice).post(URL, {"definition": bad}, format="json")

    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"error", "errors"}
    assert len(body["errors"]) >= 2
    assert all(set(e) == {"path", "message"} for e in body["errors"])
    first = body["errors"][0]
    assert body["error"] == f"{first['path']}: {first['message']}"
    assert any(e["path"].startswith("steps[0]") for e in body["errors"])
    assert not PlaybookVersion.objects.exists()


def test_yaml_syntax_errors_name_the_line(alice: User) -> None:
    response = client_for(alice).post(URL, {"definition": "name: [unclosed\n"}, format="json")

    assert response.status_code == 400
    assert "line" in response.json()["error"]


def test_a_missing_definition_gets_the_same_400_shape(alice: User) -> None:
    response = client_for(alice).post(URL, {}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "definition"


@pytest.mark.parametrize("persona", ["bob", "carol", "dave"])
def test_only_authors_create_playbooks(persona: str, request: pytest.FixtureRequest) -> None:
    user = request.getfixturevalue(persona)

    response = client_for(user).post(URL, {"definition": YAML}, format="json")

    assert response.status_code == 403
    assert "error" in response.json()
    assert not PlaybookVersion.objects.exists()


def test_anonymous_requests_are_refused(db: None) -> None:
    assert client_for(None).get(URL).status_code in (401, 403)


def test_the_list_shows_active_and_latest_versions(alice: User, dave: User) -> None:
    author = client_for(alice)
    author.post(URL, {"definition": YAML}, format="json")
    author.post(f"{URL}triage/versions/1/publish/")
    author.post(f"{URL}triage/versions/", {"definition": triage("two")}, format="json")

    response = client_for(dave).get(URL)

    assert response.status_code == 200
    [row] = response.json()["results"]
    assert row["name"] == "triage"
    assert row["title"] == "Triage"
    assert (row["active_version"], row["latest_version"]) == (1, 2)


def test_new_version_then_publish_round_trip(alice: User, bob: User) -> None:
    author = client_for(alice)
    author.post(URL, {"definition": YAML}, format="json")

    created = author.post(f"{URL}triage/versions/", {"definition": triage("two")}, format="json")
    published = author.post(f"{URL}triage/versions/2/publish/")

    assert created.status_code == 201, created.json()
    assert created.json()["number"] == 2
    assert created.json()["state"] == "draft"
    assert published.status_code == 200, published.json()
    assert published.json()["state"] == "published"
    assert published.json()["published_by"] == "alice"
    detail = client_for(bob).get(f"{URL}triage/").json()
    assert detail["active_version"] == 2
    assert [(v["number"], v["state"]) for v in detail["versions"]] == [
        (1, "draft"),
        (2, "published"),
    ]


def test_a_new_version_with_another_name_gets_400_on_name(alice: User) -> None:
    author = client_for(alice)
    author.post(URL, {"definition": YAML}, format="json")

    response = author.post(
        f"{URL}triage/versions/", {"definition": {**triage(), "name": "other"}}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "name"


@pytest.mark.parametrize("persona", ["bob", "dave"])
def test_only_authors_add_versions_and_publish(
    persona: str, alice: User, request: pytest.FixtureRequest
) -> None:
    client_for(alice).post(URL, {"definition": YAML}, format="json")
    other = client_for(request.getfixturevalue(persona))

    added = other.post(f"{URL}triage/versions/", {"definition": triage("two")}, format="json")
    published = other.post(f"{URL}triage/versions/1/publish/")

    assert (added.status_code, published.status_code) == (403, 403)
    assert PlaybookVersion.objects.get().state == "draft"


def test_publishing_an_ungated_destructive_step_gets_400(alice: User) -> None:
    definition = {
        "name": "purge",
        "steps": [{"id": "purge", "action": "apitests.delete_mailbox", "with": {"mailbox": "m"}}],
    }
    author = client_for(alice)
    assert author.post(URL, {"definition": definition}, format="json").status_code == 201

    response = author.post(f"{URL}purge/versions/1/publish/")

    assert response.status_code == 400
    assert response.json()["errors"]
    assert PlaybookVersion.objects.get().state == "draft"


def test_publishing_the_active_version_again_is_a_harmless_200(alice: User) -> None:
    author = client_for(alice)
    author.post(URL, {"definition": YAML}, format="json")
    first = author.post(f"{URL}triage/versions/1/publish/").json()

    again = author.post(f"{URL}triage/versions/1/publish/")

    assert again.status_code == 200
    assert again.json()["published_at"] == first["published_at"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "nope/"),
        ("get", "triage/versions/9/"),
        ("post", "nope/versions/"),
        ("post", "triage/versions/9/publish/"),
    ],
)
def test_unknown_playbooks_and_versions_get_404_json(method: str, path: str, alice: User) -> None:
    author = client_for(alice)
    author.post(URL, {"definition": YAML}, format="json")

    response = getattr(author, method)(f"{URL}{path}", {"definition": triage()}, format="json")

    assert response.status_code == 404
    assert response.json()["error"]


def test_validate_reports_problems_without_saving(dave: User) -> None:
    bad = {"name": "triage", "steps": [{"id": "greet", "action": "no.such_action"}]}

    invalid = client_for(dave).post(f"{URL}validate/", {"definition": bad}, format="json")
    valid = client_for(dave).post(f"{URL}validate/", {"definition": YAML}, format="json")

    assert invalid.status_code == 200
    assert invalid.json()["valid"] is False
    assert invalid.json()["errors"][0]["path"] == "steps.greet.action"
    assert valid.json() == {"valid": True, "errors": []}
    assert not PlaybookVersion.objects.exists()


def test_the_schema_endpoint_serves_the_definition_json_schema(dave: User) -> None:
    response = client_for(dave).get(f"{URL}schema/")

    assert response.status_code == 200
    schema = response.json()
    assert "steps" in schema["properties"]
    assert "name" in schema.get("required", [])


def test_the_openapi_schema_documents_the_definition_body(dave: User) -> None:
    response = client_for(dave).get("/api/v1/schema/", {"format": "json"})

    assert response.status_code == 200
    spec = response.json()
    body = spec["paths"]["/api/v1/playbooks/"]["post"]["requestBody"]["content"]["application/json"]
    ref = body["schema"]["$ref"].rsplit("/", 1)[-1]
    definition = spec["components"]["schemas"][ref]["properties"]["definition"]
    assert {"string", "object"} <= {option["type"] for option in definition["oneOf"]}
    assert "/api/v1/playbooks/{name}/versions/{number}/publish/" in spec["paths"]


def test_the_openapi_schema_generates_without_warnings(tmp_path: Path) -> None:
    from django.core.management import call_command

    call_command("spectacular", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    text = (tmp_path / "schema.yaml").read_text()
    assert "/api/v1/approvals/{id}/decision/" in text
    assert "RunStatusEnum" in text
