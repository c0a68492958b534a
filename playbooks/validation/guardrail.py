"""The publish-time guardrail (SPEC §3): destructive actions need an approval gate first."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from playbooks.definition import PlaybookDefinition, parse_definition
from playbooks.expressions import uses_status_function
from playbooks.graph import topological_order
from playbooks.validation.problems import ActionInfo, Problem, join


def _ungated_paths(definition: PlaybookDefinition) -> dict[str, tuple[list[str], bool]]:
    """For each step that can run without any approval having been given: a witness path
    to it, and whether that path starts at a step that ignores a rejected gate.

    A gate's rejection skips the steps after it, except a step whose `if` uses a status
    function (always(), failed() …): that one may run anyway, so the gate no longer
    protects it or what follows it.
    """
    steps = {s.id: s for s in definition.steps}
    ungated: dict[str, tuple[list[str], bool]] = {}
    for step_id in topological_order({s.id: s.needs for s in definition.steps}):
        step = steps[step_id]
        if step.kind == "approval":
            continue
        open_need = next((n for n in step.needs if n in ungated), None)
        if open_need is not None:
            path, bypass = ungated[open_need]
            ungated[step_id] = ([*path, step_id], bypass)
        elif not step.needs:
            ungated[step_id] = ([step_id], False)
        elif step.if_ is not None and uses_status_function(step.if_):
            ungated[step_id] = ([step_id], True)
    return ungated


def _how(step_id: str, path: list[str], bypass: bool) -> str:
    if bypass and len(path) == 1:
        return (
            f"its 'if' uses a status function (always(), failed() …), so '{step_id}' runs "
            "even when an approval before it is rejected"
        )
    if bypass:
        return (
            f"'{path[0]}' runs even when an approval before it is rejected (its 'if' uses a "
            f"status function), and {' → '.join(path)} passes no further approval gate"
        )
    if len(path) == 1:
        return f"'{step_id}' is a start step"
    return f"the path {' → '.join(path)} passes no approval gate"


def guardrail_problems(
    definition: PlaybookDefinition | Mapping[str, Any], catalogue: Mapping[str, ActionInfo]
) -> list[Problem]:
    """Destructive steps that some path from a start step reaches without an approval gate.

    Empty when the playbook declares `autonomous: true`. Expects a definition that passed
    validate_definition (unique ids, no cycles).
    """
    definition = parse_definition(definition)
    if definition.autonomous:
        return []
    ungated = _ungated_paths(definition)
    problems: list[Problem] = []
    for step in definition.steps:
        # A destructive compensation runs when the playbook fails, with no decision of its
        # own, so it needs the same gate as a destructive step.
        candidates = [(step.action, join("steps", step.id))]
        if step.compensate is not None:
            candidates.append((step.compensate.action, join("steps", step.id, "compensate")))
        for action, where in candidates:
            info = catalogue.get(action) if action else None
            if info is None or not info.destructive or step.id not in ungated:
                continue
            path, bypass = ungated[step.id]
            problems.append(
                Problem(
                    where,
                    f"destructive action {info.name} can run without an approval: "
                    f"{_how(step.id, path, bypass)}; add an approval step to its needs, "
                    "or declare autonomous: true",
                )
            )
    return problems
