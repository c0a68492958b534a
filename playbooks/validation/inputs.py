"""Action inputs (`with:`) against the action's input schema, and the catalogue adapter."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import pydantic

from playbooks.validation.problems import ActionInfo, InputValidator, Problem, join, suggest


class ActionSpecLike(Protocol):
    """The parts of integrations.registry.ActionSpec the validator reads."""

    @property
    def name(self) -> str: ...
    @property
    def side_effect(self) -> str: ...
    @property
    def input_model(self) -> type[pydantic.BaseModel]: ...
    @property
    def connection_integration(self) -> str | None: ...


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def model_validator_for(model: type[pydantic.BaseModel]) -> InputValidator:
    """A validate() that checks the given (literal) inputs against `model`, ignoring inputs
    that are missing (they may be templated) or unknown (reported separately)."""

    def validate(values: dict[str, Any]) -> list[tuple[str, str]]:
        try:
            model.model_validate(values)
        except pydantic.ValidationError as exc:
            found = []
            for error in exc.errors():
                if error["type"] in ("missing", "extra_forbidden"):
                    continue
                field = join("", *error["loc"])
                message = error["msg"].removeprefix("Value error, ")
                if message.startswith("Input should be"):
                    message = "must be" + message.removeprefix("Input should be")
                found.append((field, f"{message} (got {_describe(error['input'])})"))
            return found
        return []

    return validate


def catalogue_from_registry(specs: Mapping[str, ActionSpecLike]) -> dict[str, ActionInfo]:
    """The validator's view of the action registry (`integrations.registry.load_actions()`)."""
    return {
        name: ActionInfo(
            name=spec.name,
            side_effect=spec.side_effect,
            input_schema=spec.input_model.model_json_schema(),
            validate=model_validator_for(spec.input_model),
            connection_integration=spec.connection_integration,
        )
        for name, spec in specs.items()
        if not getattr(spec, "internal", False)
    }


def is_templated(value: Any) -> bool:
    """Whether a value holds a template anywhere, so its type is known only at run time."""
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, dict):
        return any(is_templated(v) for v in value.values())
    if isinstance(value, list):
        return any(is_templated(v) for v in value)
    return False


def input_problems(info: ActionInfo, values: Mapping[str, Any], *, path: str) -> list[Problem]:
    """Unknown and missing inputs of `info`, and literal values it would refuse.

    `path` is where the inputs sit (e.g. `steps.isolate.with`).
    """
    schema = info.input_schema
    properties: dict[str, Any] = schema.get("properties", {})
    required: list[str] = schema.get("required", [])
    problems: list[Problem] = []
    if not schema.get("additionalProperties"):
        for key in values:
            if key not in properties:
                known = ", ".join(properties) or "none"
                hint = suggest(key, properties) or f" (inputs: {known})"
                problems.append(
                    Problem(join(path, key), f"unknown input '{key}' of {info.name}{hint}")
                )
    for key in required:
        if key not in values:
            problems.append(Problem(path, f"missing required input '{key}' of {info.name}"))
    literal = {k: v for k, v in values.items() if k in properties and not is_templated(v)}
    if info.validate is not None and literal:
        for field, message in info.validate(literal):
            problems.append(Problem(join(path, field) if field else path, message))
    return problems
