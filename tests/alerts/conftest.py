"""Alert-intake fixtures: fresh encryption keys for the sources' secrets."""

from tests.integrations.conftest import encryption_keys

__all__ = ["encryption_keys"]


import pytest


@pytest.fixture(autouse=True)
def fresh_trigger_cache() -> None:
    """Each test publishes its own playbooks: forget which sources had triggers before."""
    import alerts.intake

    alerts.intake._triggered = (0.0, frozenset())
    alerts.intake._sources.clear()
