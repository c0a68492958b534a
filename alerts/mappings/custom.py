"""A source's own mapping: a JMESPath expression per normalised field, over the payload
(or over each element `alerts` selects). The expressions are compiled when the source is
saved, so a bad one is refused there with its field named."""

from __future__ import annotations

from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError

from alerts.mappings.base import (
    ENTITY_KINDS,
    MappingError,
    Normalised,
    entities,
    severity,
    timestamp,
)

FIELDS = (
    "alerts",
    "title",
    "severity",
    "status",
    "external_id",
    "occurred_at",
    "source",
    *ENTITY_KINDS,
)


def check_mapping(mapping: Any) -> None:
    """Raise MappingError for an unknown field or an expression JMESPath cannot compile."""
    if not isinstance(mapping, dict) or "title" not in mapping:
        raise MappingError("mapping", "must be an object with at least a `title` expression")
    for name, expression in mapping.items():
        if name not in FIELDS:
            raise MappingError(f"mapping.{name}", f"unknown field; one of {', '.join(FIELDS)}")
        try:
            jmespath.compile(str(expression))
        except JMESPathError as exc:
            raise MappingError(f"mapping.{name}", f"not a JMESPath expression: {exc}") from None


def _search(expression: str, data: Any) -> Any:
    try:
        return jmespath.search(expression, data)
    except JMESPathError as exc:
        raise MappingError(expression, str(exc)) from None


def normalise_custom(mapping: dict[str, str], payload: Any) -> list[Normalised]:
    check_mapping(mapping)
    items = _search(mapping["alerts"], payload) if "alerts" in mapping else [payload]
    if not isinstance(items, list):
        raise MappingError(f"mapping.alerts ({mapping['alerts']})", "did not select a list")
    out = []
    for i, item in enumerate(items):
        values = {name: _search(expr, item) for name, expr in mapping.items() if name != "alerts"}
        title = values.get("title")
        if not title:
            raise MappingError(
                f"alerts[{i}] mapping.title ({mapping['title']})", "selected nothing"
            )
        status = str(values.get("status") or "firing").lower()
        found = {
            kind: v if isinstance(v, list) else [v]
            for kind in ENTITY_KINDS
            if (v := values.get(kind))
        }
        external = str(values.get("external_id") or "")
        out.append(Normalised(
            title=str(title)[:500], severity=severity(values.get("severity")),
            status="resolved" if status in ("resolved", "closed", "ok") else "firing",
            source=str(values.get("source") or ""), external_id=external,
            occurred_at=timestamp(values.get("occurred_at"), f"alerts[{i}] mapping.occurred_at"),
            entities=entities(**found), raw=item, dedup_key=(external,) if external else (str(title),),
        ))  # fmt: skip
    return out
