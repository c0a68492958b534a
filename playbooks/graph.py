"""Pure helpers over a playbook's step graph, given as {step id: its needs}.

The mapping's order is the declaration order; every result that is a list follows it, so
output is deterministic. Needs naming unknown steps are ignored here (the validator
reports them).
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Collection, Mapping

Graph = Mapping[str, Collection[str]]


class CycleError(ValueError):
    """The graph has a cycle, so it has no topological order."""

    def __init__(self, cycles: list[list[str]]) -> None:
        self.cycles = cycles
        super().__init__("; ".join(format_cycle(c) for c in cycles))


def format_cycle(cycle: list[str]) -> str:
    """'a → b → a' for the cycle [a, b]."""
    return " → ".join([*cycle, cycle[0]])


def needs_map(graph: Graph) -> dict[str, list[str]]:
    """Each step's known needs, deduplicated, in the order written."""
    return {step: [n for n in dict.fromkeys(needs) if n in graph] for step, needs in graph.items()}


def dependents_map(graph: Graph) -> dict[str, list[str]]:
    """Each step's direct dependents (the steps that need it), in declaration order."""
    result: dict[str, list[str]] = {step: [] for step in graph}
    for step, needs in needs_map(graph).items():
        for need in needs:
            result[need].append(step)
    return result


def start_steps(graph: Graph) -> list[str]:
    """Steps with no (known) needs: they start at once."""
    return [step for step, needs in needs_map(graph).items() if not needs]


def _reach(edges: Mapping[str, list[str]], start: str) -> set[str]:
    seen: set[str] = set()
    queue = deque(edges.get(start, []))
    while queue:
        node = queue.popleft()
        if node not in seen:
            seen.add(node)
            queue.extend(edges[node])
    return seen


def ancestors(graph: Graph, step: str) -> set[str]:
    """Every step `step` transitively needs (its upstream)."""
    return _reach(needs_map(graph), step)


def descendants(graph: Graph, step: str) -> set[str]:
    """Every step that transitively needs `step` (its downstream)."""
    return _reach(dependents_map(graph), step)


def upstream_map(graph: Graph) -> dict[str, frozenset[str]]:
    """Each step's transitive needs."""
    edges = needs_map(graph)
    return {step: frozenset(_reach(edges, step)) for step in graph}


def _shortest_cycle_through(
    start: str, edges: Mapping[str, list[str]], within: set[str]
) -> list[str]:
    parents: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt in edges[node]:
            if nxt not in within:
                continue
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(parents[path[-1]])
                return path[::-1]
            if nxt not in parents:
                parents[nxt] = node
                queue.append(nxt)
    raise AssertionError(f"{start} is in a strongly connected component but on no cycle")


def find_cycles(graph: Graph) -> list[list[str]]:
    """One cycle per strongly connected part of the graph, in execution order.

    [a, b] means a runs before b and b before a (b needs a, a needs b); a self-loop is
    [a]. Each cycle starts at its earliest-declared step; cycles come in declaration order.
    """
    edges = dependents_map(graph)
    reach = {step: _reach(edges, step) for step in graph}
    placed: set[str] = set()
    cycles: list[list[str]] = []
    for step in graph:
        if step in placed or step not in reach[step]:
            continue
        component = {other for other in reach[step] if step in reach[other]} | {step}
        placed |= component
        cycles.append(_shortest_cycle_through(step, edges, component))
    return cycles


def topological_order(graph: Graph) -> list[str]:
    """Steps so that each comes after its needs; ties keep declaration order.

    Raises CycleError when there is none.
    """
    index = {step: i for i, step in enumerate(graph)}
    needs = needs_map(graph)
    waiting = {step: len(n) for step, n in needs.items()}
    dependents = dependents_map(graph)
    ready = [index[step] for step, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    steps = list(graph)
    order: list[str] = []
    while ready:
        step = steps[heapq.heappop(ready)]
        order.append(step)
        for dependent in dependents[step]:
            waiting[dependent] -= 1
            if waiting[dependent] == 0:
                heapq.heappush(ready, index[dependent])
    if len(order) != len(steps):
        raise CycleError(find_cycles(graph))
    return order
