"""The published JSON Schema of playbook definitions, generated from the pydantic models.

`python -m playbooks.schema` rewrites the committed copy, playbooks/schema/playbook.schema.json.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from playbooks.definition import PlaybookDefinition

SCHEMA_ID = "https://bulwark.dev/schemas/playbook.schema.json"
SCHEMA_FILE = Path(__file__).resolve().parent / "schema" / "playbook.schema.json"


def playbook_json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of a playbook definition, keys as written in YAML."""
    schema = PlaybookDefinition.model_json_schema(by_alias=True)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **schema,
        "title": "Bulwark playbook definition",
    }


def schema_text() -> str:
    """The schema as committed: indented, keys sorted, with a trailing newline."""
    return json.dumps(playbook_json_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_schema_file(path: Path = SCHEMA_FILE) -> Path:
    """Write the schema to `path` (the committed file by default)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(schema_text(), encoding="utf-8")
    return path


if __name__ == "__main__":
    print(f"wrote {write_schema_file()}")
