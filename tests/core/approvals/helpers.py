"""A destructive test action, a gated playbook and a cast of approvers."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group, User

from accounts import roles
from core.dispatch import InlineDispatcher
from core.models import Run
from core.runs import start_run
from integrations.context import ActionContext
from integrations.registry import action
from tests.core.factories import definition, echo, published_version

IC = "incident-commanders"
CALLS: list[dict[str, Any]] = []


@action("approvaltests.contain", side_effect="destructive")
def contain(ctx: ActionContext, *, host: str) -> dict[str, Any]:
    """Records the call: the tests count what was really done."""
    CALLS.append({"host": host, "run": ctx.run_id, "key": ctx.idempotency_key})
    return {"contained": host}


def approver(username: str, *groups: str) -> User:
    user = User.objects.create_user(username=username, password=f"{username}-pw-123456",
                                    email=f"{username}@example.test")  # fmt: skip
    for name in (roles.APPROVER, *groups):
        user.groups.add(Group.objects.get_or_create(name=name)[0])
    return user


def gated(name: str = "gated", **approval: Any) -> dict[str, Any]:
    gate = {"id": "approve", "needs": ["enrich"],
            "approval": {"approvers": [IC], "message": "Contain {{ inputs.host }}?", **approval}}  # fmt: skip
    isolate = {"id": "isolate", "needs": ["approve"], "action": "approvaltests.contain",
               "with": {"host": "{{ inputs.host }}"}}  # fmt: skip
    return definition(echo("enrich"), gate, isolate, echo("notify", "isolate"), name=name,
                      inputs={"host": {"type": "string", "required": True}})  # fmt: skip


def start(defn: dict[str, Any], inline: InlineDispatcher, *, user: User | None = None,
          host: str = "aid-1") -> Run:  # fmt: skip
    version = published_version(defn)
    actor = f"user:{user.username}" if user else "user:bob"
    run = start_run(playbook=version.playbook, inputs={"host": host}, user=user, actor=actor)
    inline.drain()
    run.refresh_from_db()
    return run
