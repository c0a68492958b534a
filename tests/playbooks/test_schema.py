"""The published JSON Schema: generated from the models and committed without drift."""

from __future__ import annotations

from pathlib import Path

from playbooks.schema import (
    SCHEMA_FILE,
    SCHEMA_ID,
    playbook_json_schema,
    schema_text,
    write_schema_file,
)


def test_the_committed_schema_matches_the_models() -> None:
    committed = SCHEMA_FILE.read_text(encoding="utf-8")
    assert committed == schema_text(), (
        "playbooks/schema/playbook.schema.json is out of date; "
        "regenerate it with `python -m playbooks.schema` and commit the result"
    )


def test_the_schema_declares_its_dialect_id_and_title() -> None:
    schema = playbook_json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == SCHEMA_ID == "https://bulwark.dev/schemas/playbook.schema.json"
    assert schema["title"] == "Bulwark playbook definition"
    assert schema["required"] == ["name", "steps"]


def test_the_schema_uses_the_yaml_field_names_and_forbids_unknown_fields() -> None:
    step = playbook_json_schema()["$defs"]["Step"]
    assert {"if", "with", "needs", "for_each"} <= set(step["properties"])
    assert not {"if_", "with_"} & set(step["properties"])
    assert step["additionalProperties"] is False


def test_the_schema_file_is_sorted_indented_and_ends_with_a_newline(tmp_path: Path) -> None:
    written = write_schema_file(tmp_path / "playbook.schema.json").read_text(encoding="utf-8")
    assert written.endswith("}\n")
    assert written.startswith('{\n  "$defs": {')
