from __future__ import annotations

import pytest

from tests.core.approvals.helpers import CALLS


@pytest.fixture(autouse=True)
def no_calls_yet() -> None:
    CALLS.clear()


# The lab's simulators and fresh encryption keys, as the integration tests use them.
from tests.integrations.conftest import encryption_keys, lab, lab_server  # noqa: E402, F401
