"""import_playbooks and export_playbooks."""

from __future__ import annotations

from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import AuditEvent
from integrations.context import ActionContext
from integrations.registry import action
from playbooks.models import Playbook, PlaybookVersion
from playbooks.versions import create_playbook

pytestmark = pytest.mark.django_db

TRIAGE = """\
# Say hello.
name: triage
title: Triage
steps:
  - id: greet
    action: util.echo
    with: {message: hello}
"""
BROKEN = """\
name: broken
steps:
  - id: greet
    action: no.such_action
"""


@action("commandtests.erase_disk", side_effect="destructive")
def _erase_disk(ctx: ActionContext, *, disk: str) -> dict[str, Any]:
    """Erase a disk (test-only destructive action)."""
    return {"erased": disk}


def run(command: str, *args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(command, *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / f"{name}.yaml"
    path.write_text(text)
    return path


def states(name: str) -> list[tuple[int, str]]:
    return list(
        PlaybookVersion.objects.filter(playbook__name=name)
        .order_by("number")
        .values_list("number", "state")
    )


def test_import_creates_a_playbook_from_each_file(tmp_path: Path) -> None:
    path = write(tmp_path, "triage", TRIAGE)

    out, _ = run("import_playbooks", str(path))

    assert states("triage") == [(1, "draft")]
    assert PlaybookVersion.objects.get().source_text == TRIAGE
    assert out.strip() == f"{path}: triage v1 created"
    event = AuditEvent.objects.get(stream="playbook:triage", kind="playbook.created")
    assert event.actor == "system:cli"


def test_importing_unchanged_content_stores_nothing(tmp_path: Path) -> None:
    path = write(tmp_path, "triage", TRIAGE)
    run("import_playbooks", str(path))
    # Comments and layout are not content: the hash is over the parsed definition.
    path.write_text(
        "# reformatted\n" + TRIAGE.replace("{message: hello}", "\n      message: hello")
    )

    out, _ = run("import_playbooks", str(path))

    assert states("triage") == [(1, "draft")]
    assert "triage v1 unchanged" in out


def test_importing_changed_content_adds_a_version(tmp_path: Path) -> None:
    path = write(tmp_path, "triage", TRIAGE)
    run("import_playbooks", str(path))
    path.write_text(TRIAGE.replace("hello", "bonjour"))

    out, _ = run("import_playbooks", str(path))

    assert states("triage") == [(1, "draft"), (2, "draft")]
    assert "triage v2 new version" in out


def test_import_with_publish_activates_the_imported_version_once(tmp_path: Path) -> None:
    path = write(tmp_path, "triage", TRIAGE)

    first, _ = run("import_playbooks", "--publish", str(path))
    again, _ = run("import_playbooks", "--publish", str(path))
    path.write_text(TRIAGE.replace("hello", "bonjour"))
    changed, _ = run("import_playbooks", "--publish", str(path))

    assert "v1 created, published" in first
    assert "v1 unchanged, already active" in again
    assert "v2 new version, published" in changed
    assert states("triage") == [(1, "retired"), (2, "published")]


def test_import_publishes_an_unchanged_draft_when_asked(tmp_path: Path) -> None:
    path = write(tmp_path, "triage", TRIAGE)
    run("import_playbooks", str(path))

    out, _ = run("import_playbooks", "--publish", str(path))

    assert "v1 unchanged, published" in out
    assert states("triage") == [(1, "published")]


def test_a_bad_file_exits_1_after_the_others_and_stores_nothing(tmp_path: Path) -> None:
    bad = write(tmp_path, "a-broken", BROKEN)
    good = write(tmp_path, "triage", TRIAGE)
    err = StringIO()

    with pytest.raises(CommandError) as caught:
        call_command("import_playbooks", str(bad), str(good), stdout=StringIO(), stderr=err)

    assert caught.value.returncode == 1
    assert f"{bad}: invalid" in err.getvalue()
    assert "no.such_action" in err.getvalue()
    assert not Playbook.objects.filter(name="broken").exists()
    assert states("triage") == [(1, "draft")]


def test_a_file_whose_publish_is_refused_stores_nothing(tmp_path: Path) -> None:
    definition: dict[str, Any] = {
        "name": "erase",
        "steps": [{"id": "erase", "action": "commandtests.erase_disk", "with": {"disk": "d"}}],
    }
    path = write(tmp_path, "erase", yaml.safe_dump(definition))
    err = StringIO()

    with pytest.raises(CommandError):
        call_command("import_playbooks", "--publish", str(path), stdout=StringIO(), stderr=err)

    assert f"{path}: invalid, nothing stored" in err.getvalue()
    assert not Playbook.objects.filter(name="erase").exists()
    assert not AuditEvent.objects.filter(stream="playbook:erase").exists()


def test_import_reads_every_yaml_file_of_a_directory(tmp_path: Path) -> None:
    write(tmp_path, "triage", TRIAGE)
    write(tmp_path, "hello", TRIAGE.replace("name: triage", "name: hello"))

    run("import_playbooks", str(tmp_path))

    assert sorted(Playbook.objects.values_list("name", flat=True)) == ["hello", "triage"]


def test_export_writes_the_active_version_with_its_source_text(tmp_path: Path) -> None:
    source = write(tmp_path, "triage", TRIAGE)
    run("import_playbooks", "--publish", str(source))
    create_playbook(
        definition={"name": "drafty", "steps": [{"id": "s", "action": "util.echo"}]},
        actor="user:alice",
    )
    out_dir = tmp_path / "export"

    run("export_playbooks", "--dir", str(out_dir))

    assert (out_dir / "triage.yaml").read_text() == TRIAGE
    assert yaml.safe_load((out_dir / "drafty.yaml").read_text())["name"] == "drafty"


def test_export_then_import_is_a_round_trip(tmp_path: Path) -> None:
    create_playbook(
        definition={
            "name": "drafty",
            "title": "Drafty",
            "steps": [{"id": "s", "action": "util.echo"}],
        },
        actor="user:alice",
    )
    run("export_playbooks", "--dir", str(tmp_path))

    out, _ = run("import_playbooks", str(tmp_path / "drafty.yaml"))

    assert "drafty v1 unchanged" in out
    assert states("drafty") == [(1, "draft")]


def test_export_all_versions_writes_one_file_per_version(tmp_path: Path) -> None:
    path = write(tmp_path, "triage", TRIAGE)
    run("import_playbooks", "--publish", str(path))
    path.write_text(TRIAGE.replace("hello", "bonjour"))
    run("import_playbooks", str(path))
    out_dir = tmp_path / "export"

    run("export_playbooks", "--dir", str(out_dir), "--all-versions")

    assert (out_dir / "triage.yaml").read_text() == TRIAGE  # the active version, not the latest
    assert (out_dir / "triage" / "v1.yaml").read_text() == TRIAGE
    assert "bonjour" in (out_dir / "triage" / "v2.yaml").read_text()
