"""The graph (ids, needs, cycles) and each step's fields for its kind."""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import pydantic

from playbooks.definition import Step
from playbooks.graph import find_cycles, format_cycle, upstream_map
from playbooks.validation.inputs import input_problems
from playbooks.validation.problems import ActionInfo, Problem, StepPaths, suggest


@dataclass
class StepsView:
    """The steps as written (`raw`) and those that parsed (`parsed`: position → Step)."""

    raw: list[Any]
    paths: StepPaths
    parsed: dict[int, Step]
    ids: list[str] = field(default_factory=list)
    graph: dict[str, list[str]] = field(default_factory=dict)
    upstream: dict[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, raw_steps: Any) -> StepsView:
        raw = raw_steps if isinstance(raw_steps, list) else []
        parsed: dict[int, Step] = {}
        for index, item in enumerate(raw):
            # A step that does not parse is reported with the whole definition's shape.
            with contextlib.suppress(pydantic.ValidationError):
                parsed[index] = Step.model_validate(item)
        view = cls(raw=raw, paths=StepPaths(raw), parsed=parsed)
        for item in raw:
            step_id = item.get("id") if isinstance(item, dict) else None
            if isinstance(step_id, str) and step_id not in view.graph:
                needs = item.get("needs")
                needs = needs if isinstance(needs, list) else []
                view.ids.append(step_id)
                view.graph[step_id] = [n for n in needs if isinstance(n, str) and n != step_id]
        view.upstream = upstream_map(view.graph)
        return view


def graph_problems(view: StepsView) -> list[Problem]:
    """Duplicate ids, unknown or repeated needs, steps needing themselves, and cycles."""
    problems: list[Problem] = []
    first_at: dict[str, int] = {}
    for index, item in enumerate(view.raw):
        if not isinstance(item, dict):
            continue
        step_id = item.get("id")
        if isinstance(step_id, str):
            if step_id in first_at:
                problems.append(
                    Problem(
                        view.paths(index, "id"),
                        f"duplicate step id '{step_id}' (also steps[{first_at[step_id]}])",
                    )
                )
            else:
                first_at[step_id] = index
        needs = item.get("needs")
        if not isinstance(needs, list):
            continue
        seen: set[str] = set()
        for need in needs:
            if not isinstance(need, str):
                continue
            path = view.paths(index, "needs")
            if need == step_id:
                problems.append(Problem(path, f"step '{need}' cannot need itself"))
            elif need not in view.graph:
                problems.append(Problem(path, f"unknown step '{need}'{suggest(need, view.ids)}"))
            elif need in seen:
                problems.append(Problem(path, f"'{need}' is listed more than once"))
            seen.add(need)
    for cycle in find_cycles(view.graph):
        problems.append(Problem("steps", f"cycle {format_cycle(cycle)}"))
    return problems


def _present(checks: list[tuple[str, bool, str]]) -> list[Problem]:
    return [Problem(path, message) for path, present, message in checks if present]


def kind_problems(
    view: StepsView,
    index: int,
    step: Step,
    *,
    catalogue: Mapping[str, ActionInfo],
    connections: Collection[tuple[str, str]] | None,
    playbook_name: str | None,
) -> list[Problem]:
    """Fields that do not fit the step's kind, unknown actions, inputs and connections."""
    at = view.paths
    problems: list[Problem] = []
    if step.max_parallel is not None and step.for_each is None:
        problems.append(
            Problem(at(index, "max_parallel"), "max_parallel applies only with for_each")
        )
    if step.kind == "approval":
        problems += _present(
            [
                (at(index, "with"), bool(step.with_), "approval steps take no inputs (with)"),
                (at(index, "retry"), step.retry is not None, "approval steps are not retried"),
                (
                    at(index, "connection"),
                    step.connection is not None,
                    "approval steps use no connection",
                ),
                (
                    at(index, "compensate"),
                    step.compensate is not None,
                    "approval steps have nothing to undo",
                ),
                (at(index, "for_each"), step.for_each is not None, "approval steps cannot fan out"),
                (
                    at(index, "timeout"),
                    step.timeout is not None,
                    "approval steps time out with approval.timeout (and approval.on_timeout)",
                ),
            ]
        )
        return problems
    if step.kind == "playbook":
        if playbook_name is not None and step.playbook == playbook_name:
            problems.append(Problem(at(index, "playbook"), "a playbook cannot call itself"))
        problems += _present(
            [
                (
                    at(index, "connection"),
                    step.connection is not None,
                    "playbook steps use no connection",
                ),
                (
                    at(index, "compensate"),
                    step.compensate is not None,
                    "playbook steps cannot carry compensate (give the child playbook on_failure: compensate)",
                ),
            ]
        )
        return problems
    assert step.action is not None
    info = catalogue.get(step.action)
    if info is None:
        problems.append(
            Problem(
                at(index, "action"),
                f"unknown action '{step.action}'{suggest(step.action, catalogue)}",
            )
        )
    else:
        problems += input_problems(info, step.with_, path=at(index, "with"))
        if step.connection is not None:
            problems += _connection_problems(
                at(index, "connection"), info, step.connection, connections
            )
    if step.compensate is not None:
        action = step.compensate.action
        undo = catalogue.get(action)
        if undo is None:
            problems.append(
                Problem(
                    at(index, "compensate", "action"),
                    f"unknown action '{action}'{suggest(action, catalogue)}",
                )
            )
        else:
            problems += input_problems(
                undo, step.compensate.with_, path=at(index, "compensate", "with")
            )
    return problems


def _connection_problems(
    path: str, info: ActionInfo, name: str, connections: Collection[tuple[str, str]] | None
) -> list[Problem]:
    integration = info.connection_integration
    if integration is None:
        return [Problem(path, f"action {info.name} does not use a connection")]
    if connections is None or (integration, name) in connections:
        return []
    known = sorted(n for i, n in connections if i == integration)
    hint = suggest(name, known) or (
        f" (configured: {', '.join(known)})"
        if known
        else f" (no {integration} connection is configured)"
    )
    return [Problem(path, f"unknown {integration} connection '{name}'{hint}")]
