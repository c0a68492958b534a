"""Save-time checks of a playbook's `tests:` against the playbook they test."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from playbooks.expressions import ExpressionError, check_expression
from playbooks.validation.names import StepNames
from playbooks.validation.problems import Problem


def test_problems(definition: Mapping[str, Any]) -> list[Problem]:
    """What the tests name that the definition does not have: unknown steps and actions,
    approvals for steps that never ask, expressions that do not parse, repeated names."""
    tests = definition.get("tests")
    if not isinstance(tests, list):
        return []
    names = StepNames.of(definition)
    problems: list[Problem] = []
    seen: set[str] = set()
    for index, test in enumerate(tests):
        if not isinstance(test, Mapping):
            continue
        where = f"tests[{index}]"
        name = test.get("name")
        if isinstance(name, str):
            if name in seen:
                problems.append(Problem(f"{where}.name", f"another test is named {name!r}"))
            seen.add(name)
        problems += _mock_problems(where, test, names)
        expect = test.get("expect")
        problems += _expect_problems(where, expect if isinstance(expect, Mapping) else {}, names)
    return problems


def _mock_problems(where: str, test: Mapping[str, Any], names: StepNames) -> list[Problem]:
    problems = []
    for key in _keys(test.get("mocks")):
        if not names.knows(key):
            problems.append(Problem(f"{where}.mocks.{key}", _unknown_mock(key, names)))
        elif key in names.gates:
            problems.append(Problem(f"{where}.mocks.{key}", f"{key} is an approval gate, "
                                    "which calls nothing: decide it under approvals:"))  # fmt: skip
    for key in _keys(test.get("approvals")):
        if key not in names.gates:
            gates = ", ".join(sorted(names.gates)) or "none"
            problems.append(Problem(f"{where}.approvals.{key}",
                                    f"no approval gate {key!r} in this playbook (gates: {gates})"))  # fmt: skip
    return problems


def _expect_problems(where: str, expect: Mapping[str, Any], names: StepNames) -> list[Problem]:
    problems = []
    for field in ("ran", "skipped"):
        listed = expect.get(field)
        for position, key in enumerate(listed if isinstance(listed, list) else []):
            if isinstance(key, str) and key not in names.steps:
                problems.append(Problem(f"{where}.expect.{field}[{position}]",
                                        _unknown_step(key, names)))  # fmt: skip
    ran, skipped = expect.get("ran"), expect.get("skipped")
    if isinstance(ran, list) and isinstance(skipped, list):
        for key in sorted(
            {k for k in ran if isinstance(k, str)} & {k for k in skipped if isinstance(k, str)}
        ):
            problems.append(
                Problem(f"{where}.expect.skipped", f"{key} cannot both run and be skipped")
            )
    for field in ("statuses", "outputs"):
        for key in _keys(expect.get(field)):
            if key not in names.steps:
                problems.append(Problem(f"{where}.expect.{field}.{key}", _unknown_step(key, names)))
    for expression in _keys(expect.get("values")):
        try:
            check_expression(expression, path=f"{where}.expect.values")
        except ExpressionError as exc:
            problems.append(Problem(f"{where}.expect.values", str(exc)))
    return problems


def _keys(value: Any) -> list[str]:
    return [k for k in value if isinstance(k, str)] if isinstance(value, Mapping) else []


def _unknown_step(key: str, names: StepNames) -> str:
    return f"no step {key!r} in this playbook (steps: {', '.join(names.steps)})"


def _unknown_mock(key: str, names: StepNames) -> str:
    return (f"no step or action {key!r} in this playbook: a mock is for a step id "
            f"({', '.join(names.steps)}), one item of a for_each step (such as "
            f"{next(iter(sorted(names.fan_outs)), 'step')}[0]), or an action it calls "
            f"({', '.join(sorted(names.actions))})")  # fmt: skip
