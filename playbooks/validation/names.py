"""What a definition's steps let other parts of it name: a playbook test's mocks and
expectations, a dry run's fixtures."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# One item of a for_each step: `patch[1]`.
_ITEM = re.compile(r"([a-z][a-z0-9_]{0,62})\[(\d+)\]")


@dataclass(frozen=True)
class StepNames:
    """The steps (in order), the for_each ones, the approval gates, the `playbook:` ones,
    and the actions called (compensations' included)."""

    steps: list[str]
    fan_outs: frozenset[str]
    gates: frozenset[str]
    children: frozenset[str]
    actions: frozenset[str]

    @classmethod
    def of(cls, definition: Mapping[str, Any]) -> StepNames:
        steps = [s for s in definition.get("steps") or []
                 if isinstance(s, Mapping) and isinstance(s.get("id"), str)]  # fmt: skip
        actions = {s["action"] for s in steps if isinstance(s.get("action"), str)}
        for step in steps:
            undo = step.get("compensate")
            if isinstance(undo, Mapping) and isinstance(undo.get("action"), str):
                actions.add(undo["action"])
        return cls(
            steps=[s["id"] for s in steps],
            fan_outs=frozenset(s["id"] for s in steps if s.get("for_each") is not None),
            gates=frozenset(s["id"] for s in steps if s.get("approval") is not None),
            children=frozenset(s["id"] for s in steps if s.get("playbook")),
            actions=frozenset(actions),
        )

    def is_item(self, key: str) -> bool:
        """Whether `key` names one item of a for_each step (`patch[1]`)."""
        item = _ITEM.fullmatch(key)
        return item is not None and item.group(1) in self.fan_outs

    def knows(self, key: str) -> bool:
        """Whether `key` is a step, an item of a for_each step, or an action called."""
        return key in self.steps or key in self.actions or self.is_item(key)
