"""Fault injection for end-to-end tests, loaded only with BULWARK_FAULT_ACTIONS=1.

`faults.kill_worker` ends its worker process abruptly, as an out-of-memory kill would,
so tests can prove that a poison step stops after its attempts and the pool survives.
"""

from __future__ import annotations

import os
import signal
from typing import Any

from integrations.context import ActionContext
from integrations.registry import action


@action("faults.kill_worker", side_effect="read")
def kill_worker(ctx: ActionContext) -> dict[str, Any]:
    """SIGKILL the process running this attempt."""
    os.kill(os.getpid(), signal.SIGKILL)
    return {}
