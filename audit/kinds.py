"""Every kind of audit event Bulwark writes, in one place: its stream, what it says, and
the payload fields it may carry.

Events of a run's stream (`run:<id>`) carry the run id; those about a step carry its id
(`step_id`) and `unit` (the step, item and phase, e.g. "isolate[2]" or
"isolate:compensate"); `item` is set for one item of a for_each step. Every event has a
time, an actor ("user:<name>", "worker:<host>:<pid>", "source:<slug>", "system", ...) and
its place in its stream's hash chain. A test holds this list to the code
(tests/audit/test_kinds.py) and drives a whole scenario against it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class Kind:
    stream: str  # "run", "playbook" or "system": the stream it is written to
    about: str
    fields: tuple[str, ...] = ()  # payload fields it may carry
    step: bool = False  # names a step (step_id and unit)


def _k(stream: str, about: str, fields: str = "", *, step: bool = False) -> Kind:
    return Kind(stream, about, tuple(fields.split()), step)


_ATTEMPT = "action attempt duration_ms idempotency_key started_at"
_CONNECTION = ("connection integration base_url allow_private_network options "
               "rate_limit_per_minute circuit_failures circuit_cooldown_seconds")  # fmt: skip
_DECIDED = "request request_kind approvals bound_hash budget timed_out"

KINDS: Final[dict[str, Kind]] = {
    # Playbooks (stream playbook:<name>)
    "playbook.created": _k("playbook", "a playbook was created", "name title"),
    "playbook.version_created": _k("playbook", "a version was saved (draft)", "version content_hash"),
    "playbook.published": _k("playbook", "a version was published; runs start on it",
                             "version content_hash previous_version republished"),
    "playbook.autonomous_published": _k("playbook", "a version whose destructive steps need "
                                        "no approval was published", "version content_hash"),
    "playbook.replay_requested": _k("playbook", "a person asked to re-run the runs that failed "
                                    "in a time window", "replay since until runs rate_per_second"),
    # Runs (stream run:<id>)
    "run.created": _k("run", "a run was started: by whom, on which version, with which inputs",
                      "playbook version content_hash inputs rerun_of replay dry_run parent_run "
                      "parent_step"),
    "run.resumed": _k("run", "a person resumed the failed run from its failed steps",
                      "steps kept"),
    "run.rerun": _k("run", "a person (or a replay) re-ran the finished run as a new run",
                    "run version replay"),
    "run.rerun_refused": _k("run", "a replay could not re-run the run, and why",
                            "replay error"),
    "run.child_started": _k("run", "a playbook step started its child run",
                            "unit child playbook version", step=True),
    "run.started": _k("run", "the run's first steps were queued"),
    "run.running": _k("run", "the run is moving again (after a retry, or approval)"),
    "run.waiting_approval": _k("run", "nothing can move until people decide"),
    "run.succeeded": _k("run", "every step succeeded or was skipped"),
    "run.failed": _k("run", "a step failed for good", "compensated"),
    "run.cancelling": _k("run", "cancel asked for; running steps finish first", "reason"),
    "run.cancelled": _k("run", "the run was cancelled", "reason"),
    "run.compensating": _k("run", "a step failed: finished steps are being undone"),
    "run.compensated": _k("run", "every finished step was undone", "compensated"),
    "run.needs_attention": _k("run", "a person must look: an outcome is unknown"),
    # Steps of a run
    "step.queued": _k("run", "ready and sent to a worker", "unit item", step=True),
    "step.started": _k("run", "a for_each step began its items", "unit items", step=True),
    "step.succeeded": _k("run", "the step (or item) succeeded", "unit item", step=True),
    "step.failed": _k("run", "the step (or item) failed for good", "unit item error", step=True),
    "step.skipped": _k("run", "the step will not run, and why", "unit item reason", step=True),
    "step.rejected": _k("run", "items of the step were refused by people", "unit rejected_items",
                        step=True),
    "step.retry_scheduled": _k("run", "an attempt failed; the next is due after a delay",
                               "unit item attempt max_attempts delay_seconds error", step=True),
    "step.retrying": _k("run", "the delayed retry is due; the step is queued again",
                        "unit item attempt", step=True),
    "step.retry_requested": _k("run", "a person asked for a failed step to run again",
                               "unit also_retried", step=True),
    "step.waiting": _k("run", "the action is waiting on the vendor, holding no worker",
                       "unit item attempt poll_after_seconds note", step=True),
    "step.polling": _k("run", "the wait is over; the action checks again", "unit item attempt",
                       step=True),
    "step.needs_attention": _k("run", "an attempt's outcome is unknown; it is not repeated",
                               "unit item error", step=True),
    "compensation.succeeded": _k("run", "a finished step was undone", "unit item", step=True),
    "compensation.failed": _k("run", "undoing a finished step failed", "unit item error",
                              step=True),
    # Attempts: each try of an action, by the worker that made it
    "attempt.succeeded": _k("run", "an attempt succeeded", f"unit item {_ATTEMPT}", step=True),
    "attempt.failed": _k("run", "an attempt failed", f"unit item {_ATTEMPT} error", step=True),
    "attempt.waiting": _k("run", "an attempt asked to be polled later",
                          f"unit item {_ATTEMPT} poll_after_seconds progress", step=True),
    "attempt.held": _k("run", "an attempt was held before acting (a budget or a changed "
                       "approval)", f"unit item {_ATTEMPT} held_by_budget", step=True),
    "attempt.lost": _k("run", "the worker running an attempt was lost",
                       "unit item attempt worker started_at idempotency_key error requeued",
                       step=True),
    "attempt.fenced_write_rejected": _k("run", "a worker that had lost its lease tried to "
                                        "record a result; refused", "unit attempt would_have_recorded",
                                        step=True),
    # Approvals: who was asked, who decided what, when and why
    "approval.requested": _k("run", "people were asked to approve",
                             "unit item request request_kind gate approvers min_approvals "
                             "four_eyes deadline guarded bound_hash previous_hash reason message",
                             step=True),
    "approval.decision": _k("run", "one person approved or rejected, with a comment",
                            "unit item request voter decision comment channel bound_hash "
                            "approvals needed", step=True),
    "approval.decision_refused": _k("run", "a decision was refused, and why",
                                    "unit item request approval channel reason", step=True),
    "approval.approved": _k("run", "the request was approved", f"unit item {_DECIDED}", step=True),
    "approval.rejected": _k("run", "the request was rejected",
                            f"unit item {_DECIDED} rejected_by comment", step=True),
    "approval.timed_out": _k("run", "nobody decided in time", "unit item request rung approvers "
                             "approvals", step=True),
    "approval.escalated": _k("run", "the request went to the next approvers",
                             "unit item request rung approvers deadline", step=True),
    "approval.reminder": _k("run", "the approvers were reminded", "unit item request approvers "
                            "reminder", step=True),
    "approval.withdrawn": _k("run", "the request no longer needs a decision", "unit item reason",
                             step=True),
    "approval.notified": _k("run", "the request was announced on a channel",
                            "unit item request approval channel occasion targets", step=True),
    "approval.notify_failed": _k("run", "announcing the request failed",
                                 "unit item request approval channel occasion targets error",
                                 step=True),
    "approval.reauthorization_needed": _k("run", "what was approved changed before acting",
                                          "unit item attempt message no_longer_valid", step=True),
    "budget.held": _k("run", "an action budget is spent: the action waits for approval",
                      "unit item action attempt limit used window_seconds", step=True),
    # Evidence
    "artifact.collected": _k("run", "evidence was stored, by SHA-256",
                             "artifact sha256 size filename source item metadata", step=True),
    "artifact.downloaded": _k("run", "someone downloaded evidence", "artifact sha256 size",
                              step=True),
    "audit.bundle_exported": _k("run", "the run's evidence bundle was exported"),
    "audit.legal_hold_placed": _k("run", "the run's trail was put on legal hold: retention "
                                  "keeps it until released", "reason"),
    "audit.legal_hold_released": _k("run", "the run's legal hold was released",
                                    "reason placed_by placed_reason"),
    # The system stream: configuration, access to the audit trail, the scheduler
    "connection.created": _k("system", "a vendor connection was added", f"{_CONNECTION} auth_fields_set"),
    "connection.updated": _k("system", "a connection was changed (secrets by name only)",
                             f"{_CONNECTION} allow_private_network_before "
                             "rate_limit_per_minute_before auth_fields_added auth_fields_changed "
                             "auth_fields_removed"),
    "connection.deleted": _k("system", "a connection was removed", _CONNECTION),
    "connection.tested": _k("system", "a connection was tested", f"{_CONNECTION} ok message"),
    "connection.keys_rotated": _k("system", "stored credentials were re-encrypted with a new key",
                                  "rotated unreadable"),
    "alert_source.created": _k("system", "an alert source was added", "source format auth"),
    "alert_source.secret_rotated": _k("system", "an alert source's secret was rotated",
                                      "source format auth"),
    "schedule.skipped": _k("system", "a missed scheduled run was skipped", "trigger due_at next_due_at"),
    "schedule.failed": _k("system", "a scheduled run could not start", "trigger due_at error"),
    "budget.created": _k("system", "an action budget was set", "id values"),
    "budget.changed": _k("system", "an action budget was changed", "id values"),
    "budget.deleted": _k("system", "an action budget was removed", "id values"),
    "chat_identity.created": _k("system", "a chat account was linked to a user", "id values"),
    "chat_identity.changed": _k("system", "a chat account link was changed", "id values"),
    "chat_identity.deleted": _k("system", "a chat account link was removed", "id values"),
    "audit.exported": _k("system", "someone exported audit events", "format filters"),
    "audit.pruned": _k("system", "retention pruned old events, leaving signed tombstones",
                       "before reason streams events held kept_open refused refused_count"),
}  # fmt: skip
