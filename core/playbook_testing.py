"""Running a version's `tests:` (core.engine.test_runner) with the action catalogue's facts,
for the CLI, the API and the publish check."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.engine.test_runner import LocalAction, TestResult, run_playbook_tests
from integrations.errors import ActionError
from integrations.registry import (
    destructive,
    load_actions,
    unsafe_to_repeat,
    validated_inputs,
)
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

    def check_inputs(name: str, inputs: Any) -> str | None:
        spec = actions.get(name)
        try:
            if spec is not None:
                validated_inputs(spec, inputs)
        except ActionError as exc:
            return exc.message
        return None

    return run_playbook_tests(definition, destructive=destructive(actions),
                              unsafe_to_repeat=unsafe_to_repeat(actions), local=LOCAL_ACTIONS,
                              check_inputs=check_inputs)  # fmt: skip


def failing_test_problems(definition: Mapping[str, Any]) -> list[Problem]:
    """The publish check: each broken expectation of each failing test, as a problem."""
    problems = []
    for index, result in enumerate(run_definition_tests(definition)):
        for failure in result.failures:
            problems.append(Problem(f"tests[{index}]", f"test {result.name!r} fails: {failure}"))
    return problems
