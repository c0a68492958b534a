"""Running a playbook's `tests:` on the engine itself: no database, no network, no clock.

Each test starts a run in memory and plays the parts the shell and the vendors play: a
queued unit is claimed and its attempt answered from the test's mocks (by step id, else
by action; `local` actions such as util.echo run as they would); approval gates are
decided as the test says; and when nothing else can move, the clock jumps to the next
retry, poll or approval deadline. It stops when the run ends or waits for people with
nothing due, then checks the expectations. A test fails with every expectation it
breaks, each named and saying what happened instead.
"""

from __future__ import annotations

import json
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from core.engine.advance import EngineError, advance_all, claim, new_run_state
from core.engine.builder import Builder
from core.engine.events import Event, RetryDue, Start, UnitFailed, UnitSucceeded, Vote
from core.engine.plan import RunPlan, build_plan
from core.engine.state import (
    COMPENSATE,
    TERMINAL_RUN,
    TIMED_UNIT,
    ErrorInfo,
    RunState,
    UnitKey,
    UnitStatus,
    resolved,
)
from core.run_inputs import resolve_inputs
from playbooks.expressions import ExpressionError, evaluate_condition, render_value
from playbooks.playbook_tests import Mock, PlaybookTest

# Where the simulated clock starts (any fixed time: a test's result never depends on it).
START_TIME = 1_767_225_600.0  # 2026-01-01T00:00:00Z
# Bounds one test: a playbook whose run never settles fails its test instead of hanging.
MAX_DECISIONS = 10_000
_SHOWN_CHARS = 200

LocalAction = Callable[[Any], Any]
# Why an action refuses the inputs rendered for it (as the real call would), or None.
InputCheck = Callable[[str, Any], str | None]


@dataclass(frozen=True)
class TestResult:
    """One test's verdict, with the run it played out."""

    __test__ = False  # not a pytest class, whatever its name

    name: str
    failures: tuple[str, ...]
    outcome: str  # the run's status when it stopped
    steps: Mapping[str, str]  # each step's status then

    @property
    def passed(self) -> bool:
        return not self.failures

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "failures": list(self.failures),
                "outcome": self.outcome, "steps": dict(self.steps)}  # fmt: skip


def run_playbook_tests(
    definition: Mapping[str, Any],
    *,
    destructive: frozenset[str] = frozenset(),
    unsafe_to_repeat: frozenset[str] = frozenset(),
    local: Mapping[str, LocalAction] | None = None,
    check_inputs: InputCheck | None = None,
) -> list[TestResult]:
    """Run every test of a validated definition; [] when it has none."""
    tests = []
    for index, raw in enumerate(definition.get("tests") or []):
        try:
            tests.append(PlaybookTest.model_validate(raw))
        except ValidationError as exc:  # stored before tests: had a format
            first = exc.errors()[0]
            where = ".".join([f"tests[{index}]", *(str(part) for part in first["loc"])])
            return [TestResult("(the tests)", (f"the tests do not parse: {where}: {first['msg']}",),
                               "not started", {})]  # fmt: skip
    if not tests:
        return []
    plan = build_plan(definition, destructive=destructive, unsafe_to_repeat=unsafe_to_repeat)
    roles = _Roles(local or {}, check_inputs or (lambda action, inputs: None))
    return [_run_one(plan, definition, test, roles) for test in tests]


@dataclass(frozen=True)
class _Roles:
    """What the shell lends the player: actions to run for real, and the inputs check."""

    local: Mapping[str, LocalAction]
    check_inputs: InputCheck


def _run_one(
    plan: RunPlan, definition: Mapping[str, Any], test: PlaybookTest, roles: _Roles
) -> TestResult:
    context = {"alert": test.alert} if test.alert is not None else {}
    given, refused = _given_inputs(definition, test, context)
    if refused is not None:
        return TestResult(test.name, (refused,), "not started", {})
    inputs, problems = resolve_inputs(definition.get("inputs") or {}, given)
    if problems:
        refusals = tuple(f"{path}: {message}" if path else message for path, message in problems)
        return TestResult(test.name, refusals, "not started", {})
    state = new_run_state(plan, run_id=1, inputs=inputs, context=context)
    player = _Player(plan, test, roles)
    try:
        state = player.play(state)
    except EngineError as exc:  # a playbook the engine cannot run as the test drives it
        player.failures.append(f"the engine refused the test's run: {exc}")
    failures = player.failures or _check(plan, state, test)
    steps = {s.id: state.step_unit(s.id).status.value for s in plan.steps}
    return TestResult(test.name, tuple(failures), state.status.value, steps)


def _given_inputs(
    definition: Mapping[str, Any], test: PlaybookTest, context: dict[str, Any]
) -> tuple[dict[str, Any], str | None]:
    """The run's inputs: the test's own, or with only an alert fixture, those of the
    first trigger that starts a run for that alert (as alert intake would)."""
    if test.inputs or test.alert is None:
        return dict(test.inputs), None
    triggers = [t for t in definition.get("triggers") or [] if t.get("source")
                and (test.source is None or t["source"] == test.source)]  # fmt: skip
    for index, trigger in enumerate(triggers):
        where = f"triggers[{index}]"
        try:
            if trigger.get("if") and not evaluate_condition(trigger["if"], context,
                                                            path=f"{where}.if"):  # fmt: skip
                continue
            return dict(render_value(trigger.get("inputs") or {}, context,
                                     path=f"{where}.inputs")), None  # fmt: skip
        except ExpressionError as exc:
            return {}, f"the trigger cannot start a run for the test's alert: {exc}"
    source = f" of source {test.source}" if test.source else ""
    return {}, f"no trigger{source} of this playbook starts a run for the test's alert"


class _Player:
    """Plays the shell's and the vendors' parts for one test's run."""

    def __init__(self, plan: RunPlan, test: PlaybookTest, roles: _Roles):
        self.plan, self.test, self.roles = plan, test, roles
        self.now = START_TIME
        self.failures: list[str] = []
        self._calls: Counter[tuple[UnitKey, str]] = Counter()
        self._queue: deque[UnitKey] = deque()

    def play(self, state: RunState) -> RunState:
        state = self._apply(state, [Start()])
        for _ in range(MAX_DECISIONS):
            if state.status in TERMINAL_RUN or self.failures:
                return state
            step = self._next(state)
            if step is None:
                return state  # waiting for people, with nothing due
            state = self._apply(*step)
        self.failures.append(f"the run did not settle within {MAX_DECISIONS} engine decisions")
        return state

    def _apply(self, state: RunState, events: list[Event]) -> RunState:
        decision = advance_all(self.plan, state, events, self.now)
        self._queue.extend(command.key for command in decision.commands)
        return decision.state

    def _next(self, state: RunState) -> tuple[RunState, list[Event]] | None:
        """What happens next, and to which state: an attempt (on the state its claim made),
        the test's votes, or the next thing due (the clock moves on to it)."""
        while self._queue:
            key = self._queue.popleft()
            if state.units[key].status == UnitStatus.QUEUED:
                claimed = claim(state, key)
                return claimed, [self._attempt(claimed, key)]
        votes = self._votes(state)
        if votes:
            return state, votes
        # A request with no deadline only reminds people: it waits for them, as the run
        # stops here to (its reminders would never end).
        due = [u for u in state.units.values()
               if u.status in TIMED_UNIT and u.next_attempt_at is not None
               and not (u.status == UnitStatus.WAITING_APPROVAL and _no_deadline(u))]  # fmt: skip
        if not due:
            return None
        first = min(due, key=lambda u: (u.next_attempt_at or 0.0, u.key))
        self.now = max(self.now, first.next_attempt_at or self.now)
        return state, [RetryDue(first.key)]

    def _attempt(self, state: RunState, key: UnitKey) -> Event:
        """The answer a vendor (as mocked) gives the attempt the claim just started."""
        step = self.plan.step(key.step)
        compensating = key.phase == COMPENSATE
        undo = step.compensate.action if step.compensate else None
        action = (undo if compensating else step.action) or ""
        unit = state.units[key]
        mocks = self.test.mocks
        if compensating:  # undoing answers by the action's mock only
            mock = mocks.get(action)
        else:  # the item's own mock, else the step's, else the action's
            mock = mocks.get(str(key)) if key.item >= 0 else None
            mock = mock or mocks.get(step.id) or mocks.get(action)
        inputs = resolved(unit.inputs)
        refused = self.roles.check_inputs(action, inputs) if action else None
        if refused is not None:  # the action would refuse them before any call
            return UnitFailed(key, ErrorInfo(refused, kind="validation"))
        if mock is not None:
            return self._mocked(key, action, mock)
        if action in self.roles.local:
            return UnitSucceeded(key, self.roles.local[action](inputs))
        if compensating:  # an undo nobody mocked is taken to work
            return UnitSucceeded(key, None)
        if step.kind == "playbook":  # its child is not run here: the step is mocked whole
            self.failures.append(f"step {step.id} runs a playbook, which this test does not "
                                 f"mock: add mocks.{step.id}")  # fmt: skip
        else:
            self.failures.append(
                f"step {step.id} calls {action}, which this test does not mock: "
                f"add mocks.{step.id} or mocks.{action}"
            )
        return UnitFailed(key, ErrorInfo(f"no mock for {action}", kind="test"))

    def _mocked(self, key: UnitKey, action: str, mock: Mock) -> Event:
        self._calls[(key, action)] += 1
        failing = mock.error is not None and (
            mock.fail_times is None or self._calls[(key, action)] <= mock.fail_times
        )
        if failing:
            error = ErrorInfo(str(mock.error), kind="mock", retryable=mock.retryable)
            return UnitFailed(key, error)
        return UnitSucceeded(key, mock.output)

    def _votes(self, state: RunState) -> list[Event]:
        """The test's decision on the first request it has one for."""
        for key, unit in state.units.items():
            if unit.status != UnitStatus.WAITING_APPROVAL:
                continue
            request = unit.progress if isinstance(unit.progress, dict) else {}
            # A step asking again (its inputs changed) asks under its gate's policy: the
            # test's decision for the gate answers it too.
            decision = self.test.approvals.get(key.step) or self.test.approvals.get(
                str(request.get("gate") or "")
            )
            if decision is None:
                continue
            number = int(request.get("request", unit.requests_made))
            if decision == "reject":
                return [Vote(key, number, "test:approver-1", approve=False, channel="test")]
            given = list(request.get("approvals") or [])
            needed = max(1, int(request.get("min_approvals", 1)) - len(given))
            voters = [f"test:approver-{n}" for n in range(1, needed + len(given) + 1)]
            fresh = [v for v in voters if v not in given][:needed]
            return [Vote(key, number, voter, approve=True, channel="test") for voter in fresh]
        return []


def _check(plan: RunPlan, state: RunState, test: PlaybookTest) -> list[str]:
    """Each expectation the run breaks, saying what happened instead."""
    expect = test.expect
    failures = []
    if expect.outcome is not None and state.status.value != expect.outcome:
        failures.append(f"expected the run to end {expect.outcome}, but it is "
                        f"{state.status.value}{_why(plan, state)}")  # fmt: skip
    for step_id in expect.ran:
        if not _ran(plan, state, step_id):
            unit = state.step_unit(step_id)
            failures.append(f"expected step {step_id} to run, but it is {_status(unit)}")
    for step_id in expect.skipped:
        unit = state.step_unit(step_id)
        if unit.status != UnitStatus.SKIPPED:
            failures.append(f"expected step {step_id} to be skipped, but it is {_status(unit)}")
    for step_id, status in expect.statuses.items():
        unit = state.step_unit(step_id)
        if unit.status.value != status:
            failures.append(f"expected step {step_id} to be {status}, but it is {_status(unit)}")
    for step_id, output in expect.outputs.items():
        actual = resolved(state.step_unit(step_id).output)
        if not _same(actual, output):
            failures.append(f"expected the output of step {step_id} to be {_shown(output)}, "
                            f"but it is {_shown(actual)}")  # fmt: skip
    context = _final_context(plan, state)
    for expression, value in expect.values.items():
        try:
            actual = render_value("{{ " + expression + " }}", context, path="expect.values")
        except ExpressionError as exc:
            failures.append(f"expected {expression} to be {_shown(value)}, but it fails: {exc}")
            continue
        if not _same(actual, value):
            failures.append(
                f"expected {expression} to be {_shown(value)}, but it is {_shown(actual)}"
            )
    return failures


def _ran(plan: RunPlan, state: RunState, step_id: str) -> bool:
    """Whether the step did its work: an attempt was made (for a for_each step, by one of
    its items), or for a gate, people were asked."""
    unit = state.step_unit(step_id)
    if plan.step(step_id).kind == "approval":
        return unit.requests_made > 0
    return unit.attempts > 0 or any(item.attempts > 0 for item in state.items_of(step_id))


def _no_deadline(unit: Any) -> bool:
    return isinstance(unit.progress, dict) and unit.progress.get("deadline") is None


def _same(actual: Any, expected: Any) -> bool:
    """Equal as JSON values are: true is not 1, and 1.0 is not 1."""
    return json.dumps(actual, sort_keys=True, default=str) == json.dumps(
        expected, sort_keys=True, default=str
    )


def _final_context(plan: RunPlan, state: RunState) -> dict[str, Any]:
    return Builder(plan, state, START_TIME).template_context() | {"run": {
        "id": state.run_id, "playbook": plan.name, "status": state.status.value}}  # fmt: skip


def _status(unit: Any) -> str:
    reason = f" ({unit.reason})" if unit.reason else ""
    error = unit.error.get("message") if isinstance(unit.error, dict) else None
    return f"{unit.status.value}{reason}" + (f": {error}" if error and not reason else "")


def _why(plan: RunPlan, state: RunState) -> str:
    """The first failed or stuck step, as a hint of why the run ended as it did."""
    for step in plan.steps:
        unit = state.step_unit(step.id)
        if unit.status in {
            UnitStatus.FAILED,
            UnitStatus.NEEDS_ATTENTION,
            UnitStatus.WAITING_APPROVAL,
        }:
            return f" (step {step.id} is {_status(unit)})"
    return ""


def _shown(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"
