"""PagerDuty Events API v2 (vendor-apis.md §3.5): the routing key travels in the body,
and `dedup_key` makes repeated triggers collapse into one alert."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from integrations.context import ActionContext
from integrations.errors import PermanentError
from integrations.probes import prober
from integrations.registry import action
from integrations.vendor import VendorAPI, credential, json_body

Severity = Literal["critical", "error", "warning", "info"]


class PagerDuty(VendorAPI):
    integration = "pagerduty"

    def enqueue(self, event: dict[str, Any]) -> dict[str, Any]:
        body = {"routing_key": credential(self.connection, "routing_key"), **event}
        response = self.request("POST", "v2/enqueue", json=body, expect_status=(400,))
        answer = json_body(response)
        if response.status_code == 400:
            errors = "; ".join(str(e) for e in answer.get("errors", []))
            raise PermanentError(f"PagerDuty refused the event: {answer.get('message')}: {errors}",
                                 kind="validation")  # fmt: skip
        return {"status": answer.get("status"), "message": answer.get("message"),
                "dedup_key": answer.get("dedup_key")}  # fmt: skip


def default_dedup_key(ctx: ActionContext) -> str:
    """Stable for the run's step across retries, so a repeated trigger changes nothing."""
    return f"bulwark-{ctx.idempotency_key}"[:255]


@action("pagerduty.trigger", plan='page on-call: "{summary}" ({severity})', side_effect="write", idempotent=True, connection="pagerduty",
        connection_required=True, output="`status`, `message` and the alert's `dedup_key` (for resolve)")  # fmt: skip
def trigger(ctx: ActionContext, *, summary: str, source: str, severity: Severity = "error",
            dedup_key: str | None = None, component: str | None = None, group: str | None = None,
            custom_details: dict[str, Any] | None = None,
            links: list[dict[str, str]] | None = None) -> dict[str, Any]:  # fmt: skip
    """Open (or re-trigger) a PagerDuty alert; `dedup_key` defaults to one unique to this step."""
    payload: dict[str, Any] = {"summary": summary[:1024], "source": source, "severity": severity,
                               "timestamp": datetime.now(UTC).isoformat()}  # fmt: skip
    for name, value in (
        ("component", component),
        ("group", group),
        ("custom_details", custom_details),
    ):
        if value:
            payload[name] = value
    event: dict[str, Any] = {"event_action": "trigger", "dedup_key": dedup_key or default_dedup_key(ctx),
                             "payload": payload, "client": "Bulwark"}  # fmt: skip
    if links:
        event["links"] = links
    with PagerDuty(ctx) as pagerduty:
        return pagerduty.enqueue(event)


@action("pagerduty.resolve", plan='resolve the PagerDuty incident {dedup_key}', side_effect="write", idempotent=True, connection="pagerduty",
        connection_required=True, output="`status`, `message` and the `dedup_key` resolved")  # fmt: skip
def resolve(ctx: ActionContext, *, dedup_key: str) -> dict[str, Any]:
    """Resolve the alert opened with `dedup_key`."""
    with PagerDuty(ctx) as pagerduty:
        return pagerduty.enqueue({"event_action": "resolve", "dedup_key": dedup_key})


@prober("pagerduty")
def check_connection(ctx: ActionContext) -> str:
    """Events API v2 has no read call; a connection is only checked for its routing key."""
    key = credential(ctx.connection, "routing_key") if ctx.connection else ""
    if len(key) != 32:
        raise PermanentError("the routing key should be 32 characters", kind="connection")
    return "a 32-character routing key is set (the Events API has no call to test it)"
