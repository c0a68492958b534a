"""Playbooks calling playbooks: a definition may not call itself through others.

A `playbook:` step runs the active version of the playbook it names (SPEC §3), so what
counts is what the other playbooks' active versions call: `calls` maps each published
playbook to the names its steps call.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Mapping
from typing import Any

from playbooks.validation.problems import Problem, StepPaths


def call_problems(
    data: Mapping[str, Any], paths: StepPaths, calls: Mapping[str, Collection[str]]
) -> list[Problem]:
    """Each `playbook:` step through which the definition would end up calling itself."""
    name = data.get("name")
    steps = data.get("steps")
    if not isinstance(name, str) or not isinstance(steps, list):
        return []
    problems = []
    for index, step in enumerate(steps):
        target = step.get("playbook") if isinstance(step, Mapping) else None
        if not isinstance(target, str) or target == name:  # calling itself is refused apart
            continue
        route = _route(target, name, calls)
        if route is not None:
            chain = " → ".join([name, *route])
            problems.append(Problem(paths(index, "playbook"), f"{name} would call itself: {chain}"))
    return problems


def _route(start: str, goal: str, calls: Mapping[str, Collection[str]]) -> list[str] | None:
    """The shortest chain of calls from `start` to `goal` (both included), or None."""
    came_from: dict[str, str | None] = {start: None}
    queue = deque([start])
    while queue:
        current = queue.popleft()
        if current == goal:
            chain = []
            at: str | None = current
            while at is not None:
                chain.append(at)
                at = came_from[at]
            return chain[::-1]
        for callee in calls.get(current, ()):
            if callee not in came_from:
                came_from[callee] = current
                queue.append(callee)
    return None
