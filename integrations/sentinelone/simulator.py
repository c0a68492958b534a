"""A SentinelOne simulator: agents whose networkStatus moves through disconnecting and
connecting, the filter-based network actions, and SentinelOne's error envelope."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from integrations.lab.simulator import Simulator, json_response

LAB_API_TOKEN = "lab-sentinelone-token-0000"  # noqa: S105 - the lab's own, not a secret
AGENTS = {
    "1600000000000000001": ("WS-FIN-042", "Windows 11"),
    "1600000000000000002": ("SRV-WEB-01", "Linux"),
}
MOVES = {"disconnect": ("disconnecting", "disconnected"), "connect": ("connecting", "connected")}


class SentinelOneSimulator(Simulator):
    name = "sentinelone"
    base_path = "/web/api/v2.1"
    transition_seconds = 0.3

    def __init__(self) -> None:
        super().__init__()
        self.reset_state()

    def reset_state(self) -> None:
        self.agents: dict[str, dict[str, Any]] = {
            aid: {"id": aid, "uuid": f"uuid-{aid[-4:]}", "computerName": name, "osName": os_name,
                  "networkStatus": "connected", "siteName": "Lab", "lastActiveDate": "2026-12-01T00:00:00Z"}
            for aid, (name, os_name) in AGENTS.items()
        }  # fmt: skip
        self.pending: dict[str, tuple[float, str]] = {}

    def routes(self) -> Iterable[Rule]:
        return [
            Rule("/web/api/v2.1/agents", methods=["GET"], endpoint="list_agents"),
            Rule("/web/api/v2.1/agents/actions/<any(disconnect, connect):verb>", methods=["POST"],
                 endpoint="network_action"),
        ]  # fmt: skip

    def error(
        self, status: int, message: str, headers: Mapping[str, str] | None = None
    ) -> Response:
        code = {401: 4010010, 403: 4030010, 400: 4000010, 429: 4290010}.get(status, 5000010)
        title = {401: "Authentication Failed", 403: "Insufficient permissions"}.get(status, "Error")
        return json_response(
            {"errors": [{"code": code, "title": title, "detail": message}]}, status, headers
        )

    def _authorized(self, request: Request) -> bool:
        return request.headers.get("Authorization") == f"ApiToken {LAB_API_TOKEN}"

    def _settle(self) -> None:
        for aid, (when, final) in list(self.pending.items()):
            if when <= time.time():
                self.agents[aid]["networkStatus"] = final
                del self.pending[aid]

    def list_agents(self, request: Request) -> Response:
        if not self._authorized(request):
            return self.error(401, "Invalid API token")
        ids = (
            ",".join(request.args.getlist("ids")).split(",")
            if request.args.get("ids")
            else list(self.agents)
        )
        with self.lock:
            self._settle()
            data = [dict(self.agents[a]) for a in ids if a in self.agents][
                : int(request.args.get("limit", 1000))
            ]
        return json_response(
            {"data": data, "pagination": {"totalItems": len(data), "nextCursor": None}}
        )

    def network_action(self, request: Request, verb: str) -> Response:
        if not self._authorized(request):
            return self.error(401, "Invalid API token")
        body = request.get_json(silent=True) or {}
        filters = body.get("filter")
        if not isinstance(filters, dict) or not any(filters.values()):
            return self.error(400, "filter must not be empty")
        moving, final = MOVES[verb]
        with self.lock:
            self._settle()
            matched = [a for a in filters.get("ids", []) if a in self.agents]
            for aid in matched:
                if self.agents[aid]["networkStatus"] != final:
                    self.agents[aid]["networkStatus"] = moving
                    self.pending[aid] = (time.time() + self.transition_seconds, final)
        return json_response({"data": {"affected": len(matched)}})
