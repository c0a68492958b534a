"""The definition's shape: pydantic's errors turned into problems with readable paths."""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Annotated, Any, Union, get_args, get_origin

import pydantic
from pydantic_core import ErrorDetails

from playbooks.definition import PlaybookDefinition
from playbooks.validation.problems import Problem, StepPaths, join, suggest

_PATTERN_HELP = {
    "name": "must be a slug: lowercase letters, digits and '-', at most 63 characters",
    "playbook": "must be a playbook name: lowercase letters, digits and '-'",
    "source": "must be an alert source slug: lowercase letters, digits and '-'",
    "id": "must start with a lowercase letter and hold only lowercase letters, digits and '_'",
    "needs": "must be a step id: a lowercase letter, then lowercase letters, digits and '_'",
    "inputs": "input names hold only letters, digits and '_' and do not start with a digit",
}


def _strip(annotation: Any) -> Any:
    while True:
        origin = get_origin(annotation)
        args = [a for a in get_args(annotation) if a is not type(None)]
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType) and len(args) == 1:
            annotation = args[0]
        else:
            return annotation


def _model_at(loc: tuple[int | str, ...]) -> type[pydantic.BaseModel] | None:
    """The model class found at `loc` inside a PlaybookDefinition, if any."""
    current: Any = PlaybookDefinition
    for part in loc:
        current = _strip(current)
        if isinstance(current, type) and issubclass(current, pydantic.BaseModel):
            fields = {f.alias or name: f for name, f in current.model_fields.items()}
            if part not in fields:
                return None
            current = fields[str(part)].annotation
        elif get_origin(current) is list:
            current = get_args(current)[0]
        elif get_origin(current) is dict:
            current = get_args(current)[1]
        else:
            return None
    current = _strip(current)
    return (
        current if isinstance(current, type) and issubclass(current, pydantic.BaseModel) else None
    )


def _field_names(model: type[pydantic.BaseModel]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items()]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _message(error: ErrorDetails, loc: tuple[int | str, ...]) -> str:
    kind, msg = error["type"], error["msg"]
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        model = _model_at(loc[:-1])
        known = _field_names(model) if model else []
        hint = suggest(str(loc[-1]), known) or (f" (fields: {', '.join(known)})" if known else "")
        return f"unknown field '{loc[-1]}'{hint}"
    if kind == "string_pattern_mismatch":
        field = next(
            (str(p) for p in reversed(loc) if isinstance(p, str) and p in _PATTERN_HELP), ""
        )
        help_text = _PATTERN_HELP.get(field, msg)
        return f"{help_text} (got {_short(error['input'])})"
    if kind == "value_error":
        return msg.removeprefix("Value error, ")
    if kind in ("model_type", "dict_type"):
        return f"must be a mapping (got {_short(error['input'])})"
    if kind == "too_short" and isinstance(error["input"], list | dict):
        return "must not be empty"
    if msg.startswith("Input should be"):
        return f"must be{msg.removeprefix('Input should be')} (got {_short(error['input'])})"
    return msg


def _clean_loc(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    # A bad dict key is reported at (..., key, "[key]"); the key's own path is enough.
    return loc[:-1] if loc and loc[-1] == "[key]" else loc


def structure_problems(data: Mapping[str, Any]) -> list[Problem]:
    """Every shape error of `data` as a definition (types, required and unknown fields)."""
    try:
        PlaybookDefinition.model_validate(data)
    except pydantic.ValidationError as exc:
        errors = exc.errors()
    else:
        return []
    raw_steps = data.get("steps")
    paths = StepPaths(raw_steps if isinstance(raw_steps, list) else [])
    problems: list[Problem] = []
    for error in errors:
        loc = _clean_loc(tuple(error["loc"]))
        if len(loc) >= 2 and loc[0] == "steps" and isinstance(loc[1], int):
            path = paths(loc[1], *loc[2:])
        else:
            path = join("", *loc)
        problem = Problem(path, _message(error, loc))
        if problem not in problems:
            problems.append(problem)
    return problems
