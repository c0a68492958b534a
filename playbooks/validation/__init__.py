"""Save-time validation of playbook definitions, and the publish-time guardrail.

Pure: the action catalogue and the configured connections come in as data, so this
package imports neither Django nor `integrations`. Every problem is reported, each with a
path; see `playbooks.validation.problems` for the path format.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from playbooks.definition import (
    MAX_STEPS,
    DefinitionSyntaxError,
    check_json_tree,
    load_definition_text,
)
from playbooks.validation.calls import call_problems
from playbooks.validation.guardrail import guardrail_problems
from playbooks.validation.inputs import ActionSpecLike, catalogue_from_registry
from playbooks.validation.problems import ActionInfo, Problem
from playbooks.validation.steps import StepsView, graph_problems, kind_problems
from playbooks.validation.structure import structure_problems
from playbooks.validation.templates import step_template_problems, trigger_problems
from playbooks.validation.test_refs import test_problems

__all__ = [
    "ActionInfo",
    "ActionSpecLike",
    "Problem",
    "catalogue_from_registry",
    "guardrail_problems",
    "validate_definition",
]


def validate_definition(
    data: Mapping[str, Any] | str,
    *,
    catalogue: Mapping[str, ActionInfo],
    connections: Collection[tuple[str, str]] | None = None,
    calls: Mapping[str, Collection[str]] | None = None,
) -> list[Problem]:
    """Every problem with a definition (YAML/JSON text or a mapping); [] when it is valid.

    `catalogue` maps action names to what the validator knows of them; `connections` holds
    the configured (integration, name) pairs, or None to skip checking `connection:`;
    `calls`, what each published playbook's steps call, or None to skip call cycles.
    """
    if isinstance(data, str):
        try:
            data = load_definition_text(data)
        except DefinitionSyntaxError as exc:
            return [Problem("", str(exc))]
    if not isinstance(data, Mapping):
        return [Problem("", "a playbook definition must be a mapping (name:, steps:, …)")]
    try:
        check_json_tree(data)
    except DefinitionSyntaxError as exc:
        return [Problem("", str(exc))]
    steps = data.get("steps")
    if isinstance(steps, list) and len(steps) > MAX_STEPS:  # before the quadratic checks
        return [Problem("steps", f"{len(steps)} steps; a playbook may have at most {MAX_STEPS}")]
    problems = structure_problems(data)
    view = StepsView.of(data.get("steps"))
    problems += graph_problems(view)
    name = data.get("name")
    for index, step in view.parsed.items():
        problems += kind_problems(
            view,
            index,
            step,
            catalogue=catalogue,
            connections=connections,
            playbook_name=name if isinstance(name, str) else None,
        )
        problems += step_template_problems(view, index, step)
    problems += trigger_problems(data.get("triggers"), data.get("inputs"))
    problems += test_problems(data)
    if calls is not None:
        problems += call_problems(data, view.paths, calls)
    return list(dict.fromkeys(problems))
