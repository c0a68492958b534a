"""Save-time validation: every check names the step and field, and all problems come at once."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Literal

import pydantic
import pytest

from playbooks.definition import load_definition_text
from playbooks.validation import (
    ActionInfo,
    Problem,
    catalogue_from_registry,
    guardrail_problems,
    validate_definition,
)


class _Inputs(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")


class ContainInputs(_Inputs):
    device_id: str


class PostInputs(_Inputs):
    channel: str
    text: str


class LaunchInputs(_Inputs):
    job_template: int
    limit: str = ""


class RequestInputs(_Inputs):
    url: str
    method: Literal["GET", "POST"] = "GET"


@dataclass(frozen=True)
class FakeSpec:
    """Shaped like integrations.registry.ActionSpec."""

    name: str
    side_effect: str
    input_model: type[pydantic.BaseModel]
    connection_integration: str | None = None


CATALOGUE = catalogue_from_registry(
    {
        spec.name: spec
        for spec in [
            FakeSpec("vt.file_report", "read", _Inputs),
            FakeSpec("edr.contain_host", "destructive", ContainInputs),
            FakeSpec("edr.lift_containment", "write", ContainInputs),
            FakeSpec("chat.post_message", "write", PostInputs),
            FakeSpec("awx.launch_job", "destructive", LaunchInputs),
            FakeSpec("http.request", "write", RequestInputs, connection_integration="http"),
        ]
    }
)

VALID: dict[str, Any] = load_definition_text(
    """
name: contain
inputs:
  host_id: {type: string, required: true}
  hosts: {type: array}
triggers:
  - {source: edr, if: "alert.severity == 'high'", inputs: {host_id: h}}
on_failure: compensate
steps:
  - {id: enrich, action: vt.file_report}
  - {id: approve, needs: [enrich], approval: {approvers: [ic], message: "ok?"}}
  - id: isolate
    needs: [approve]
    if: "steps.approve.outcome == 'approved'"
    action: edr.contain_host
    with: {device_id: "{{ inputs.host_id }}"}
    retry: {attempts: 5, backoff: 2s}
    timeout: 2m
    compensate:
      action: edr.lift_containment
      with: {device_id: "{{ steps.isolate.output.device_id }}"}
  - id: notify
    needs: [isolate]
    action: chat.post_message
    with: {channel: "#soc", text: "{{ steps.enrich.output }}"}
  - id: patch
    needs: [notify]
    for_each: "{{ inputs.hosts }}"
    max_parallel: 4
    action: awx.launch_job
    with: {job_template: 42, limit: "{{ item }}"}
"""
)


def _with(**changes: Any) -> dict[str, Any]:
    """VALID with some steps' fields replaced: _with(isolate={"timeout": "soon"})."""
    data = copy.deepcopy(VALID)
    for step_id, fields in changes.items():
        step = next(s for s in data["steps"] if s["id"] == step_id)
        step.update(fields)
    return data


def _extra_step(step: dict[str, Any]) -> dict[str, Any]:
    """VALID with one more step at the end."""
    data = copy.deepcopy(VALID)
    data["steps"].append(step)
    return data


def _check(data: dict[str, Any] | str, **kwargs: Any) -> list[str]:
    return [str(p) for p in validate_definition(data, catalogue=CATALOGUE, **kwargs)]


def test_a_valid_definition_has_no_problems() -> None:
    assert validate_definition(VALID, catalogue=CATALOGUE, connections=set()) == []


def test_problems_carry_a_path_and_a_message() -> None:
    # Only one problem: the step that fails to parse still counts for the others' needs.
    problems = validate_definition(_with(isolate={"timeout": "soon"}), catalogue=CATALOGUE)
    assert problems == [Problem("steps.isolate.timeout", problems[0].message)]
    assert problems[0].message.startswith("invalid duration 'soon'")


ONE_PROBLEM: dict[str, tuple[dict[str, Any], str]] = {
    "unknown-field-suggests-the-intended-one": (
        dict(isolate={"retyr": {"attempts": 2}}),
        "steps.isolate.retyr: unknown field 'retyr'; did you mean 'retry'?",
    ),
    "shape-error-deep-in-a-step": (
        dict(isolate={"retry": {"attempts": 0}}),
        "steps.isolate.retry.attempts: must be greater than or equal to 1 (got 0)",
    ),
    "unknown-need-suggests-a-close-step": (
        dict(patch={"needs": ["notfy"]}),
        "steps.patch.needs: unknown step 'notfy'; did you mean 'notify'?",
    ),
    "a-step-cannot-need-itself": (
        dict(notify={"needs": ["isolate", "notify"]}),
        "steps.notify.needs: step 'notify' cannot need itself",
    ),
    "unknown-action-suggests-a-close-one": (
        dict(isolate={"action": "edr.contan_host"}),
        "steps.isolate.action: unknown action 'edr.contan_host'; did you mean 'edr.contain_host'?",
    ),
    "unknown-input": (
        dict(notify={"with": {"channel": "#soc", "text": "x", "txt": "y"}}),
        "steps.notify.with.txt: unknown input 'txt' of chat.post_message; did you mean 'text'?",
    ),
    "required-input-missing-beside-a-templated-one": (
        dict(notify={"with": {"channel": "{{ inputs.host_id }}"}}),
        "steps.notify.with: missing required input 'text' of chat.post_message",
    ),
    "literal-input-of-the-wrong-type": (
        dict(patch={"with": {"job_template": "forty-two", "limit": "{{ item }}"}}),
        "steps.patch.with.job_template: must be a valid integer, unable to parse string as an"
        " integer (got 'forty-two')",
    ),
    "reference-to-a-missing-step": (
        dict(notify={"with": {"channel": "#soc", "text": "{{ steps.enrihc.output }}"}}),
        "steps.notify.with.text: refers to steps.enrihc, which does not exist; did you mean 'enrich'?",
    ),
    "a-step-reading-its-own-output": (
        dict(notify={"with": {"channel": "#soc", "text": "{{ steps.notify.output }}"}}),
        "steps.notify.with.text: refers to steps.notify, the step itself, which has not run yet",
    ),
    "item-outside-for-each": (
        dict(notify={"with": {"channel": "#soc", "text": "{{ item }}"}}),
        "steps.notify.with.text: uses item, which is defined only in steps with for_each",
    ),
    "reference-to-a-step-that-is-not-upstream": (
        dict(notify={"with": {"channel": "#soc", "text": "{{ steps.patch.output }}"}}),
        "steps.notify.with.text: refers to steps.patch, which is not upstream of notify;"
        " add it to needs",
    ),
    "connection-on-an-action-that-uses-none": (
        dict(notify={"connection": "slack"}),
        "steps.notify.connection: action chat.post_message does not use a connection",
    ),
    "max-parallel-without-for-each": (
        dict(notify={"max_parallel": 3}),
        "steps.notify.max_parallel: max_parallel applies only with for_each",
    ),
}


@pytest.mark.parametrize(("changes", "expected"), ONE_PROBLEM.values(), ids=ONE_PROBLEM.keys())
def test_each_check_names_the_step_and_field(changes: dict[str, Any], expected: str) -> None:
    assert _check(_with(**changes)) == [expected]


def test_top_level_shape_errors_have_top_level_paths() -> None:
    data = {**VALID, "on_failure": "explode"}
    del data["name"]
    assert _check(data) == [
        "name: is required",
        "on_failure: must be 'stop', 'continue' or 'compensate' (got 'explode')",
    ]


def test_a_step_without_a_valid_id_is_named_by_position() -> None:
    data = _with(enrich={"id": "Enrich!"})
    problems = _check(data)
    assert problems[0].startswith("steps[0].id: must start with a lowercase letter")


def test_duplicate_ids_are_reported_by_position() -> None:
    data = _with(notify={"id": "isolate"})
    assert "steps[3].id: duplicate step id 'isolate' (also steps[2])" in _check(data)


def test_cycles_are_named_step_by_step() -> None:
    data = _with(isolate={"needs": ["approve", "notify"]})
    assert "steps: cycle isolate → notify → isolate" in _check(data)


def test_templated_inputs_skip_the_type_check() -> None:
    data = _with(patch={"with": {"job_template": "{{ inputs.template }}", "limit": "{{ item }}"}})
    assert _check(data) == []


def test_template_syntax_errors_name_the_field() -> None:
    data = _with(notify={"with": {"channel": "#soc", "text": "{{ inputs.host_id "}})
    [problem] = _check(data)
    assert problem.startswith("steps.notify.with.text: line 1:")


def test_if_expression_syntax_errors_name_the_field() -> None:
    [problem] = _check(_with(isolate={"if": "steps.approve.outcome =="}))
    assert problem.startswith("steps.isolate.if: line 1:")


def test_syntax_is_checked_in_messages_compensations_for_each_and_triggers() -> None:
    data = _with(
        approve={"approval": {"approvers": ["ic"], "message": "{% if %}"}},
        isolate={
            "compensate": {"action": "edr.lift_containment", "with": {"device_id": "{{ ) }}"}}
        },
        patch={"for_each": "{{ inputs.hosts | }}"},
    )
    data["triggers"] = [{"source": "edr", "if": "alert.(", "inputs": {"host_id": "{{ x. }}"}}]
    paths = [p.split(":")[0] for p in _check(data)]
    assert paths == [
        "steps.approve.approval.message",
        "steps.isolate.compensate.with.device_id",
        "steps.patch.for_each",
        "triggers[0].if",
        "triggers[0].inputs.host_id",
    ]


def test_references_are_checked_in_if_for_each_and_compensate() -> None:
    data = _with(
        enrich={"if": "steps.notify.status == 'succeeded'"},
        isolate={
            "compensate": {
                "action": "edr.lift_containment",
                "with": {"device_id": "{{ steps.patch.output }}"},
            }
        },
        notify={"for_each": "{{ steps.patch.output.hosts }}"},
    )
    assert _check(data) == [
        "steps.enrich.if: refers to steps.notify, which is not upstream of enrich; add it to needs",
        "steps.isolate.compensate.with.device_id: refers to steps.patch, which is not upstream of"
        " isolate; add it to needs",
        "steps.notify.for_each: refers to steps.patch, which is not upstream of notify;"
        " add it to needs",
    ]


def test_item_in_the_if_of_a_for_each_step_is_refused() -> None:
    [problem] = _check(_with(patch={"if": "item != 'db-01'"}))
    assert problem.startswith("steps.patch.if: uses item, which is defined only in with:")


def _request_step(**fields: Any) -> dict[str, Any]:
    return _extra_step(
        {"id": "call", "action": "http.request", "with": {"url": "https://x.test/"}, **fields}
    )


def test_connections_must_exist_for_the_actions_integration() -> None:
    data = _request_step(connection="siem")
    connections = {("http", "ticketing"), ("slack", "siem")}
    assert _check(data, connections=connections) == [
        "steps.call.connection: unknown http connection 'siem' (configured: ticketing)"
    ]
    assert _check(data, connections={("http", "siem")}) == []


def test_connections_are_not_checked_without_a_list() -> None:
    assert _check(_request_step(connection="anything"), connections=None) == []


def test_compensate_actions_and_inputs_are_checked() -> None:
    unknown = _with(isolate={"compensate": {"action": "edr.lift_contain"}})
    missing = _with(isolate={"compensate": {"action": "edr.lift_containment"}})
    assert _check(unknown) == [
        "steps.isolate.compensate.action: unknown action 'edr.lift_contain';"
        " did you mean 'edr.lift_containment'?"
    ]
    assert _check(missing) == [
        "steps.isolate.compensate.with: missing required input 'device_id' of edr.lift_containment"
    ]


def test_approval_steps_take_no_inputs_retry_or_step_timeout() -> None:
    data = _with(approve={"with": {"x": 1}, "retry": {"attempts": 2}, "timeout": "1h"})
    assert _check(data) == [
        "steps.approve.with: approval steps take no inputs (with)",
        "steps.approve.retry: approval steps are not retried",
        "steps.approve.timeout: approval steps time out with approval.timeout"
        " (and approval.on_timeout)",
    ]


def test_a_playbook_cannot_call_itself() -> None:
    assert _check(_extra_step({"id": "again", "playbook": "contain"})) == [
        "steps.again.playbook: a playbook cannot call itself"
    ]


def test_trigger_inputs_must_be_the_playbooks_inputs() -> None:
    data = {**VALID, "triggers": [{"schedule": "0 2 * * *", "inputs": {"hots_id": "x"}}]}
    assert _check(data) == [
        "triggers[0].inputs.hots_id: unknown input 'hots_id' of this playbook;"
        " did you mean 'host_id'?",
        "triggers[0].inputs: missing required input 'host_id'",
    ]


def test_triggers_cannot_refer_to_steps() -> None:
    trigger = {"source": "edr", "if": "steps.enrich.status", "inputs": {"host_id": "x"}}
    data = {**VALID, "triggers": [trigger]}
    assert _check(data) == [
        "triggers[0].if: refers to steps.enrich, but a trigger runs before any step"
    ]


def test_every_problem_is_reported_at_once() -> None:
    data = _with(
        enrich={"action": "vt.file_reprot"},
        notify={"needs": ["isolate", "ghost"], "max_parallel": 2},
        patch={"with": {"job_template": "x", "limit": "{{ item }}"}, "retry": {"attempts": 0}},
    )
    data["on_failure"] = "panic"
    paths = [p.split(":")[0] for p in _check(data)]
    assert paths == [
        "on_failure",
        "steps.patch.retry.attempts",
        "steps.notify.needs",
        "steps.enrich.action",
        "steps.notify.max_parallel",
    ]


def test_yaml_text_is_validated_and_syntax_errors_carry_the_line() -> None:
    assert _check("name: demo\nsteps:\n  - id: a\n    action: [vt.file_report\n") == [
        "line 5, column 1: while parsing a flow sequence: expected ',' or ']', but got '<stream end>'"
    ]
    assert _check("name: demo\nsteps:\n  - {id: a, action: vt.file_report}\n") == []


def test_a_definition_that_is_not_a_mapping_is_one_problem() -> None:
    assert _check("[1, 2]") == [
        "a playbook definition must be a mapping (name:, steps:, …), not a list"
    ]


def test_the_catalogue_adapter_keeps_the_action_contract() -> None:
    info = CATALOGUE["http.request"]
    assert info == ActionInfo(
        name="http.request",
        side_effect="write",
        input_schema=RequestInputs.model_json_schema(),
        validate=info.validate,
        connection_integration="http",
    )
    assert info.validate is not None
    assert info.validate({"method": "DELETE"}) == [
        ("method", "must be 'GET' or 'POST' (got 'DELETE')")
    ]


def test_guardrail_refuses_a_destructive_compensation_without_an_approval() -> None:
    data = {
        "name": "undo-by-force",
        "steps": [
            {"id": "enrich", "action": "vt.file_report",
             "compensate": {"action": "edr.contain_host", "with": {}}},
        ],
    }  # fmt: skip
    problems = guardrail_problems(data, CATALOGUE)
    assert [p.path for p in problems] == ["steps.enrich.compensate"]
    assert "edr.contain_host" in problems[0].message


def test_guardrail_passes_destructive_steps_behind_an_approval() -> None:
    assert guardrail_problems(VALID, CATALOGUE) == []


def test_guardrail_refuses_a_destructive_step_without_an_approval() -> None:
    data = _with(isolate={"needs": ["enrich"], "if": None})
    assert [str(p) for p in guardrail_problems(data, CATALOGUE)] == [
        "steps.isolate: destructive action edr.contain_host can run without an approval: the path"
        " enrich → isolate passes no approval gate; add an approval step to its needs,"
        " or declare autonomous: true",
        "steps.patch: destructive action awx.launch_job can run without an approval: the path"
        " enrich → isolate → notify → patch passes no approval gate; add an approval step to its"
        " needs, or declare autonomous: true",
    ]


@pytest.mark.parametrize(
    ("data", "path", "how"),
    [
        (
            _with(patch={"needs": ["notify", "enrich"]}),
            "steps.patch",
            "the path enrich → patch passes no approval gate",
        ),
        (
            _extra_step({"id": "wipe", "action": "awx.launch_job", "with": {"job_template": 1}}),
            "steps.wipe",
            "'wipe' is a start step",
        ),
    ],
    ids=["parallel-path-around-the-gate", "start-step"],
)
def test_guardrail_refuses_every_way_around_the_gate(
    data: dict[str, Any], path: str, how: str
) -> None:
    [problem] = guardrail_problems(data, CATALOGUE)
    assert problem.path == path
    assert how in problem.message


def test_guardrail_sees_through_a_step_that_runs_even_if_the_gate_rejects() -> None:
    data = _with(isolate={"if": "always()"})
    isolate, patch = guardrail_problems(data, CATALOGUE)
    assert isolate.path == "steps.isolate"
    assert "its 'if' uses a status function (always(), failed() …)" in isolate.message
    assert patch.path == "steps.patch"
    assert "'isolate' runs even when an approval before it is rejected" in patch.message


def test_guardrail_allows_autonomous_playbooks() -> None:
    data = _with(isolate={"needs": ["enrich"]})
    data["autonomous"] = True
    assert guardrail_problems(data, CATALOGUE) == []


@pytest.mark.parametrize("side_effect", ["read", "write"])
def test_guardrail_ignores_actions_that_are_not_destructive(side_effect: str) -> None:
    catalogue = {
        **CATALOGUE,
        "edr.contain_host": ActionInfo("edr.contain_host", side_effect, {}),
        "awx.launch_job": ActionInfo("awx.launch_job", side_effect, {}),
    }
    assert guardrail_problems(_with(isolate={"needs": ["enrich"]}), catalogue) == []


@pytest.mark.parametrize(
    ("approval", "path", "message"),
    [
        ({"on_timeout": "escalate", "timeout": "1m"}, "steps.g.approval",
         "on_timeout: escalate needs escalate_to, the groups asked next"),
        ({"on_timeout": "escalate", "escalate_to": [{"approvers": ["lead"]}]}, "steps.g.approval",
         "on_timeout: escalate needs a timeout"),
        ({"escalate_to": [{"approvers": ["lead"]}]}, "steps.g.approval",
         "escalate_to applies only with on_timeout: escalate"),
        ({"on_timeout": "approve"}, "steps.g.approval", "on_timeout: approve needs a timeout"),
        ({"notify": [{"slack": "#soc", "email": []}]}, "steps.g.approval.notify[0]",
         "a notify entry needs exactly one of slack, teams, email (found slack, email)"),
        ({"notify": [{}]}, "steps.g.approval.notify[0]",
         "a notify entry needs exactly one of slack, teams, email"),
        ({"remind_every": "0s"}, "steps.g.approval.remind_every",
         "invalid duration '0s': must be longer than zero"),
        ({"min_approvals": 0}, "steps.g.approval.min_approvals", None),
    ],
)  # fmt: skip
def test_approval_settings_that_do_not_fit_are_refused_with_their_path(
    approval: dict[str, Any], path: str, message: str | None
) -> None:
    definition = {
        "name": "x",
        "steps": [{"id": "g", "approval": {"approvers": ["ic"], **approval}}],
    }
    problems = validate_definition(definition, catalogue=CATALOGUE)
    assert [p.path for p in problems] == [path]
    if message is not None:
        assert problems[0].message == message
