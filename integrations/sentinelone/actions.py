"""SentinelOne (vendor-apis.md §1.3): `ApiToken` auth; disconnect and reconnect an agent
by a filter that names it (never an empty filter, which would target every agent), then
wait for `networkStatus` to confirm."""

from __future__ import annotations

from typing import Any

from integrations.context import ActionContext
from integrations.errors import PermanentError
from integrations.polling import DEFAULT_POLL_INTERVAL, DEFAULT_WAIT_TIMEOUT, wait
from integrations.probes import prober
from integrations.registry import action
from integrations.vendor import VendorAPI, credential, json_body

AGENT_FIELDS = (
    "id",
    "uuid",
    "computerName",
    "networkStatus",
    "osName",
    "siteName",
    "lastActiveDate",
)


class SentinelOne(VendorAPI):
    integration = "sentinelone"

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"ApiToken {credential(self.connection, 'api_token')}"}

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, expect_status=(400, 403, 404), **kwargs)
        body = json_body(response) if response.content else {}
        if response.status_code >= 400:
            errors = "; ".join(
                f"{e.get('title')}: {e.get('detail')}" for e in body.get("errors", [])
            )
            raise PermanentError(f"SentinelOne {method} {path}: HTTP {response.status_code}: {errors}",
                                 kind="forbidden" if response.status_code == 403 else "vendor_error")  # fmt: skip
        return body

    def agent(self, agent_id: str) -> dict[str, Any]:
        agents = self.call("GET", "agents", params={"ids": agent_id}).get("data") or []
        if not agents:
            raise PermanentError(f"SentinelOne has no agent {agent_id}", kind="not_found")
        return {name: agents[0].get(name) for name in AGENT_FIELDS}

    def network_action(self, verb: str, agent_id: str) -> int:
        if not agent_id:
            raise PermanentError("an agent id is required (an empty filter targets every agent)",
                                 kind="validation")  # fmt: skip
        body = self.call(
            "POST", f"agents/actions/{verb}", json={"filter": {"ids": [agent_id]}, "data": {}}
        )
        return int((body.get("data") or {}).get("affected", 0))


def _network_state(ctx: ActionContext, *, agent_id: str, verb: str, done: str, wait_done: bool,
                   poll_interval: float, wait_timeout: float) -> dict[str, Any]:  # fmt: skip
    with SentinelOne(ctx) as s1:
        agent = s1.agent(agent_id)
        progress = dict(ctx.progress or {})
        if agent["networkStatus"] == done:
            return {**agent, "requested": bool(progress.get("requested"))}
        if not progress.get("requested"):
            if s1.network_action(verb, agent_id) == 0:
                raise PermanentError(
                    f"SentinelOne's {verb} matched no agent {agent_id}", kind="not_found"
                )
            progress["requested"] = True
        if not wait_done:
            return {**agent, "requested": True}
        raise wait(ctx, progress, poll_interval=poll_interval, wait_timeout=wait_timeout,
                   what=f"agent {agent_id} to be {done} (it is {agent['networkStatus']})")  # fmt: skip


@action("sentinelone.disconnect_agent", plan='disconnect agent {agent_id} from the network', side_effect="destructive", idempotent=True,
        connection="sentinelone", connection_required=True,
        output="the agent (`id`, `computerName`, `networkStatus`: disconnected, …) and `requested`")  # fmt: skip
def disconnect_agent(ctx: ActionContext, *, agent_id: str, wait: bool = True,
                     poll_interval: float = DEFAULT_POLL_INTERVAL,
                     wait_timeout: float = DEFAULT_WAIT_TIMEOUT) -> dict[str, Any]:  # fmt: skip
    """Disconnect an agent from the network and wait until SentinelOne reports it disconnected."""
    return _network_state(ctx, agent_id=agent_id, verb="disconnect", done="disconnected", wait_done=wait,
                          poll_interval=poll_interval, wait_timeout=wait_timeout)  # fmt: skip


@action("sentinelone.connect_agent", plan='reconnect agent {agent_id} to the network', side_effect="write", idempotent=True,
        connection="sentinelone", connection_required=True,
        output="the agent (`id`, `computerName`, `networkStatus`: connected, …) and `requested`")  # fmt: skip
def connect_agent(ctx: ActionContext, *, agent_id: str, wait: bool = True,
                  poll_interval: float = DEFAULT_POLL_INTERVAL,
                  wait_timeout: float = DEFAULT_WAIT_TIMEOUT) -> dict[str, Any]:  # fmt: skip
    """Reconnect an agent to the network and wait until SentinelOne reports it connected."""
    return _network_state(ctx, agent_id=agent_id, verb="connect", done="connected", wait_done=wait,
                          poll_interval=poll_interval, wait_timeout=wait_timeout)  # fmt: skip


@prober("sentinelone")
def check_connection(ctx: ActionContext) -> str:
    with SentinelOne(ctx) as s1:
        s1.call("GET", "agents", params={"limit": 1})
    return "the API token is accepted"
