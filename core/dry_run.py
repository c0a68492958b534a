"""Dry runs (SPEC §3): reads run, or answer from the fixtures given, and writes only say
what they would send (`would contain host aid-777 via connection falcon-prod`).

A dry run is a run like any other, marked `dry_run`: its steps, approvals and audit trail
are real, but no write or destructive action reaches a vendor, no approval is announced
in chat or e-mail, and no blast-radius budget is spent. Its planned steps' outputs carry
`dry_run: true` and the `plan`; metrics of real response never count it.
"""

from __future__ import annotations

import functools
import json
import string
from collections.abc import Mapping
from typing import Any

from core.models import Run
from integrations.context import ConnectionInfo
from integrations.registry import ActionSpec, validated_inputs
from playbooks.validation.names import StepNames

FIXTURES = "dry_run_fixtures"  # where a dry run's context keeps its fixtures
MAX_FIXTURES_BYTES = 1_000_000
_MISSING = object()


@functools.lru_cache(maxsize=1_000)
def dry_run_fixtures(run_id: int) -> Mapping[str, Any]:
    """The fixtures a dry run was started with, by unit ("enrich", "scan[1]"), step or
    action name; cached, since a run's context never changes."""
    context = Run.objects.filter(pk=run_id).values_list("context", flat=True).first() or {}
    fixtures = context.get(FIXTURES) if isinstance(context, dict) else None
    return fixtures if isinstance(fixtures, dict) else {}


def fixture_problems(
    definition: Mapping[str, Any], fixtures: Mapping[str, Any]
) -> list[tuple[str, str]]:
    """Why fixtures cannot answer this version's steps: each must name one of its steps,
    an item of a for_each step (`scan[1]`) or an action it calls (a typo would let the
    read it meant reach the vendor), and hold an output (null is none)."""
    names = StepNames.of(definition)
    problems = []
    for name, value in fixtures.items():
        if name in names.children:
            problems.append((f"fixtures.{name}", "is a playbook step: its child run runs, dry, "
                             "with its own steps"))  # fmt: skip
        elif not names.knows(name):
            problems.append((f"fixtures.{name}", "names no step, for_each item or action of "
                             "this version"))  # fmt: skip
        elif value is None:
            problems.append((f"fixtures.{name}", "is null: a fixture is the output to answer with"))
    size = len(json.dumps(dict(fixtures)))
    if size > MAX_FIXTURES_BYTES:
        problems.append(
            ("fixtures", f"{size} bytes; fixtures may hold at most {MAX_FIXTURES_BYTES}")
        )
    return problems


def dry_outcome(spec: ActionSpec, claimed: Any, connection: ConnectionInfo | None) -> Any:
    """What the attempt of a dry run returns instead of calling the vendor, or None when
    it runs for real (a read without a fixture). Inputs the action would refuse raise
    PermanentError, as the real call would."""
    if spec.internal:  # a child run: it runs, dry itself
        return None
    fixtures = dry_run_fixtures(claimed.run_id)
    key = claimed.key
    fixture = _MISSING
    for name in (str(key), key.step, spec.name) if key.phase == "main" else (spec.name,):
        if name in fixtures:
            fixture = fixtures[name]
            break
    inputs = validated_inputs(spec, claimed.inputs).model_dump(mode="json")
    reads = spec.side_effect == "read" or (spec.reads_with is not None and spec.reads_with(inputs))
    if reads:
        return None if fixture is _MISSING else fixture
    plan = {
        "dry_run": True,
        "plan": plan_text(spec, inputs, connection),
        "action": spec.name,
        "connection": connection.name if connection else None,
    }
    if isinstance(fixture, dict):  # what later steps read of it, as the vendor would answer
        return {**fixture, **plan}
    return plan


def plan_text(
    spec: ActionSpec, inputs: Mapping[str, Any], connection: ConnectionInfo | None
) -> str:
    """`would <what the action does, with its inputs> [via connection <name>]`."""
    if spec.plan:
        what = string.Formatter().vformat(spec.plan, (), _Inputs(inputs))
    else:
        shown = ", ".join(f"{k}={v!r}" for k, v in inputs.items())
        what = f"call {spec.name}" + (f" with {shown}" if shown else "")
    return f"would {what}" + (f" via connection {connection.name}" if connection else "")


class _Inputs(dict[str, Any]):
    """The inputs for a plan's text; one it names but was not given reads as "?"."""

    def __init__(self, inputs: Mapping[str, Any]) -> None:
        super().__init__(inputs)

    def __missing__(self, key: str) -> str:
        return "?"
