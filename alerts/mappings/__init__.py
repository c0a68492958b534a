"""Payload mappings: a sender's JSON → normalised alerts, one format a module."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from alerts.mappings import (
    alertmanager,
    crowdstrike,
    elastic,
    generic,
    grafana,
    ocsf,
    sentinel,
    splunk,
    wazuh,
)
from alerts.mappings.base import MappingError, Normalised

MAPPINGS: dict[str, Callable[[Any], list[Normalised]]] = {
    "generic": generic.normalise,
    "alertmanager": alertmanager.normalise,
    "grafana": grafana.normalise,
    "splunk": splunk.normalise,
    "elastic": elastic.normalise,
    "crowdstrike": crowdstrike.normalise,
    "wazuh": wazuh.normalise,
    "sentinel": sentinel.normalise,
    "ocsf": ocsf.normalise,
}


def normalise(format: str, payload: Any) -> list[Normalised]:
    """The alerts in `payload`; MappingError names what is wrong and where."""
    try:
        mapping = MAPPINGS[format]
    except KeyError:
        raise MappingError("(source)", f"unknown format {format!r}") from None
    return mapping(payload)


__all__ = ["MappingError", "Normalised", "normalise"]
