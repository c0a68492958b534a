"""Jira actions: create an issue (once per step, however often it is retried), comment."""

from __future__ import annotations

import re
from typing import Any

from integrations.context import ActionContext
from integrations.jira.client import Jira, adf
from integrations.probes import prober
from integrations.registry import action


def run_label(ctx: ActionContext) -> str:
    """A label naming this step's attempt group: searched before creating, so a retry after
    a lost answer finds the issue instead of opening a second one."""
    key = re.sub(r"[^A-Za-z0-9_-]+", "-", ctx.idempotency_key).strip("-")
    return f"bulwark-{key}"[:255]


@action("jira.create_issue", plan='open a {project} issue: "{summary}"', side_effect="write", idempotent=True, connection="jira",
        connection_required=True,
        output="`key` (e.g. SEC-24), `id`, `self`, the run `label`, and whether it was `created` now")  # fmt: skip
def create_issue(ctx: ActionContext, *, project: str, summary: str, description: str = "",
                 issue_type: str = "Task", priority: str | None = None,
                 labels: list[str] | None = None) -> dict[str, Any]:  # fmt: skip
    """Open an issue in `project` (its key, e.g. SEC). It carries a label unique to this
    run's step, looked up first, so the issue is created once."""
    label = run_label(ctx)
    with Jira(ctx) as jira:
        found = jira.search_label(label)
        if found:
            issue = found[0]
            return {"id": issue.get("id"), "key": issue.get("key"), "self": issue.get("self"),
                    "label": label, "created": False}  # fmt: skip
        fields: dict[str, Any] = {
            "project": {"key": project},
            "issuetype": {"name": issue_type},
            "summary": summary[:255],
            "labels": ["bulwark", label, *(labels or [])],
        }
        if description:
            fields["description"] = adf(description)
        if priority:
            fields["priority"] = {"name": priority}
        issue = jira.create_issue(fields)
    return {"id": issue.get("id"), "key": issue.get("key"), "self": issue.get("self"),
            "label": label, "created": True}  # fmt: skip


@action(
    "jira.add_comment",
    plan='comment on {issue}: "{text}"',
    side_effect="write",
    connection="jira",
    connection_required=True,
    output="the comment's `id`, its `issue` and when it was `created`",
)
def add_comment(ctx: ActionContext, *, issue: str, text: str) -> dict[str, Any]:
    """Add a comment to an issue (by key such as SEC-24, or id)."""
    with Jira(ctx) as jira:
        comment = jira.add_comment(issue, text)
    return {"id": comment.get("id"), "issue": issue, "created": comment.get("created")}


@prober("jira")
def check_connection(ctx: ActionContext) -> str:
    """/myself says whose e-mail and API token these are."""
    with Jira(ctx) as jira:
        me = jira.call("GET", "rest/api/3/myself")
    return f"authenticated as {me.get('emailAddress') or me.get('displayName')}"
