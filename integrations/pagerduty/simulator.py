"""A PagerDuty Events API v2 simulator: alerts by dedup_key, trigger and resolve."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from integrations.lab.simulator import Simulator, json_response

LAB_ROUTING_KEY = "R0LAB0000000000000000000BULWARK0"  # 32 characters; the lab's own
SEVERITIES = {"critical", "error", "warning", "info"}


class PagerDutySimulator(Simulator):
    name = "pagerduty"

    def __init__(self) -> None:
        super().__init__()
        self.reset_state()

    def reset_state(self) -> None:
        self.alerts: dict[str, dict[str, Any]] = {}

    def routes(self) -> Iterable[Rule]:
        return [Rule("/v2/enqueue", methods=["POST"], endpoint="enqueue")]

    def invalid(self, *errors: str) -> Response:
        return json_response({"status": "invalid event", "message": "Event object is invalid",
                              "errors": list(errors)}, 400)  # fmt: skip

    def enqueue(self, request: Request) -> Response:
        event = request.get_json(silent=True)
        if not isinstance(event, dict):
            return self.invalid("request body is not JSON")
        if event.get("routing_key") != LAB_ROUTING_KEY:
            return self.invalid("'routing_key' is invalid")
        action, key = event.get("event_action"), event.get("dedup_key")
        if action == "trigger":
            payload = event.get("payload") or {}
            missing = [f"'payload.{f}' is missing or blank" for f in ("summary", "source", "severity")
                       if not payload.get(f)]  # fmt: skip
            if payload.get("severity") and payload["severity"] not in SEVERITIES:
                missing.append("'payload.severity' is invalid")
            if missing:
                return self.invalid(*missing)
            key = key or uuid.uuid4().hex
            with self.lock:
                alert = self.alerts.setdefault(key, {"dedup_key": key, "triggers": 0})
                alert.update(status="triggered", payload=payload)
                alert["triggers"] += 1
        elif action in ("acknowledge", "resolve"):
            if not key:
                return self.invalid("'dedup_key' is missing or blank")
            with self.lock:
                if key in self.alerts:
                    self.alerts[key]["status"] = (
                        "resolved" if action == "resolve" else "acknowledged"
                    )
        else:
            return self.invalid("'event_action' is invalid")
        return json_response(
            {"status": "success", "message": "Event processed", "dedup_key": key}, 202
        )
