"""Filters the UI's templates use everywhere (loaded as builtins in config.settings)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django import template

register = template.Library()


@register.filter
def duration(value: timedelta | None) -> str:
    """A duration as people read it: "45 s", "3 min 20 s", "2 h 5 min", "3 d 4 h"."""
    if value is None:
        return ""
    seconds = max(0, round(value.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


@register.filter
def label(value: Any) -> str:
    """A status or kind for reading: "waiting_approval" → "waiting approval"."""
    return str(value).replace("_", " ")


@register.filter
def pretty(value: Any) -> str:
    """A JSON value, indented, for a <pre>."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


@register.filter
def words(value: str) -> list[str]:
    """A space-separated list written in a template: "a b c" → ["a", "b", "c"]."""
    return value.split()


@register.filter
def get_item(mapping: Any, key: str) -> Any:
    """mapping[key], or "" when absent (for a dict of filters in a form)."""
    return mapping.get(key, "") if hasattr(mapping, "get") else ""


@register.filter
def to_json(value: Any) -> str:
    """A value as JSON text, for a data attribute (the template escapes it there)."""
    return json.dumps(value, ensure_ascii=False, default=str)
