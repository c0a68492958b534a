"""The playbook definition format (SPEC §3): pydantic models, parsing and content hashing.

Pure: no Django. Every model forbids unknown fields, so a typo such as `needs:` is an
error rather than a silently ignored key. Keys that are Python keywords (`if`, `with`)
are aliased; models serialise by alias, so a dump reads like the YAML it came from.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import zoneinfo
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import yaml
from croniter import croniter
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)

DEFAULT_TIMEOUT_SECONDS = 300.0
MAX_DEFINITION_CHARS = 1_000_000
# YAML aliases can make a small text expand into a huge tree ("billion laughs").
MAX_DEFINITION_NODES = 200_000
# Validation is quadratic in the worst case (reachability); playbooks are far smaller.
MAX_STEPS = 500

SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
STEP_ID_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
INPUT_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"
DURATION_PATTERN = r"^\s*(\d+(\.\d+)?|(\d+(\.\d+)?(ms|s|m|h|d))+)\s*$"

_UNIT_SECONDS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_UNIT_ORDER = list(_UNIT_SECONDS)
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_DURATION_HELP = (
    "a number of seconds or a number with a unit ms, s, m, h, d (e.g. '500ms', '1h30m')"
)


class DurationError(ValueError):
    """A duration that is neither seconds nor text such as '30s' or '1h30m'."""


def parse_duration(value: str | float) -> float:
    """Seconds in a duration: a number of seconds, or text such as '500ms', '2s', '1h30m', '1d'."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise DurationError(f"invalid duration {value!r}: expected {_DURATION_HELP}")
    if not isinstance(value, str):
        if not math.isfinite(value) or value < 0:
            raise DurationError(f"invalid duration {value!r}: must be a non-negative number")
        return float(value)
    text = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    total, pos, last_rank = 0.0, 0, -1
    while pos < len(text):
        match = _DURATION_PART.match(text, pos)
        if match is None:
            raise DurationError(f"invalid duration {value!r}: expected {_DURATION_HELP}")
        rank = _UNIT_ORDER.index(match.group(2))
        if rank <= last_rank:
            raise DurationError(
                f"invalid duration {value!r}: give each unit once, largest first (e.g. '1h30m')"
            )
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos, last_rank = match.end(), rank
    if not text:
        raise DurationError(f"invalid duration {value!r}: expected {_DURATION_HELP}")
    return total


def _check_duration(value: Any) -> str | int | float:
    parse_duration(value)
    # Kept as written ("2m" stays "2m"), so a dump reads like the source.
    checked: str | int | float = value
    return checked


Duration = Annotated[
    str | int | float,
    PlainValidator(_check_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": DURATION_PATTERN},
                {"type": "number", "minimum": 0},
            ],
            "description": f"A duration: {_DURATION_HELP}.",
        }
    ),
]


def _check_positive_duration(value: Any) -> str | int | float:
    if parse_duration(value) <= 0:
        raise DurationError(f"invalid duration {value!r}: must be longer than zero")
    checked: str | int | float = value
    return checked


# A timeout: like Duration, but zero is refused.
PositiveDuration = Annotated[
    str | int | float,
    PlainValidator(_check_positive_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": DURATION_PATTERN},
                {"type": "number", "exclusiveMinimum": 0},
            ],
            "description": f"A duration longer than zero: {_DURATION_HELP}.",
        }
    ),
]


def _check_for_each(value: Any) -> str | list[Any]:
    if isinstance(value, str | list):
        return value
    raise ValueError("for_each must be a template string (e.g. '{{ inputs.hosts }}') or a list")


ForEach = Annotated[
    str | list[Any],
    PlainValidator(_check_for_each),
    WithJsonSchema(
        {
            "anyOf": [{"type": "string"}, {"type": "array"}],
            "description": "The items to fan out over: a template yielding a list, or a list.",
        }
    ),
]

Slug = Annotated[str, StringConstraints(pattern=SLUG_PATTERN)]
StepId = Annotated[str, StringConstraints(pattern=STEP_ID_PATTERN)]
InputName = Annotated[str, StringConstraints(pattern=INPUT_NAME_PATTERN)]
NonEmpty = Annotated[str, StringConstraints(min_length=1)]
InputType = Literal["string", "integer", "number", "boolean", "array", "object"]


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )


def _matches_type(value: Any, type_: InputType) -> bool:
    if type_ == "string":
        return isinstance(value, str)
    if type_ == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if type_ == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if type_ == "boolean":
        return isinstance(value, bool)
    if type_ == "array":
        return isinstance(value, list)
    return isinstance(value, dict)


class InputSpec(_Model):
    """One input a playbook takes when it starts."""

    type: InputType
    required: bool = False
    default: Any = None
    enum: list[Any] | None = Field(default=None, min_length=1)
    description: str | None = None

    @model_validator(mode="after")
    def _default_and_enum_match_type(self) -> InputSpec:
        for value in self.enum or []:
            if not _matches_type(value, self.type):
                raise ValueError(f"enum value {value!r} is not of type {self.type}")
        if "default" in self.model_fields_set and self.default is not None:
            if not _matches_type(self.default, self.type):
                raise ValueError(f"default {self.default!r} is not of type {self.type}")
            if self.enum is not None and self.default not in self.enum:
                raise ValueError(f"default {self.default!r} is not one of the enum values")
        return self


class Trigger(_Model):
    """What starts the playbook: an alert source (with a condition) or a cron schedule."""

    source: Slug | None = None
    schedule: str | None = Field(default=None, description="Cron: minute hour day month weekday.")
    if_: str | None = Field(default=None, alias="if")
    inputs: dict[str, Any] = Field(default_factory=dict)
    missed: Literal["run_once", "skip"] | None = Field(
        default=None,
        description="Schedules only: after downtime, run once for the missed times (default) or skip them.",
    )

    @model_validator(mode="after")
    def _source_or_schedule(self) -> Trigger:
        if (self.source is None) == (self.schedule is None):
            raise ValueError("a trigger needs exactly one of source or schedule")
        if self.schedule is not None:
            fields = self.schedule.split()
            if len(fields) != 5 or not croniter.is_valid(self.schedule):
                raise ValueError(
                    f"schedule {self.schedule!r} is not a cron expression "
                    "(five fields: minute hour day month weekday)"
                )
            if self.if_ is not None:
                raise ValueError("'if' applies to alert triggers (source), not to schedules")
        elif self.missed is not None:
            raise ValueError("'missed' applies to schedules, not to alert triggers")
        return self


class RetryPolicy(_Model):
    """How often an action is tried, with capped exponential backoff between attempts."""

    attempts: int = Field(default=3, ge=1, le=100)
    backoff: Duration = "1s"
    max_backoff: Duration = "1m"
    jitter: bool = True

    @property
    def backoff_seconds(self) -> float:
        return parse_duration(self.backoff)

    @property
    def max_backoff_seconds(self) -> float:
        return parse_duration(self.max_backoff)

    @model_validator(mode="after")
    def _cap_not_below_backoff(self) -> RetryPolicy:
        if self.max_backoff_seconds < self.backoff_seconds:
            raise ValueError("max_backoff must not be shorter than backoff")
        return self


class Escalation(_Model):
    """One rung of an escalation ladder: who is asked next, and for how long."""

    approvers: list[NonEmpty] = Field(min_length=1, description="Group names.")
    timeout: PositiveDuration | None = Field(
        default=None, description="How long this rung waits (default: the gate's timeout)."
    )


class Notify(_Model):
    """Where an approval request is announced, with a way to decide from there."""

    slack: NonEmpty | None = Field(
        default=None, description="A Slack channel (id or #name); the message has buttons."
    )
    teams: bool | None = Field(
        default=None, description="Post a card with a signed link to the connection's channel."
    )
    email: list[NonEmpty] | None = Field(
        default=None,
        description="Addresses to mail a signed link to; [] mails the approvers themselves.",
    )
    connection: NonEmpty | None = None

    @model_validator(mode="after")
    def _one_channel(self) -> Notify:
        given = [k for k in ("slack", "teams", "email") if getattr(self, k) is not None]
        if len(given) != 1:
            found = f" (found {', '.join(given)})" if given else ""
            raise ValueError(f"a notify entry needs exactly one of slack, teams, email{found}")
        return self

    @property
    def channel(self) -> Literal["slack", "teams", "email"]:
        return "slack" if self.slack is not None else "teams" if self.teams is not None else "email"


class Approval(_Model):
    """A gate that waits for people from the given groups to approve or reject."""

    approvers: list[NonEmpty] = Field(min_length=1, description="Group names.")
    min_approvals: int = Field(default=1, ge=1, le=50)
    timeout: PositiveDuration | None = None
    on_timeout: Literal["reject", "approve", "escalate"] = "reject"
    escalate_to: list[Escalation] = Field(
        default_factory=list,
        max_length=10,
        description="With on_timeout: escalate, the groups asked next, rung by rung; when "
        "the last rung times out too, the gate is rejected.",
    )
    remind_every: PositiveDuration | None = Field(
        default=None, description="Announce the request again at this interval while it waits."
    )
    four_eyes: bool | None = Field(
        default=None,
        description="Whoever started the run or published the version may not decide "
        "(default: on when the gate guards a destructive step).",
    )
    message: str | None = None
    notify: list[Notify] = Field(default_factory=list, max_length=10)

    @property
    def timeout_seconds(self) -> float | None:
        return None if self.timeout is None else parse_duration(self.timeout)

    @model_validator(mode="after")
    def _ladder_fits_on_timeout(self) -> Approval:
        if self.on_timeout == "escalate":
            if self.timeout is None:
                raise ValueError("on_timeout: escalate needs a timeout")
            if not self.escalate_to:
                raise ValueError("on_timeout: escalate needs escalate_to, the groups asked next")
        elif self.escalate_to:
            raise ValueError("escalate_to applies only with on_timeout: escalate")
        if self.on_timeout == "approve" and self.timeout is None:
            raise ValueError("on_timeout: approve needs a timeout")
        return self


class Compensation(_Model):
    """The action that undoes a step when the playbook fails with on_failure: compensate."""

    action: NonEmpty
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")


class Step(_Model):
    """A node of the graph: an action, an approval gate or a sub-playbook."""

    id: StepId
    title: str | None = None
    needs: list[StepId] = Field(default_factory=list)
    if_: str | None = Field(default=None, alias="if")
    action: NonEmpty | None = None
    approval: Approval | None = None
    playbook: Slug | None = None
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    connection: NonEmpty | None = None
    retry: RetryPolicy | None = None
    timeout: PositiveDuration | None = None
    for_each: ForEach | None = None
    max_parallel: int | None = Field(default=None, ge=1)
    compensate: Compensation | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Step:
        given = [k for k in ("action", "approval", "playbook") if getattr(self, k) is not None]
        if len(given) != 1:
            found = f" (found {', '.join(given)})" if given else ""
            raise ValueError(f"a step needs exactly one of action, approval, playbook{found}")
        return self

    @property
    def kind(self) -> Literal["action", "approval", "playbook"]:
        if self.approval is not None:
            return "approval"
        return "playbook" if self.playbook is not None else "action"

    @property
    def timeout_seconds(self) -> float:
        """Per-attempt timeout in seconds (default 300)."""
        return DEFAULT_TIMEOUT_SECONDS if self.timeout is None else parse_duration(self.timeout)

    @property
    def retry_policy(self) -> RetryPolicy:
        return self.retry if self.retry is not None else RetryPolicy()


def _check_timezone(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"a time zone is a name such as 'Europe/Paris' (got {value!r})")
    if value == "UTC":
        return value
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r} (use an IANA name such as 'Europe/Paris')"
        ) from None
    return value


class PlaybookDefinition(_Model):
    """A playbook version's definition (SPEC §3)."""

    name: Slug
    title: str = ""
    description: str = ""
    inputs: dict[InputName, InputSpec] = Field(default_factory=dict)
    triggers: list[Trigger] = Field(default_factory=list)
    on_failure: Literal["stop", "continue", "compensate"] = "stop"
    autonomous: bool = Field(
        default=False,
        description="Allow destructive steps without an approval gate (audited at publish).",
    )
    timezone: Annotated[
        str, PlainValidator(_check_timezone), WithJsonSchema({"type": "string"})
    ] = "UTC"
    steps: list[Step] = Field(min_length=1, max_length=MAX_STEPS)
    # Scenarios run on the engine with the actions mocked (playbooks.playbook_tests).
    tests: list[PlaybookTest] = Field(default_factory=list, max_length=50)

    def step(self, step_id: str) -> Step:
        return next(s for s in self.steps if s.id == step_id)


class DefinitionSyntaxError(ValueError):
    """The text is not YAML/JSON, or not a mapping; `line`/`column` are 1-based when known."""

    def __init__(self, message: str, *, line: int | None = None, column: int | None = None):
        self.message, self.line, self.column = message, line, column
        where = f"line {line}, column {column}: " if line is not None else ""
        super().__init__(f"{where}{message}")


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans (so `NO` stays a string) and dates kept as text."""


_Loader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


MAX_DEFINITION_DEPTH = 64


def check_json_tree(data: Any) -> None:
    """Refuse what JSON (and PostgreSQL's jsonb) cannot store: YAML-only types such as
    binary and timestamps, NaN and infinities, NUL characters, absurd depth or size.

    Iterative, so a deeply nested document cannot exhaust the interpreter's stack.
    """
    budget = MAX_DEFINITION_NODES
    stack: list[tuple[Any, str, int]] = [(data, "", 0)]
    while stack:
        value, path, depth = stack.pop()
        budget -= 1
        where = path or "(top level)"
        if budget < 0:
            raise DefinitionSyntaxError(
                "the definition is too large (after expanding YAML aliases)"
            )
        if depth > MAX_DEFINITION_DEPTH:
            raise DefinitionSyntaxError(
                f"{where}: nested more than {MAX_DEFINITION_DEPTH} levels deep"
            )
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise DefinitionSyntaxError(f"{where}: key {key!r} is not a string")
                stack.append((item, f"{path}.{key}" if path else key, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value))
        elif isinstance(value, str):
            if "\x00" in value:
                raise DefinitionSyntaxError(f"{where}: contains a NUL character")
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise DefinitionSyntaxError(f"{where}: {value} is not a JSON number")
        elif value is not None and not isinstance(value, bool | int):
            raise DefinitionSyntaxError(
                f"{where}: a {type(value).__name__} value is not JSON (write it as a string)"
            )


def _load_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DefinitionSyntaxError(exc.msg, line=exc.lineno, column=exc.colno) from None


def _load_yaml(text: str) -> Any:
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = ": ".join(str(part) for part in (exc.context, exc.problem) if part)
        if mark is None:
            raise DefinitionSyntaxError(message or "invalid YAML") from None
        raise DefinitionSyntaxError(
            message or "invalid YAML", line=mark.line + 1, column=mark.column + 1
        ) from None
    except yaml.YAMLError as exc:
        raise DefinitionSyntaxError(f"invalid YAML: {exc}") from None


def load_definition_text(text: str) -> dict[str, Any]:
    """The mapping in a YAML or JSON text; raises DefinitionSyntaxError with line and column."""
    if len(text) > MAX_DEFINITION_CHARS:
        raise DefinitionSyntaxError(
            f"the definition is longer than {MAX_DEFINITION_CHARS} characters"
        )
    try:
        data = _load_any(text)
    except RecursionError:
        raise DefinitionSyntaxError(
            f"the definition is nested more than {MAX_DEFINITION_DEPTH} levels deep"
        ) from None
    if not isinstance(data, dict):
        found = {list: "a list", str: "a string", bool: "a boolean", int: "a number"}.get(
            type(data), "nothing" if data is None else "a number"
        )
        raise DefinitionSyntaxError(
            f"a playbook definition must be a mapping (name:, steps:, …), not {found}"
        )
    check_json_tree(data)
    return data


def _load_any(text: str) -> Any:
    if text.lstrip().startswith("{"):
        try:
            data = _load_json(text)
        except DefinitionSyntaxError as json_error:
            try:  # a YAML flow mapping also starts with "{"
                data = _load_yaml(text)
            except DefinitionSyntaxError:
                raise json_error from None
    else:
        data = _load_yaml(text)
    return data


def parse_definition(data: Mapping[str, Any] | PlaybookDefinition) -> PlaybookDefinition:
    """The typed definition; raises pydantic.ValidationError."""
    if isinstance(data, PlaybookDefinition):
        return data
    return PlaybookDefinition.model_validate(data)


def canonical_json(definition: Mapping[str, Any] | PlaybookDefinition) -> str:
    """The definition as canonical JSON: parsed, defaults filled in, null fields dropped,
    keys sorted, no whitespace. Equal definitions give equal text whatever their key order
    or whether they were written as YAML or JSON."""
    dumped = parse_definition(definition).model_dump(mode="json", by_alias=True, exclude_none=True)
    return json.dumps(dumped, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(definition: Mapping[str, Any] | PlaybookDefinition) -> str:
    """SHA-256 (hex) of the definition's canonical JSON."""
    return hashlib.sha256(canonical_json(definition).encode()).hexdigest()


# The tests' models build on this module's types, so they are imported once those exist.
from playbooks.playbook_tests import PlaybookTest  # noqa: E402

PlaybookDefinition.model_rebuild()
