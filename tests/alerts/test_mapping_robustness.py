"""Any JSON a sender might send gets an answer: alerts, or a MappingError naming the field
(a 400), never another exception (a 500). Each recorded payload is mutated value by value."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest

from alerts.mappings import MAPPINGS, MappingError, Normalised, normalise
from alerts.mappings.base import ENTITY_KINDS, SEVERITIES
from tests.alerts.test_mappings import PAYLOADS

RECORDED = {
    "generic": ["generic.json"],
    "alertmanager": ["alertmanager_group_firing.json", "alertmanager_group_resolved.json"],
    "grafana": ["grafana_firing.json", "grafana_resolved.json"],
    "splunk": ["splunk.json", "splunk_malware.json"],
    "elastic": ["elastic_security.json", "elastic_rule_recovered.json"],
    "crowdstrike": ["crowdstrike_detection.json", "crowdstrike_incident.json"],
    "wazuh": ["wazuh_ssh.json", "wazuh_fim.json"],
    "sentinel": ["sentinel_new.json", "sentinel_closed.json"],
    "ocsf": ["ocsf_create.json", "ocsf_close.json"],
}
STAND_INS: list[Any] = [None, 0, -1, 1.5, True, "", "x", "2026", [], [1, "a"], {}, {"a": [None]}]


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from paths(item, (*prefix, index))


def replaced(payload: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    changed = copy.deepcopy(payload)
    target = changed
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return changed


def check(alert: Normalised) -> None:
    assert isinstance(alert.title, str)
    assert alert.severity in SEVERITIES
    assert alert.status in ("firing", "resolved")
    assert isinstance(alert.external_id, str)
    assert set(alert.entities) <= set(ENTITY_KINDS)
    for values in alert.entities.values():
        assert all(isinstance(v, str) and v and not v.startswith(("[", "{")) for v in values)
    json.dumps(alert.raw)
    json.dumps(list(alert.dedup_key))


def cases() -> Iterator[Any]:
    for fmt, names in RECORDED.items():
        for name in names:
            yield pytest.param(fmt, name, id=f"{fmt}-{name}")


def test_every_format_has_recorded_payloads() -> None:
    assert set(RECORDED) == set(MAPPINGS)
    assert all(len(names) >= 2 for fmt, names in RECORDED.items() if fmt != "generic")


@pytest.mark.parametrize(("fmt", "name"), list(cases()))
def test_a_mutated_payload_maps_or_names_its_fault(fmt: str, name: str) -> None:
    payload = json.loads((PAYLOADS / name).read_text())
    failures = []
    for path in list(paths(payload)):
        for stand_in in STAND_INS:
            mutated = replaced(payload, path, stand_in)
            try:
                for alert in normalise(fmt, mutated):
                    check(alert)
            except MappingError:
                continue
            except Exception as exc:
                failures.append(f"{'.'.join(map(str, path)) or '(body)'} = {stand_in!r}: {exc!r}")
    assert not failures, "\n".join(failures[:30])
