"""Alert-intake fixtures: fresh encryption keys for the sources' secrets."""

from tests.integrations.conftest import encryption_keys

__all__ = ["encryption_keys"]
