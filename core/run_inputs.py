"""Checking a run's inputs against the playbook's declared inputs (pure)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


def _is_type(value: Any, type_name: str) -> bool:
    if isinstance(value, bool) and type_name in {"integer", "number"}:
        return False
    return isinstance(value, _TYPES.get(type_name, (object,)))


def resolve_inputs(
    declared: Mapping[str, Mapping[str, Any]], given: Mapping[str, Any]
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Apply defaults and check types, enums and required inputs.

    Returns the resolved inputs and every problem as (path, message).
    """
    problems: list[tuple[str, str]] = []
    resolved: dict[str, Any] = {}
    for name in given:
        if name not in declared:
            known = ", ".join(sorted(declared)) or "none"
            problems.append((f"inputs.{name}", f"unknown input (the playbook declares: {known})"))
    for name, spec in declared.items():
        path = f"inputs.{name}"
        if name in given:
            value = given[name]
        elif spec.get("default") is not None:
            value = copy.deepcopy(spec["default"])
        elif spec.get("required"):
            problems.append((path, "is required"))
            continue
        else:
            continue
        type_name = spec.get("type", "string")
        if value is not None and not _is_type(value, type_name):
            problems.append((path, f"expected {type_name}, got {type(value).__name__}"))
            continue
        enum = spec.get("enum")
        if enum is not None and value not in enum:
            problems.append((path, f"must be one of {', '.join(map(repr, enum))}"))
            continue
        resolved[name] = value
    return resolved, problems
