"""ServiceNow Table API (vendor-apis.md §5.2): basic auth; an incident carries a
correlation id unique to the run's step, queried before creating, so it is created once."""

from __future__ import annotations

import re
from typing import Any, Literal

import httpx

from integrations.context import ActionContext
from integrations.errors import PermanentError
from integrations.probes import prober
from integrations.registry import action
from integrations.vendor import VendorAPI, credential, json_body

Level = Literal["1", "2", "3"]
FIELDS = "sys_id,number,state,short_description,correlation_id"


class ServiceNow(VendorAPI):
    integration = "servicenow"

    def basic_auth(self) -> httpx.BasicAuth:
        return httpx.BasicAuth(
            credential(self.connection, "username"), credential(self.connection, "password")
        )

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, expect_status=(400, 403, 404), headers={"Accept": "application/json"},
                                **kwargs)  # fmt: skip
        body = json_body(response) if response.content else {}
        if response.status_code >= 400:
            error = body.get("error") or {}
            raise PermanentError(
                f"ServiceNow {method} {path}: HTTP {response.status_code}: {error.get('message')} ({error.get('detail')})",
                kind={403: "forbidden", 404: "not_found"}.get(response.status_code, "validation"),
            )  # fmt: skip
        return body


def correlation_id(ctx: ActionContext) -> str:
    return "bulwark-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", ctx.idempotency_key).strip("-")[:90]


def _shown(record: dict[str, Any]) -> dict[str, Any]:
    return {name: record.get(name) for name in FIELDS.split(",")}


@action("servicenow.create_incident", plan='open a ServiceNow incident: "{short_description}"', side_effect="write", idempotent=True, connection="servicenow",
        connection_required=True,
        output="`sys_id`, `number` (INC…), `state`, `correlation_id`, and whether it was `created` now")  # fmt: skip
def create_incident(ctx: ActionContext, *, short_description: str, description: str = "",
                    urgency: Level = "2", impact: Level = "2", category: str = "security",
                    caller_id: str | None = None, assignment_group: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Open an incident; its `correlation_id` names this run's step and is looked up first."""
    correlation = correlation_id(ctx)
    with ServiceNow(ctx) as snow:
        found = snow.call("GET", "api/now/table/incident", params={
            "sysparm_query": f"correlation_id={correlation}", "sysparm_limit": 1, "sysparm_fields": FIELDS,
        }).get("result") or []  # fmt: skip
        if found:
            return {**_shown(found[0]), "created": False}
        record: dict[str, Any] = {"short_description": short_description[:160], "description": description,
                                  "urgency": urgency, "impact": impact, "category": category,
                                  "correlation_id": correlation}  # fmt: skip
        if caller_id:
            record["caller_id"] = caller_id
        if assignment_group:
            record["assignment_group"] = assignment_group
        created = snow.call("POST", "api/now/table/incident", json=record,
                            params={"sysparm_fields": FIELDS, "sysparm_input_display_value": "true"})  # fmt: skip
    return {**_shown(created.get("result") or {}), "created": True}


@prober("servicenow")
def check_connection(ctx: ActionContext) -> str:
    with ServiceNow(ctx) as snow:
        snow.call(
            "GET", "api/now/table/incident", params={"sysparm_limit": 1, "sysparm_fields": "sys_id"}
        )
    return "the user can read incidents"
