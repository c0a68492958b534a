"""Testing a connection: each integration says how to check its endpoint and credentials
with one harmless call (`POST /api/v1/connections/{name}/test/`)."""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from typing import Any

from integrations.context import ActionContext, ConnectionInfo, PollAgain
from integrations.errors import ActionError

Probe = Callable[[ActionContext], str]
_PROBES: dict[str, Probe] = {}
PROBE_TIMEOUT_SECONDS = 10.0


def prober(integration: str) -> Callable[[Probe], Probe]:
    """Register how to test connections of `integration`; the probe returns what it saw."""

    def register(func: Probe) -> Probe:
        _PROBES[integration] = func
        return func

    return register


def probe_connection(info: ConnectionInfo) -> dict[str, Any]:
    """Run the integration's probe; never raises for what the vendor answers."""
    from integrations.registry import load_actions

    load_actions()  # vendor modules register their probes when their actions load
    importlib.import_module("integrations.actions.http_request")
    probe = _PROBES.get(info.integration)
    if probe is None:
        return {"ok": False, "message": f"no test is known for {info.integration} connections"}
    ctx = ActionContext(run_id=0, step_id="connection-test", item_index=None, attempt=1,
                        idempotency_key=f"connection-test:{info.name}:{time.time_ns()}",
                        timeout_seconds=PROBE_TIMEOUT_SECONDS, connection=info)  # fmt: skip
    started = time.monotonic()
    try:
        message = probe(ctx)
        ok = True
    except ActionError as exc:
        message, ok = exc.message, False
    except PollAgain as wait:  # the connection's rate limit is spent just now
        message, ok = f"not tested: {wait.note}", False
    return {
        "ok": ok,
        "message": message,
        "duration_ms": round((time.monotonic() - started) * 1000, 1),
    }
