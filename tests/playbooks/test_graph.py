"""DAG helpers over {step id: needs}."""

from __future__ import annotations

import pytest

from playbooks.graph import (
    CycleError,
    ancestors,
    dependents_map,
    descendants,
    find_cycles,
    format_cycle,
    start_steps,
    topological_order,
    upstream_map,
)

# enrich → isolate → {collect_evidence, notify} → ticket → patch_fleet
CONTAIN = {
    "enrich": [],
    "isolate": ["enrich"],
    "collect_evidence": ["isolate"],
    "notify": ["isolate"],
    "ticket": ["collect_evidence", "notify"],
    "patch_fleet": ["ticket"],
}


def test_an_acyclic_graph_has_no_cycles() -> None:
    assert find_cycles(CONTAIN) == []


def test_a_two_step_cycle_is_named_in_execution_order() -> None:
    graph = {"isolate": ["notify"], "notify": ["isolate"]}
    assert find_cycles(graph) == [["isolate", "notify"]]
    assert format_cycle(find_cycles(graph)[0]) == "isolate → notify → isolate"


def test_a_longer_cycle_follows_the_direction_steps_would_run() -> None:
    # a needs c, b needs a, c needs b: a runs before b, b before c, c before a.
    graph = {"a": ["c"], "b": ["a"], "c": ["b"], "d": ["c"]}
    assert find_cycles(graph) == [["a", "b", "c"]]


def test_a_self_loop_is_a_cycle_of_one() -> None:
    assert find_cycles({"a": ["a"], "b": []}) == [["a"]]


def test_each_separate_cycle_is_reported_once_in_declaration_order() -> None:
    graph = {"x": ["y"], "y": ["x"], "ok": [], "p": ["q"], "q": ["p"]}
    assert find_cycles(graph) == [["x", "y"], ["p", "q"]]


def test_unknown_needs_are_ignored_by_the_graph_helpers() -> None:
    graph = {"a": ["ghost"], "b": ["a"]}
    assert find_cycles(graph) == []
    assert topological_order(graph) == ["a", "b"]
    assert start_steps(graph) == ["a"]


def test_topological_order_puts_needs_first_and_keeps_declaration_order_for_ties() -> None:
    assert topological_order(CONTAIN) == [
        "enrich",
        "isolate",
        "collect_evidence",
        "notify",
        "ticket",
        "patch_fleet",
    ]
    assert topological_order({"late": ["early"], "other": [], "early": []}) == [
        "other",
        "early",
        "late",
    ]


def test_topological_order_of_a_cyclic_graph_raises_with_the_cycle() -> None:
    with pytest.raises(CycleError, match="a → b → a") as info:
        topological_order({"a": ["b"], "b": ["a"], "c": []})
    assert info.value.cycles == [["a", "b"]]


def test_ancestors_are_the_transitive_needs() -> None:
    assert ancestors(CONTAIN, "ticket") == {"collect_evidence", "notify", "isolate", "enrich"}
    assert ancestors(CONTAIN, "enrich") == set()


def test_descendants_are_the_steps_downstream() -> None:
    assert descendants(CONTAIN, "notify") == {"ticket", "patch_fleet"}
    assert descendants(CONTAIN, "patch_fleet") == set()


def test_parallel_branches_are_not_upstream_of_each_other() -> None:
    upstream = upstream_map(CONTAIN)
    assert "notify" not in upstream["collect_evidence"]
    assert "collect_evidence" not in upstream["notify"]
    assert upstream["patch_fleet"] == frozenset(set(CONTAIN) - {"patch_fleet"})


def test_dependents_and_start_steps() -> None:
    assert dependents_map(CONTAIN)["isolate"] == ["collect_evidence", "notify"]
    assert start_steps(CONTAIN) == ["enrich"]
