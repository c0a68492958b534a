"""The example playbooks in playbooks/library/ validate against the real catalogue, and the
demo playbook runs to success on the pure engine with the real (util) actions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.engine.advance import advance, claim, new_run_state
from core.engine.events import Start, UnitSucceeded
from core.engine.plan import build_plan
from core.engine.state import RunStatus, UnitStatus
from core.run_inputs import resolve_inputs
from integrations.context import ActionContext
from integrations.registry import get_action, invoke, load_actions
from playbooks.definition import PlaybookDefinition, load_definition_text, parse_definition
from playbooks.validation import catalogue_from_registry, guardrail_problems, validate_definition

LIBRARY = Path(__file__).resolve().parents[2] / "playbooks" / "library"
FILES = sorted(LIBRARY.glob("*.yaml"))
DEMO = LIBRARY / "contain-compromised-host.yaml"


def _definition(path: Path) -> PlaybookDefinition:
    return parse_definition(load_definition_text(path.read_text()))


def test_the_library_holds_the_three_example_playbooks() -> None:
    assert [p.stem for p in FILES] == [
        "contain-compromised-host",
        "patch-vulnerable-server",
        "phishing-triage",
    ]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_library_playbooks_validate_against_the_real_catalogue(path: Path) -> None:
    catalogue = catalogue_from_registry(load_actions())
    assert validate_definition(path.read_text(), catalogue=catalogue, connections=set()) == []


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_library_playbooks_are_named_after_their_file(path: Path) -> None:
    assert _definition(path).name == path.stem


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_library_playbooks_exercise_the_format(path: Path) -> None:
    definition = _definition(path)
    steps = definition.steps
    needed_by: dict[str, int] = {}
    for step in steps:
        for need in step.needs:
            needed_by[need] = needed_by.get(need, 0) + 1
    assert any(step.needs for step in steps), "needs"
    assert (
        any(count > 1 for count in needed_by.values()) or len([s for s in steps if not s.needs]) > 1
    ), "a parallel branch"
    assert any(len(step.needs) > 1 for step in steps), "a fan-in"
    assert any(step.if_ for step in steps), "if"
    assert any(step.for_each and step.max_parallel for step in steps), "for_each with max_parallel"
    assert any(step.retry for step in steps), "retry"
    assert any(step.timeout for step in steps), "timeout"
    assert "on_failure" in load_definition_text(path.read_text()), "on_failure"


def test_one_library_playbook_compensates() -> None:
    compensating = [
        path.stem
        for path in FILES
        if _definition(path).on_failure == "compensate"
        and any(step.compensate for step in _definition(path).steps)
    ]
    assert "contain-compromised-host" in compensating


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_library_playbooks_pass_the_guardrail(path: Path) -> None:
    catalogue = catalogue_from_registry(load_actions())
    assert guardrail_problems(_definition(path), catalogue) == []


def _rehearse(
    definition: dict[str, Any], given: dict[str, Any]
) -> tuple[RunStatus, dict[str, Any]]:
    """Run a definition on the pure engine, executing each unit with the real action."""
    inputs, problems = resolve_inputs(definition.get("inputs", {}), given)
    assert problems == []
    plan = build_plan(definition)
    decision = advance(plan, new_run_state(plan, run_id=1, inputs=inputs), Start(), 0.0)
    state, queue, outputs = decision.state, list(decision.commands), {}
    while queue:
        key = queue.pop(0).key
        state = claim(state, key)
        spec = get_action(plan.step(key.step).action or "")
        assert spec is not None
        ctx = ActionContext(
            run_id=1,
            step_id=key.step,
            item_index=None,
            attempt=1,
            idempotency_key="k",
            timeout_seconds=5,
        )
        output = invoke(spec, ctx, state.units[key].inputs)
        outputs[str(key)] = output
        decision = advance(plan, state, UnitSucceeded(key, output), 1.0)
        state = decision.state
        queue += decision.commands
    skipped = [str(k) for k, u in state.units.items() if u.status == UnitStatus.SKIPPED]
    assert skipped == []
    return state.status, outputs


def test_the_demo_playbook_runs_to_success_with_just_a_host_id() -> None:
    status, outputs = _rehearse(load_definition_text(DEMO.read_text()), {"host_id": "demo-host-01"})
    assert status == RunStatus.SUCCEEDED
    assert outputs["isolate"]["message"] == "would contain host demo-host-01"
    assert outputs["patch_fleet[0]"]["data"] == {"job_template": 42, "limit": "demo-host-01"}
