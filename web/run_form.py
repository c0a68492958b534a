"""The form that starts a run by hand: a field per declared input, read back to JSON values."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class InputField:
    name: str
    type: str
    required: bool
    description: str
    enum: list[Any] | None
    value: str  # as the form shows it
    checked: bool  # booleans


def input_fields(declared: Mapping[str, Mapping[str, Any]],
                 posted: Mapping[str, str] | None = None) -> list[InputField]:  # fmt: skip
    fields = []
    for name, spec in declared.items():
        kind = str(spec.get("type", "string"))
        default = spec.get("default")
        if posted is not None:
            shown = posted.get(f"input-{name}", "")
            checked = posted.get(f"input-{name}") == "on"
        else:
            shown = "" if default is None else (
                default if isinstance(default, str) else json.dumps(default))  # fmt: skip
            checked = default is True
        fields.append(InputField(name, kind, bool(spec.get("required")),
                                 str(spec.get("description", "")), spec.get("enum"), str(shown),
                                 checked))  # fmt: skip
    return fields


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{text} is too large for a JSON number")
    return value


def read_inputs(
    declared: Mapping[str, Mapping[str, Any]], posted: Mapping[str, str]
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The posted fields as input values; an empty field is left out (so its default, or
    "is required", applies), except a checkbox, which is true or false. Problems are (path, message) as start_run reports them."""
    values: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    for name, spec in declared.items():
        kind = spec.get("type", "string")
        key = f"input-{name}"
        if kind == "boolean":
            # A checkbox is posted only when ticked: unticked is an answer, false.
            values[name] = posted.get(key) == "on"
            continue
        raw = posted.get(key, "").strip()
        if raw == "":
            continue
        if kind == "string":
            values[name] = posted[key]
            continue
        try:
            values[name] = json.loads(raw, parse_constant=_no_constant, parse_float=_finite)
        except json.JSONDecodeError as exc:
            problems.append(
                (f"inputs.{name}", f"is not valid JSON ({exc.msg}, column {exc.colno})")
            )
        except ValueError as exc:
            problems.append((f"inputs.{name}", str(exc)))
    return values, problems
