"""Running a version's `tests:` (core.engine.test_runner) with the action catalogue's facts,
for the CLI, the API and the publish check."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pydantic

from core.engine.test_runner import LocalAction, TestResult, run_playbook_tests
from integrations.registry import load_actions
from playbooks.validation import Problem

# Actions that touch nothing outside the run, so a test runs them for real (sleeping
# excepted: the simulated clock does not wait).
LOCAL_ACTIONS: dict[str, LocalAction] = {
    "util.echo": lambda inputs: {
        "message": inputs.get("message"),
        "data": inputs.get("data") or {},
    },
    "util.sleep": lambda inputs: {"slept": inputs.get("seconds", 1.0)},
}


def run_definition_tests(definition: Mapping[str, Any]) -> list[TestResult]:
    """Run the tests of a definition that passed validation."""
    actions = load_actions()
    unsafe = frozenset(
        n for n, s in actions.items() if s.side_effect != "read" and not s.idempotent
    )
    destructive = frozenset(n for n, s in actions.items() if s.side_effect == "destructive")

    def check_inputs(name: str, inputs: Any) -> str | None:
        spec = actions.get(name)
        if spec is None:
            return None
        try:
            spec.input_model.model_validate(inputs)
        except pydantic.ValidationError as exc:
            return f"invalid inputs for {name}: " + "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(inputs)'}: {err['msg']}"
                for err in exc.errors()
            )
        return None

    return run_playbook_tests(definition, destructive=destructive, unsafe_to_repeat=unsafe,
                              local=LOCAL_ACTIONS, check_inputs=check_inputs)  # fmt: skip


def failing_test_problems(definition: Mapping[str, Any]) -> list[Problem]:
    """The publish check: each broken expectation of each failing test, as a problem."""
    problems = []
    for index, result in enumerate(run_definition_tests(definition)):
        for failure in result.failures:
            problems.append(Problem(f"tests[{index}]", f"test {result.name!r} fails: {failure}"))
    return problems
