"""What the validator reports, what it checks against, and how it names places.

Path format: dotted field names from the top of the definition, with `[n]` for list
positions. A step is named by its id when it has a unique one (`steps.isolate.with.
device_id`), otherwise by its position (`steps[2].id`). Triggers are always by position
(`triggers[0].if`); inputs by name (`inputs.host_id.default`). Problems about the whole
definition (syntax, cycles) have path `""` or `steps`.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]+$")

# (field, message) pairs for literal inputs an action would refuse.
InputValidator = Callable[[dict[str, Any]], list[tuple[str, str]]]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a definition: where (`path`) and what (`message`)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


@dataclass(frozen=True)
class ActionInfo:
    """What the validator knows about one action of the catalogue."""

    name: str
    side_effect: str
    input_schema: dict[str, Any]
    validate: InputValidator | None = None
    connection_integration: str | None = None

    @property
    def destructive(self) -> bool:
        return self.side_effect == "destructive"


def join(path: str, *parts: str | int) -> str:
    """`path` extended by field names and list positions."""
    for part in parts:
        if isinstance(part, int):
            path = f"{path}[{part}]"
        elif _PLAIN_KEY.match(part):
            path = f"{path}.{part}" if path else part
        else:
            path = f'{path}["{part}"]'
    return path


def suggest(name: str, candidates: Iterable[str]) -> str:
    """ "; did you mean 'x'?" for a close match, else ""."""
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


class StepPaths:
    """Names steps by id when the id is unique, by position otherwise."""

    def __init__(self, raw_steps: Sequence[Any]) -> None:
        ids = [s.get("id") if isinstance(s, dict) else None for s in raw_steps]
        counts = Counter(i for i in ids if isinstance(i, str))
        self._names = [
            join("steps", i)
            if isinstance(i, str) and counts[i] == 1 and _PLAIN_KEY.match(i)
            else f"steps[{n}]"
            for n, i in enumerate(ids)
        ]

    def __call__(self, index: int, *parts: str | int) -> str:
        base = self._names[index] if 0 <= index < len(self._names) else f"steps[{index}]"
        return join(base, *parts)
