"""The action registry: `@action` on a typed function makes it a playbook action.

The function's keyword parameters are its input schema (validated with pydantic), its
docstring the help text. Integrations register at import time; `load_actions()` imports
every built-in action module so the catalogue is complete wherever it is read.
"""

from __future__ import annotations

import importlib
import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import pydantic

from integrations.context import ActionContext

SideEffect = Literal["read", "write", "destructive"]
ActionFunc = Callable[..., dict[str, Any]]

# Modules that define built-in actions; later integrations add themselves here.
ACTION_MODULES = [
    "integrations.actions.util",
    "integrations.actions.http_request",
    "integrations.crowdstrike.actions",
    "integrations.slack.actions",
    "integrations.jira.actions",
    "integrations.virustotal.actions",
    "integrations.abuseipdb.actions",
    "integrations.pagerduty.actions",
    "integrations.defender.actions",
    "integrations.sentinelone.actions",
    "integrations.servicenow.actions",
    "integrations.awx.actions",
    "integrations.teams.actions",
    "integrations.mail.actions",
]
# Fault-injection actions for the end-to-end tests; never loaded unless asked for.
if os.environ.get("BULWARK_FAULT_ACTIONS") == "1":
    ACTION_MODULES.append("integrations.actions.faults")


@dataclass(frozen=True)
class ActionSpec:
    """One registered action and its contract."""

    name: str
    func: ActionFunc
    side_effect: SideEffect
    input_model: type[pydantic.BaseModel]
    description: str
    # The vendor dedupes by the idempotency key we send, so re-sending after a lost
    # response is safe; otherwise a write with an unknown outcome is "ambiguous".
    idempotent: bool = False
    # Integration whose connection the action uses; None means it needs none.
    connection_integration: str | None = None
    connection_required: bool = False
    # What a dry run says the action would do, formatted with its inputs ("contain host
    # {device_id}"); without it, the action's name and inputs.
    plan: str = ""
    # For a write that only reads with some inputs (an HTTP GET): a dry run runs those.
    reads_with: Callable[[dict[str, Any]], bool] | None = None
    # The engine's own (a `playbook:` step's child run): not in the catalogue playbooks
    # name actions from.
    internal: bool = False
    # What the step's output holds, for authors (the API and docs show it).
    output: str = ""

    @property
    def integration(self) -> str:
        return self.name.split(".", 1)[0]

    def input_schema(self) -> dict[str, Any]:
        return self.input_model.model_json_schema()

    def validate_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Coerce and check inputs; raises pydantic.ValidationError."""
        return self.input_model.model_validate(inputs).model_dump(mode="json", exclude_unset=False)


_REGISTRY: dict[str, ActionSpec] = {}


class _ActionInputs(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")


def _input_model(name: str, func: ActionFunc) -> type[pydantic.BaseModel]:
    fields: dict[str, Any] = {}
    params = list(inspect.signature(func, eval_str=True).parameters.values())
    if not params or params[0].name != "ctx":
        raise TypeError(f"action {name}: the first parameter must be `ctx: ActionContext`")
    for param in params[1:]:
        if param.kind is not inspect.Parameter.KEYWORD_ONLY:
            raise TypeError(f"action {name}: input {param.name!r} must be keyword-only")
        if param.annotation is inspect.Parameter.empty:
            raise TypeError(f"action {name}: input {param.name!r} needs a type annotation")
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[param.name] = (param.annotation, default)
    model_name = "".join(part.title() for part in name.replace("_", ".").split(".")) + "Inputs"
    return pydantic.create_model(model_name, __base__=_ActionInputs, **fields)


def action(
    name: str,
    *,
    side_effect: SideEffect,
    idempotent: bool = False,
    connection: str | None = None,
    connection_required: bool = False,
    output: str = "",
    plan: str = "",
    reads_with: Callable[[dict[str, Any]], bool] | None = None,
    internal: bool = False,
) -> Callable[[ActionFunc], ActionFunc]:
    """Register `func` as the action `name`."""

    def register(func: ActionFunc) -> ActionFunc:
        if name in _REGISTRY and _REGISTRY[name].func is not func:
            raise ValueError(f"action {name} is registered twice")
        _REGISTRY[name] = ActionSpec(
            name=name,
            func=func,
            side_effect=side_effect,
            input_model=_input_model(name, func),
            description=inspect.cleandoc(func.__doc__ or ""),
            idempotent=idempotent,
            connection_integration=connection,
            connection_required=connection_required,
            output=output,
            plan=plan,
            reads_with=reads_with,
            internal=internal,
        )
        return func

    return register


def load_actions() -> dict[str, ActionSpec]:
    """Import every action module and return the catalogue."""
    for module in ACTION_MODULES:
        importlib.import_module(module)
    return dict(_REGISTRY)


def get_action(name: str) -> ActionSpec | None:
    load_actions()
    return _REGISTRY.get(name)


def validated_inputs(spec: ActionSpec, inputs: dict[str, Any]) -> pydantic.BaseModel:
    """`inputs` as the action takes them (defaults applied); PermanentError (kind
    validation) naming each bad field when it would refuse them."""
    from integrations.errors import PermanentError

    try:
        return spec.input_model.model_validate(inputs)
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(inputs)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise PermanentError(
            f"invalid inputs for {spec.name}: {problems}", kind="validation"
        ) from None


def unsafe_to_repeat(specs: dict[str, ActionSpec]) -> frozenset[str]:
    """Writes without an idempotency key: their effect is unknown after a lost attempt."""
    return frozenset(n for n, s in specs.items() if s.side_effect != "read" and not s.idempotent)


def destructive(specs: dict[str, ActionSpec]) -> frozenset[str]:
    return frozenset(n for n, s in specs.items() if s.side_effect == "destructive")


def invoke(spec: ActionSpec, ctx: ActionContext, inputs: dict[str, Any]) -> dict[str, Any]:
    """Validate `inputs` and call the action; a validation failure is permanent."""
    validated = validated_inputs(spec, inputs)
    kwargs = {field: getattr(validated, field) for field in type(validated).model_fields}
    result = spec.func(ctx, **kwargs)
    if not isinstance(result, dict):
        raise TypeError(f"action {spec.name} returned {type(result).__name__}, not a dict")
    return result
