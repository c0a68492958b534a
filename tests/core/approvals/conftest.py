from __future__ import annotations

import pytest

from tests.core.approvals.helpers import CALLS


@pytest.fixture(autouse=True)
def no_calls_yet() -> None:
    CALLS.clear()
