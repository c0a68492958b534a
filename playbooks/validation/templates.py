"""Templates and expressions: their syntax, the steps they refer to, and where `item` may appear."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pydantic

from playbooks.definition import Step, Trigger
from playbooks.expressions import (
    ExpressionError,
    check_expression,
    check_template,
    referenced_steps,
    uses_item,
)
from playbooks.validation.problems import Problem, join, suggest
from playbooks.validation.steps import StepsView


@dataclass(frozen=True)
class _Text:
    """One templated place: a string of `with:`, an `if:` expression, …"""

    path: str
    text: str
    expression: bool = False
    item_allowed: bool = False
    self_allowed: bool = False


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, join(path, str(key)))
    elif isinstance(value, list):
        for position, item in enumerate(value):
            yield from _strings(item, join(path, position))


def _step_texts(step: Step, at: Callable[..., str]) -> Iterator[_Text]:
    fan_out = step.for_each is not None
    if step.if_ is not None:
        yield _Text(at("if"), step.if_, expression=True)
    for path, text in _strings(step.with_, at("with")):
        yield _Text(path, text, item_allowed=fan_out)
    for path, text in _strings(step.for_each, at("for_each")):
        yield _Text(path, text)
    if step.approval is not None and step.approval.message is not None:
        yield _Text(at("approval", "message"), step.approval.message)
    if step.compensate is not None:
        # The undo runs after the step succeeded, so it may use the step's own output.
        for path, text in _strings(step.compensate.with_, at("compensate", "with")):
            yield _Text(path, text, item_allowed=fan_out, self_allowed=True)


def _syntax_problem(text: _Text) -> Problem | None:
    try:
        if text.expression:
            check_expression(text.text, path=text.path)
        else:
            check_template(text.text, path=text.path)
    except ExpressionError as exc:
        return Problem(exc.path or text.path, exc.message)
    return None


def _reference_problems(text: _Text, step_id: str, view: StepsView) -> list[Problem]:
    problems: list[Problem] = []
    for ref in sorted(referenced_steps(text.text, expression=text.expression)):
        if ref == step_id:
            if not text.self_allowed:
                problems.append(
                    Problem(
                        text.path, f"refers to steps.{ref}, the step itself, which has not run yet"
                    )
                )
        elif ref not in view.graph:
            problems.append(
                Problem(
                    text.path,
                    f"refers to steps.{ref}, which does not exist{suggest(ref, view.ids)}",
                )
            )
        elif ref not in view.upstream.get(step_id, frozenset()):
            problems.append(
                Problem(
                    text.path,
                    f"refers to steps.{ref}, which is not upstream of {step_id}; add it to needs",
                )
            )
    return problems


def _item_problem(text: _Text, *, fan_out: bool) -> Problem | None:
    if text.item_allowed or not uses_item(text.text, expression=text.expression):
        return None
    if fan_out:
        where = "only in with: and compensate.with: of a for_each step (once per item)"
    else:
        where = "only in steps with for_each"
    return Problem(text.path, f"uses item, which is defined {where}")


def step_template_problems(view: StepsView, index: int, step: Step) -> list[Problem]:
    """Syntax, step references and use of `item` in every templated field of one step."""
    problems: list[Problem] = []
    for text in _step_texts(step, lambda *parts: view.paths(index, *parts)):
        syntax = _syntax_problem(text)
        if syntax is not None:
            problems.append(syntax)
            continue
        problems += _reference_problems(text, step.id, view)
        item = _item_problem(text, fan_out=step.for_each is not None)
        if item is not None:
            problems.append(item)
    return problems


def trigger_problems(raw_triggers: Any, inputs: Any) -> list[Problem]:
    """Syntax of trigger conditions and inputs, and that the inputs are the playbook's."""
    if not isinstance(raw_triggers, list):
        return []
    declared: Mapping[str, Any] = (
        {k: v for k, v in inputs.items() if isinstance(k, str)} if isinstance(inputs, dict) else {}
    )
    problems: list[Problem] = []
    for index, raw in enumerate(raw_triggers):
        try:
            trigger = Trigger.model_validate(raw)
        except pydantic.ValidationError:
            continue  # reported with the whole definition's shape
        at = join("triggers", index)
        texts = [_Text(join(at, "if"), trigger.if_, expression=True)] if trigger.if_ else []
        texts += [_Text(path, text) for path, text in _strings(trigger.inputs, join(at, "inputs"))]
        for text in texts:
            syntax = _syntax_problem(text)
            if syntax is not None:
                problems.append(syntax)
                continue
            for ref in sorted(referenced_steps(text.text, expression=text.expression)):
                problems.append(
                    Problem(text.path, f"refers to steps.{ref}, but a trigger runs before any step")
                )
            if uses_item(text.text, expression=text.expression):
                problems.append(
                    Problem(text.path, "uses item, which is defined only in for_each steps")
                )
        for name in trigger.inputs:
            if name not in declared:
                hint = suggest(name, declared) or f" (inputs: {', '.join(declared) or 'none'})"
                problems.append(
                    Problem(
                        join(at, "inputs", name), f"unknown input '{name}' of this playbook{hint}"
                    )
                )
        for name, spec in declared.items():
            needed = isinstance(spec, dict) and spec.get("required") is True
            if needed and spec.get("default") is None and name not in trigger.inputs:
                problems.append(Problem(join(at, "inputs"), f"missing required input '{name}'"))
    return problems
