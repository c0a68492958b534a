"""A playbook's graph as the UI draws it: a node per step, an edge per `needs`, and for a
run, each node's status (from its units: the step itself, or its for_each items)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from core.engine.state import UnitStatus

# A step's status from its main-phase units, most telling first: one failed item fails
# the step; one moving item means the step is moving.
_ORDER = (
    UnitStatus.NEEDS_ATTENTION, UnitStatus.FAILED, UnitStatus.WAITING_APPROVAL,
    UnitStatus.RUNNING, UnitStatus.WAITING, UnitStatus.RETRY_WAIT, UnitStatus.QUEUED,
    UnitStatus.REJECTED, UnitStatus.CANCELLED, UnitStatus.PENDING, UnitStatus.SUCCEEDED,
    UnitStatus.SKIPPED,
)  # fmt: skip


def step_kind(step: Mapping[str, Any]) -> str:
    if "approval" in step:
        return "approval"
    if "playbook" in step:
        return "playbook"
    return str(step.get("action", "step"))


def graph_of(definition: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Nodes and edges of a definition (no statuses), for a preview or a diff."""
    listed = definition.get("steps")
    steps = (
        [s for s in listed if isinstance(s, Mapping) and "id" in s]
        if isinstance(listed, list)
        else []
    )
    ids = {str(s["id"]) for s in steps}
    nodes = [{"id": str(s["id"]), "label": str(s.get("title") or s["id"]), "kind": step_kind(s),
              "for_each": "for_each" in s} for s in steps]  # fmt: skip
    edges = [
        {"source": need, "target": str(s["id"])} for s in steps for need in _needs(s) if need in ids
    ]
    return {"nodes": nodes, "edges": edges}


def _needs(step: Mapping[str, Any]) -> list[str]:
    """A step's `needs` as drawn: a list of step ids; anything else (an invalid draft in
    the editor) draws no edge."""
    needs = step.get("needs")
    return [n for n in needs if isinstance(n, str)] if isinstance(needs, list) else []


def step_statuses(units: Iterable[tuple[str, str, str]]) -> dict[str, str]:
    """Each step's status from its units' (step_id, phase, status); compensation shows as
    the step's own status "compensated" once it succeeded."""
    main: dict[str, set[str]] = {}
    compensated: set[str] = set()
    for step_id, phase, status in units:
        if phase == "main":
            main.setdefault(step_id, set()).add(status)
        elif status == UnitStatus.SUCCEEDED:
            compensated.add(step_id)
    statuses = {}
    for step_id, found in main.items():
        status = next((s.value for s in _ORDER if s.value in found), sorted(found)[0])
        statuses[step_id] = "compensated" if step_id in compensated else status
    return statuses


def run_graph(
    definition: Mapping[str, Any], units: Iterable[tuple[str, str, str]]
) -> dict[str, list[dict[str, Any]]]:
    graph = graph_of(definition)
    statuses = step_statuses(units)
    for node in graph["nodes"]:
        node["status"] = statuses.get(node["id"], UnitStatus.PENDING.value)
    return graph
