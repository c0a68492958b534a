"""The definition models, durations, text loading and content hashing."""

from __future__ import annotations

import json
from typing import Any

import pydantic
import pytest
import yaml

from playbooks.definition import (
    DefinitionSyntaxError,
    DurationError,
    RetryPolicy,
    Step,
    canonical_json,
    content_hash,
    load_definition_text,
    parse_definition,
    parse_duration,
)

MINIMAL: dict[str, Any] = {"name": "demo", "steps": [{"id": "hello", "action": "util.echo"}]}

YAML_TEXT = """\
name: contain
title: Contain
inputs:
  host_id: {type: string, required: true}
steps:
  - id: isolate
    action: util.echo
    with: {message: "isolate {{ inputs.host_id }}"}
    timeout: 2m
  - id: notify
    needs: [isolate]
    if: "steps.isolate.status == 'succeeded'"
    action: util.echo
"""


def _errors(data: dict[str, Any]) -> list[tuple[tuple[int | str, ...], str]]:
    with pytest.raises(pydantic.ValidationError) as info:
        parse_definition(data)
    return [(tuple(e["loc"]), e["msg"]) for e in info.value.errors()]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("2s", 2.0),
        ("1m", 60.0),
        ("1h30m", 5400.0),
        ("1d", 86400.0),
        ("1h0m5s", 3605.0),
        ("1.5s", 1.5),
        (45, 45.0),
        (0.25, 0.25),
        ("30", 30.0),
    ],
)
def test_durations_parse_to_seconds(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["5 minutes", "1x", "", "m", "1m1h", "1s1s", "-1s", True, -3])
def test_bad_durations_are_refused_with_the_accepted_forms(text: Any) -> None:
    with pytest.raises(DurationError, match="invalid duration"):
        parse_duration(text)


def test_a_minimal_definition_fills_in_the_defaults() -> None:
    definition = parse_definition(MINIMAL)
    step = definition.steps[0]
    assert definition.on_failure == "stop"
    assert definition.autonomous is False
    assert definition.timezone == "UTC"
    assert step.kind == "action"
    assert step.timeout_seconds == 300.0
    assert step.retry_policy == RetryPolicy(attempts=3, backoff="1s", max_backoff="1m", jitter=True)


def test_step_helpers_read_timeout_and_retry() -> None:
    step = Step.model_validate(
        {
            "id": "isolate",
            "action": "util.echo",
            "timeout": "2m",
            "retry": {"attempts": 5, "backoff": "2s", "max_backoff": "1m"},
        }
    )
    assert step.timeout_seconds == 120.0
    assert step.retry_policy.attempts == 5
    assert step.retry_policy.backoff_seconds == 2.0
    assert step.retry_policy.max_backoff_seconds == 60.0


def test_a_step_timeout_must_be_longer_than_zero() -> None:
    with pytest.raises(pydantic.ValidationError, match="must be longer than zero"):
        Step.model_validate({"id": "a", "action": "util.echo", "timeout": "0s"})


def test_steps_know_their_kind() -> None:
    approval = Step.model_validate({"id": "ok", "approval": {"approvers": ["ic"]}})
    child = Step.model_validate({"id": "child", "playbook": "other"})
    assert (approval.kind, child.kind) == ("approval", "playbook")


def test_keyword_fields_are_read_and_written_by_their_yaml_names() -> None:
    step = Step.model_validate({"id": "a", "action": "util.echo", "if": "true", "with": {"x": 1}})
    assert (step.if_, step.with_) == ("true", {"x": 1})
    dumped = step.model_dump(exclude_none=True)
    assert dumped["if"] == "true"
    assert dumped["with"] == {"x": 1}
    assert "if_" not in dumped


def test_unknown_fields_are_errors_so_typos_are_caught() -> None:
    data = {"name": "demo", "steps": [{"id": "a", "action": "util.echo", "need": ["b"]}]}
    assert _errors(data) == [(("steps", 0, "need"), "Extra inputs are not permitted")]


def test_a_step_needs_exactly_one_of_action_approval_playbook() -> None:
    none = {"name": "demo", "steps": [{"id": "a"}]}
    both = {"name": "demo", "steps": [{"id": "a", "action": "util.echo", "playbook": "x"}]}
    assert "exactly one of action, approval, playbook" in _errors(none)[0][1]
    assert "(found action, playbook)" in _errors(both)[0][1]


def test_names_and_ids_must_be_slugs() -> None:
    errors = _errors({"name": "Bad Name", "steps": [{"id": "Isolate-1", "action": "util.echo"}]})
    assert [loc for loc, _ in errors] == [("name",), ("steps", 0, "id")]


def test_a_definition_needs_at_least_one_step() -> None:
    assert _errors({"name": "demo", "steps": []})[0][0] == ("steps",)


def test_a_trigger_is_a_source_or_a_schedule_not_both() -> None:
    data = {**MINIMAL, "triggers": [{"source": "edr", "schedule": "0 2 * * *"}]}
    assert "exactly one of source or schedule" in _errors(data)[0][1]


def test_a_schedule_must_be_a_five_field_cron() -> None:
    data = {**MINIMAL, "triggers": [{"schedule": "every day"}]}
    assert "not a cron expression" in _errors(data)[0][1]


def test_an_input_default_must_match_its_type_and_enum() -> None:
    wrong_type = {**MINIMAL, "inputs": {"n": {"type": "integer", "default": "three"}}}
    not_in_enum = {**MINIMAL, "inputs": {"s": {"type": "string", "enum": ["a"], "default": "b"}}}
    assert "not of type integer" in _errors(wrong_type)[0][1]
    assert "not one of the enum values" in _errors(not_in_enum)[0][1]


def test_retry_max_backoff_cannot_be_below_backoff() -> None:
    with pytest.raises(pydantic.ValidationError, match="max_backoff must not be shorter"):
        RetryPolicy(backoff="1m", max_backoff="1s")


def test_retry_attempts_are_bounded() -> None:
    with pytest.raises(pydantic.ValidationError):
        RetryPolicy(attempts=0)
    with pytest.raises(pydantic.ValidationError):
        RetryPolicy(attempts=101)


def test_an_unknown_timezone_is_refused() -> None:
    assert "unknown time zone" in _errors({**MINIMAL, "timezone": "Mars/Olympus"})[0][1]


def test_yaml_and_json_texts_load_to_the_same_mapping() -> None:
    from_yaml = load_definition_text(YAML_TEXT)
    from_json = load_definition_text(json.dumps(from_yaml, indent=2))
    assert from_yaml == from_json
    assert from_yaml["steps"][1]["if"] == "steps.isolate.status == 'succeeded'"


def test_yaml_errors_carry_line_and_column() -> None:
    text = "name: demo\nsteps:\n  - id: a\n    with: {message: [unclosed}\n"
    with pytest.raises(DefinitionSyntaxError) as info:
        load_definition_text(text)
    assert info.value.line == 4
    assert info.value.column is not None
    assert str(info.value).startswith("line 4, column ")


def test_json_errors_carry_line_and_column() -> None:
    with pytest.raises(DefinitionSyntaxError) as info:
        load_definition_text('{\n  "name": "demo",\n  "steps": [,]\n}')
    assert (info.value.line, info.value.column) == (3, 13)


@pytest.mark.parametrize(
    ("text", "found"),
    [("- a\n- b\n", "a list"), ("", "nothing"), ("42", "a number"), ("just text", "a string")],
)
def test_a_definition_must_be_a_mapping(text: str, found: str) -> None:
    with pytest.raises(DefinitionSyntaxError, match=f"must be a mapping .* not {found}"):
        load_definition_text(text)


def test_yaml_tags_that_build_python_objects_are_refused() -> None:
    with pytest.raises(DefinitionSyntaxError):
        load_definition_text("name: !!python/object/apply:os.system ['true']\n")


def test_yaml_alias_bombs_are_refused() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 7)]
    with pytest.raises(DefinitionSyntaxError, match="too large"):
        load_definition_text("\n".join(lines) + "\n")


def test_yaml_1_1_surprises_stay_strings() -> None:
    data = load_definition_text(
        "name: demo\ncountry: NO\nanswer: yes\nwhen: 2024-01-01\nok: true\n"
    )
    assert data == {
        "name": "demo",
        "country": "NO",
        "answer": "yes",
        "when": "2024-01-01",
        "ok": True,
    }


def test_content_hash_ignores_key_order_and_format() -> None:
    data = load_definition_text(YAML_TEXT)
    reordered = json.loads(json.dumps(data, sort_keys=True))
    reordered["steps"] = [dict(reversed(list(s.items()))) for s in reordered["steps"]]
    as_json_text = json.dumps(dict(reversed(list(data.items()))))
    assert content_hash(data) == content_hash(reordered)
    assert content_hash(data) == content_hash(load_definition_text(as_json_text))


def test_content_hash_treats_a_spelled_out_default_as_the_default() -> None:
    explicit = {**MINIMAL, "on_failure": "stop", "autonomous": False}
    assert content_hash(explicit) == content_hash(MINIMAL)


def test_content_hash_changes_with_the_content() -> None:
    changed = {"name": "demo", "steps": [{"id": "hello", "action": "util.sleep"}]}
    assert content_hash(changed) != content_hash(MINIMAL)


def test_canonical_json_is_compact_sorted_and_by_yaml_names() -> None:
    text = canonical_json({"name": "demo", "steps": [{"id": "a", "action": "x.y", "if": "true"}]})
    assert " " not in text
    assert '"if":"true"' in text
    assert text == json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))
    assert yaml.safe_load(text)["steps"][0]["if"] == "true"
