"""What the validator checks definitions against: the action registry and the connections."""

from __future__ import annotations

from integrations.connections import connection_names
from integrations.registry import load_actions
from playbooks.validation import ActionInfo, catalogue_from_registry


def current_catalogue() -> dict[str, ActionInfo]:
    """Every registered action, as the validator sees it."""
    return catalogue_from_registry(load_actions())


def current_connections() -> set[tuple[str, str]]:
    """The configured connections, as (integration, name) pairs."""
    return connection_names()
