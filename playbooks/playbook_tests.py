"""The `tests:` of a playbook definition (SPEC §3): their format and save-time checks.

A test gives a run's inputs (or an alert fixture), mocks what the run's actions return,
says how the approval gates are decided, and expects a path and an outcome. The engine
runs them without a database or a network (core.engine.test_runner). Pure: no Django.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import Field, model_validator

from playbooks.definition import NonEmpty, Slug, StepId, _Model

# The run statuses a test can end in: the terminal ones, and those a run waits in for
# people (core.engine.state's statuses; a test checks these lists agree with them).
TestOutcome = Literal["succeeded", "failed", "cancelled", "compensated", "needs_attention",
                      "waiting_approval"]  # fmt: skip
StepStatus = Literal["pending", "queued", "running", "retry_wait", "waiting",
                     "waiting_approval", "succeeded", "failed", "skipped", "cancelled",
                     "rejected", "needs_attention"]  # fmt: skip
TEST_OUTCOMES: tuple[str, ...] = get_args(TestOutcome)
STEP_STATUSES: tuple[str, ...] = get_args(StepStatus)


class Mock(_Model):
    """What a step (or every step calling an action) returns instead of calling the vendor:
    `output`, or failing with `error` (retried when `retryable`, as a vendor outage is);
    with `fail_times`, it fails that many attempts first, then returns `output`."""

    output: Any = None
    error: NonEmpty | None = None
    retryable: bool = False
    fail_times: int | None = Field(default=None, ge=1, le=100)

    @model_validator(mode="after")
    def _error_for_failures(self) -> Mock:
        if self.fail_times is not None and self.error is None:
            raise ValueError("fail_times needs the error the failing attempts raise")
        if self.error is not None and self.fail_times is None and "output" in self.model_fields_set:
            raise ValueError(
                "a mock that always fails has no output; give fail_times or drop output"
            )
        return self


class Expect(_Model):
    """What the run must have done by the time nothing more can happen without people."""

    outcome: TestOutcome | None = None
    ran: list[StepId] = Field(default_factory=list)
    skipped: list[StepId] = Field(default_factory=list)
    statuses: dict[StepId, StepStatus] = Field(default_factory=dict)
    outputs: dict[StepId, Any] = Field(default_factory=dict)
    # Expressions over the finished run (`steps.enrich.output.malicious`) and their values.
    values: dict[NonEmpty, Any] = Field(default_factory=dict)


class PlaybookTest(_Model):
    """One scenario of the playbook, run on the engine with its actions mocked."""

    name: str = Field(min_length=1, max_length=200)
    inputs: dict[str, Any] = Field(default_factory=dict)
    # An alert as its source normalised it (title, severity, …, raw): the run sees it as
    # `alert`, and without `inputs` a trigger (of `source`, if given) maps it to inputs.
    alert: dict[str, Any] | None = None
    source: Slug | None = None
    mocks: dict[NonEmpty, Mock] = Field(default_factory=dict)
    approvals: dict[StepId, Literal["approve", "reject"]] = Field(default_factory=dict)
    expect: Expect
