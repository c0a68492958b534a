"""Playbook tests run on the engine alone: each expectation checked and, when broken, named
with what happened instead. No database (these tests have none) and no network."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.engine.state import RunStatus, UnitStatus
from core.engine.test_runner import TestResult
from core.playbook_testing import run_definition_tests
from playbooks.definition import load_definition_text
from playbooks.playbook_tests import STEP_STATUSES, TEST_OUTCOMES
from playbooks.validation import validate_definition

LIBRARY = sorted((Path(__file__).resolve().parents[3] / "playbooks" / "library").glob("*.yaml"))

CONTAIN: dict[str, Any] = {
    "name": "contain",
    "inputs": {"host_id": {"type": "string", "required": True},
               "hosts": {"type": "array", "default": ["h1", "h2"]}},
    "triggers": [{"source": "edr", "if": "alert.severity == 'high'",
                  "inputs": {"host_id": "{{ alert.raw.device_id }}"}}],
    "on_failure": "compensate",
    "steps": [
        {"id": "lookup", "action": "virustotal.file_report", "with": {"hash": "abc"},
         "retry": {"attempts": 3, "backoff": "10s"}},
        {"id": "gate", "needs": ["lookup"],
         "approval": {"approvers": ["ic"], "min_approvals": 2, "timeout": "30m"}},
        {"id": "isolate", "needs": ["gate"], "if": "steps.lookup.output.malicious > 0",
         "action": "crowdstrike.contain_host", "with": {"device_id": "{{ inputs.host_id }}"},
         "compensate": {"action": "crowdstrike.lift_containment",
                        "with": {"device_id": "{{ inputs.host_id }}"}}},
        {"id": "patch", "needs": ["isolate"], "for_each": "{{ inputs.hosts }}",
         "action": "util.echo", "with": {"message": "patch {{ item }}"}},
        {"id": "ticket", "needs": ["patch"], "action": "jira.create_issue",
         "with": {"project": "SEC", "summary": "{{ inputs.host_id }}"}},
    ],
}  # fmt: skip
MOCKS = {
    "lookup": {"output": {"malicious": 4}},
    "isolate": {"output": {"status": "contained"}},
    "ticket": {"output": {"key": "SEC-1"}},
}


def _run(test: dict[str, Any], definition: dict[str, Any] | None = None) -> TestResult:
    definition = {**(definition or CONTAIN), "tests": [{"name": "t", **test}]}
    problems = validate_definition(definition, catalogue=_catalogue())  # no database here
    assert problems == [], problems
    [result] = run_definition_tests(definition)
    return result


def test_the_lists_of_outcomes_and_statuses_are_the_engines() -> None:
    assert set(TEST_OUTCOMES) == {s.value for s in RunStatus} - {"running", "cancelling",
                                                                  "compensating"}  # fmt: skip
    assert set(STEP_STATUSES) == {s.value for s in UnitStatus}


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: p.stem)
def test_the_library_playbooks_ship_with_tests_that_pass(path: Path) -> None:
    definition = load_definition_text(path.read_text(encoding="utf-8"))
    results = run_definition_tests(definition)
    assert len(results) >= 3
    assert [(r.name, r.failures) for r in results if not r.passed] == []


def test_a_run_that_goes_as_expected_passes() -> None:
    result = _run({
        "inputs": {"host_id": "aid-1"}, "mocks": MOCKS, "approvals": {"gate": "approve"},
        "expect": {"outcome": "succeeded", "ran": ["lookup", "gate", "isolate", "patch", "ticket"],
                   "outputs": {"ticket": {"key": "SEC-1"}},
                   "values": {"steps.patch.output[1].message": "patch h2",
                              "steps.gate.outcome": "approved"}},
    })  # fmt: skip
    assert result.passed, result.failures
    assert result.outcome == "succeeded"
    assert result.steps["patch"] == "succeeded"


def test_each_broken_expectation_is_named_with_what_happened() -> None:
    result = _run({
        "inputs": {"host_id": "aid-1"}, "approvals": {"gate": "approve"},
        "mocks": {**MOCKS, "lookup": {"output": {"malicious": 0}}},
        "expect": {"outcome": "compensated", "ran": ["isolate"], "skipped": ["lookup"],
                   "statuses": {"gate": "rejected"}, "outputs": {"lookup": {"malicious": 9}},
                   "values": {"steps.lookup.output.malicious": 9}},
    })  # fmt: skip
    assert result.failures == (
        "expected the run to end compensated, but it is succeeded",
        "expected step isolate to run, but it is skipped (its condition was false)",
        "expected step lookup to be skipped, but it is succeeded",
        "expected step gate to be rejected, but it is succeeded",
        'expected the output of step lookup to be {"malicious": 9}, but it is {"malicious": 0}',
        "expected steps.lookup.output.malicious to be 9, but it is 0",
    )


def test_a_step_nobody_mocked_fails_the_test_naming_step_and_action() -> None:
    result = _run({"inputs": {"host_id": "aid-1"}, "expect": {"outcome": "succeeded"}})
    assert result.failures == (
        "step lookup calls virustotal.file_report, which this test does not mock: "
        "add mocks.lookup or mocks.virustotal.file_report",
    )


def test_a_transient_failure_is_retried_on_the_simulated_clock() -> None:
    flaky = {"error": "503 Service Unavailable", "retryable": True, "fail_times": 2,
             "output": {"malicious": 1}}  # fmt: skip
    result = _run({
        "inputs": {"host_id": "aid-1"}, "mocks": {**MOCKS, "lookup": flaky},
        "approvals": {"gate": "approve"}, "expect": {"outcome": "succeeded"},
    })  # fmt: skip
    assert result.passed, result.failures
    spent = _run({
        "inputs": {"host_id": "aid-1"}, "mocks": {**MOCKS, "lookup": {**flaky, "fail_times": 3}},
        "expect": {"outcome": "failed", "statuses": {"lookup": "failed"}, "skipped": ["gate"]},
    })  # fmt: skip
    assert spent.passed, spent.failures


def test_a_permanent_failure_compensates_what_succeeded() -> None:
    result = _run({
        "inputs": {"host_id": "aid-1"}, "approvals": {"gate": "approve"},
        "mocks": {**MOCKS, "ticket": {"error": "400 no such project"},
                  "crowdstrike.lift_containment": {"output": {"status": "normal"}}},
        "expect": {"outcome": "compensated", "statuses": {"ticket": "failed"}},
    })  # fmt: skip
    assert result.passed, result.failures


def test_one_item_of_a_for_each_step_can_be_mocked_on_its_own() -> None:
    result = _run({
        "inputs": {"host_id": "aid-1"}, "approvals": {"gate": "approve"},
        "mocks": {**MOCKS, "patch[1]": {"error": "host h2 is offline"}},
        "expect": {"outcome": "compensated", "statuses": {"patch": "failed"},
                   "skipped": ["ticket"]},
    })  # fmt: skip
    assert result.passed, result.failures


def test_a_gate_takes_as_many_approvals_as_its_quorum_or_one_rejection() -> None:
    approved = _run({
        "inputs": {"host_id": "aid-1"}, "mocks": MOCKS, "approvals": {"gate": "approve"},
        "expect": {"values": {"steps.gate.output.approved_by": ["test:approver-1", "test:approver-2"]}},
    })  # fmt: skip
    assert approved.passed, approved.failures
    rejected = _run({
        "inputs": {"host_id": "aid-1"}, "mocks": MOCKS, "approvals": {"gate": "reject"},
        "expect": {"outcome": "succeeded", "statuses": {"gate": "rejected"},
                   "skipped": ["isolate", "ticket"]},
    })  # fmt: skip
    assert rejected.passed, rejected.failures


def test_an_undecided_gate_times_out_on_the_simulated_clock() -> None:
    result = _run({
        "inputs": {"host_id": "aid-1"}, "mocks": MOCKS,
        "expect": {"outcome": "succeeded", "statuses": {"gate": "rejected"}},
    })  # fmt: skip
    assert result.passed, result.failures


def test_a_gate_without_a_timeout_leaves_the_run_waiting() -> None:
    steps = [dict(s) for s in CONTAIN["steps"]]
    steps[1] = {"id": "gate", "needs": ["lookup"], "approval": {"approvers": ["ic"]}}
    result = _run({"inputs": {"host_id": "aid-1"}, "mocks": MOCKS,
                   "expect": {"outcome": "waiting_approval", "statuses": {"isolate": "pending"}}},
                  {**CONTAIN, "steps": steps})  # fmt: skip
    assert result.passed, result.failures


def test_an_alert_fixture_starts_the_run_through_the_trigger() -> None:
    alert = {"title": "Malware", "severity": "high", "raw": {"device_id": "aid-9"}}
    result = _run({
        "source": "edr", "alert": alert, "mocks": MOCKS, "approvals": {"gate": "approve"},
        "expect": {"values": {"inputs.host_id": "aid-9", "alert.raw.device_id": "aid-9"}},
    })  # fmt: skip
    assert result.passed, result.failures
    low = _run({"alert": {**alert, "severity": "low"}, "expect": {"outcome": "succeeded"}})
    assert low.failures == ("no trigger of this playbook starts a run for the test's alert",)
    assert low.outcome == "not started"


def test_inputs_the_playbook_refuses_fail_the_test() -> None:
    result = _run({"inputs": {"hosts": "h1"}, "expect": {"outcome": "succeeded"}})
    assert result.outcome == "not started"
    assert [f.split(":")[0] for f in result.failures] == ["inputs.host_id", "inputs.hosts"]


def test_expectations_name_only_what_the_playbook_has() -> None:
    definition = {**CONTAIN, "tests": [
        {"name": "a", "mocks": {"lokup": {"output": {}}, "isolate[0]": {"output": {}},
                                "patch[3]": {"output": {}}},
         "approvals": {"gaet": "approve"},
         "expect": {"ran": ["isolat"], "statuses": {"tiket": "failed"},
                    "values": {"steps.lookup.output.(": 1}}},
        {"name": "a", "expect": {}},
    ]}  # fmt: skip
    problems = {p.path: p.message for p in validate_definition(definition, catalogue=_catalogue())}
    assert set(problems) == {
        "tests[0].mocks.lokup", "tests[0].mocks.isolate[0]", "tests[0].approvals.gaet",
        "tests[0].expect.ran[0]", "tests[0].expect.statuses.tiket", "tests[0].expect.values",
        "tests[1].name",
    }  # fmt: skip
    assert (
        "a mock is for a step id (lookup, gate, isolate, patch, ticket)"
        in problems["tests[0].mocks.lokup"]
    )
    assert problems["tests[1].name"] == "another test is named 'a'"


@pytest.mark.parametrize(
    ("mock", "message"),
    [
        ({"fail_times": 2, "output": {}}, "fail_times needs the error"),
        ({"error": "down", "output": {"x": 1}}, "a mock that always fails has no output"),
        ({"error": "down", "fail_times": 0}, "greater than or equal to 1"),
    ],
)
def test_a_mock_says_what_it_returns_or_how_it_fails(mock: dict[str, Any], message: str) -> None:
    definition = {**CONTAIN, "tests": [{"name": "a", "mocks": {"lookup": mock}, "expect": {}}]}
    problems = validate_definition(definition, catalogue=_catalogue())
    assert any(message in p.message and p.path.startswith("tests[0].mocks") for p in problems), (
        problems
    )


def _catalogue() -> Any:
    from playbooks.catalogue import current_catalogue

    return current_catalogue()


ECHO: dict[str, Any] = {
    "name": "echo",
    "inputs": {"n": {"type": "integer", "default": 5}},
    "on_failure": "continue",
    "steps": [
        {"id": "say", "action": "util.echo", "with": {"message": "hi", "data": "{{ inputs.n }}"}},
        {"id": "count", "action": "util.echo", "with": {"data": {"count": "{{ inputs.n }}"}}},
        {"id": "broken", "needs": ["count"], "action": "util.echo",
         "with": {"message": "{{ steps.count.output.nosuch.deeper }}"}},
    ],
}  # fmt: skip


def test_inputs_the_action_would_refuse_fail_the_step_as_in_a_real_run() -> None:
    result = _run({"expect": {"statuses": {"say": "failed", "count": "succeeded"}}}, ECHO)
    assert result.passed, result.failures
    failed = _run({"expect": {"outcome": "succeeded"}}, ECHO)
    assert failed.failures[0].startswith("expected the run to end succeeded, but it is failed "
                                         "(step say is failed: invalid inputs for util.echo: data")  # fmt: skip


def test_a_step_that_failed_before_calling_anything_did_not_run() -> None:
    result = _run({"expect": {"ran": ["count", "broken"]}}, ECHO)
    assert len(result.failures) == 1
    assert result.failures[0].startswith("expected step broken to run, but it is failed: ")


def test_values_compare_as_json_true_is_not_1() -> None:
    result = _run({"expect": {"values": {"steps.count.output.data.count": True}}}, ECHO)
    assert result.failures == ("expected steps.count.output.data.count to be true, but it is 5",)


def test_a_request_that_only_reminds_leaves_the_run_waiting_at_once() -> None:
    steps = [dict(s) for s in CONTAIN["steps"]]
    steps[1] = {"id": "gate", "needs": ["lookup"],
                "approval": {"approvers": ["ic"], "remind_every": "1m"}}  # fmt: skip
    result = _run({"inputs": {"host_id": "aid-1"}, "mocks": MOCKS,
                   "expect": {"outcome": "waiting_approval"}}, {**CONTAIN, "steps": steps})  # fmt: skip
    assert result.passed, result.failures


def test_tests_stored_before_their_format_fail_instead_of_crashing() -> None:
    from core.engine.test_runner import run_playbook_tests

    [result] = run_playbook_tests({**ECHO, "tests": [{"name": "old", "expect": {"nope": 1}}]})
    assert result.outcome == "not started"
    assert result.failures == (
        "the tests do not parse: tests[0].expect.nope: Extra inputs are not permitted",
    )


def test_a_test_decides_gates_only_and_mocks_only_what_calls_out() -> None:
    definition = {**CONTAIN, "tests": [
        {"name": "a", "mocks": {"gate": {"output": {"outcome": "approved"}}},
         "approvals": {"lookup": "approve"}, "expect": {"ran": ["isolate"], "skipped": ["isolate"]}},
    ]}  # fmt: skip
    problems = {p.path: p.message for p in validate_definition(definition, catalogue=_catalogue())}
    assert problems == {
        "tests[0].mocks.gate": "gate is an approval gate, which calls nothing: decide it under approvals:",
        "tests[0].approvals.lookup": "no approval gate 'lookup' in this playbook (gates: gate)",
        "tests[0].expect.skipped": "isolate cannot both run and be skipped",
    }
