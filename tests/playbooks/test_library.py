"""The example playbooks in playbooks/library/ validate against the real catalogue."""

from __future__ import annotations

from pathlib import Path

import pytest

from integrations.registry import load_actions
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


# The demo playbook now calls vendors (CrowdStrike, Slack, Jira); its run to success is
# tested against the lab's simulators in tests/integrations/test_contain_playbook.py.
