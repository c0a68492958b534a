"""Definitions must be storable JSON: YAML-only values, NaN, NUL, depth and size refused."""

from __future__ import annotations

import pytest

from integrations.registry import load_actions
from playbooks.definition import MAX_STEPS, DefinitionSyntaxError, load_definition_text
from playbooks.validation import catalogue_from_registry, validate_definition

STEPS = "steps:\n  - {id: a, action: util.echo, with: {message: %s}}\n"


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ("!!binary aGVsbG8=", "bytes value is not JSON"),
        ("2026-11-27T10:00:00Z", None),  # YAML 1.2 core: a timestamp stays a string
        ("!!timestamp 2026-11-27", "value is not JSON"),
        (".nan", "not a JSON number"),
        ('"bad\\0byte"', "NUL character"),
    ],
)
def test_yaml_values_that_json_cannot_store_are_refused_with_their_path(
    value: str, complaint: str | None
) -> None:
    text = "name: p\n" + STEPS % value
    if complaint is None:
        assert load_definition_text(text)["steps"][0]["with"]["message"] == value
        return
    with pytest.raises(DefinitionSyntaxError, match=complaint) as caught:
        load_definition_text(text)
    assert "steps[0].with.message" in str(caught.value)


def test_deep_nesting_is_a_clear_error_not_a_crash() -> None:
    deep = "[" * 5000 + "]" * 5000
    with pytest.raises(DefinitionSyntaxError, match="nested"):
        load_definition_text("name: p\nsteps: " + deep)
    problems = validate_definition('{"name": "p", "steps": ' + deep + "}", catalogue={})
    assert problems
    assert "nested" in problems[0].message


def test_too_many_steps_are_refused_before_the_expensive_checks() -> None:
    steps = [
        {"id": f"s{i}", "action": "util.echo", "needs": [f"s{i - 1}"] if i else []}
        for i in range(MAX_STEPS + 1)
    ]
    problems = validate_definition(
        {"name": "p", "steps": steps}, catalogue=catalogue_from_registry(load_actions())
    )
    assert [(p.path, "at most" in p.message) for p in problems] == [("steps", True)]
