"""Differences between two playbook versions: of their text, and of their graphs."""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from typing import Any

import yaml

from playbooks.models import PlaybookVersion
from web.graph import graph_of


def version_text(version: PlaybookVersion) -> str:
    """The text the author wrote, or (for versions stored from JSON) the definition as YAML."""
    if version.source_text:
        return version.source_text
    return yaml.safe_dump(version.definition, sort_keys=False, allow_unicode=True)


def text_diff(old: str, new: str, old_name: str, new_name: str) -> list[tuple[str, str]]:
    """Unified-diff lines as (kind, text), kind one of "add", "remove", "hunk", "same"."""
    lines = []
    for line in difflib.unified_diff(old.splitlines(), new.splitlines(), old_name, new_name,
                                     lineterm="", n=3):  # fmt: skip
        if line.startswith(("+++", "---")):
            continue
        kind = {"+": "add", "-": "remove", "@": "hunk"}.get(line[:1], "same")
        lines.append((kind, line))
    return lines


def _steps(definition: Mapping[str, Any]) -> dict[str, str]:
    listed = definition.get("steps")
    return {
        str(step["id"]): json.dumps(step, sort_keys=True, default=str)
        for step in (listed if isinstance(listed, list) else [])
        if isinstance(step, Mapping) and "id" in step
    }


def graph_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """Both graphs in one: each node is "added", "removed", "changed" or "same"."""
    before, after = _steps(old), _steps(new)
    old_graph, new_graph = graph_of(old), graph_of(new)
    nodes = {node["id"]: node for node in old_graph["nodes"]} | {
        node["id"]: node for node in new_graph["nodes"]
    }
    for step_id, node in nodes.items():
        if step_id not in after:
            node["status"] = "removed"
        elif step_id not in before:
            node["status"] = "added"
        else:
            node["status"] = "changed" if before[step_id] != after[step_id] else "same"
    edges = {(e["source"], e["target"]): e for e in old_graph["edges"] + new_graph["edges"]}
    return {
        "nodes": list(nodes.values()),
        "edges": list(edges.values()),
        "summary": {s: sorted(i for i, n in nodes.items() if n["status"] == s)
                    for s in ("added", "removed", "changed")},
    }  # fmt: skip
