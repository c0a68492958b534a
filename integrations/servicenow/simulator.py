"""A ServiceNow Table API simulator: incidents, a correlation_id query, basic auth."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from integrations.lab.simulator import Simulator, json_response

LAB_USERNAME = "bulwark.integration"
LAB_PASSWORD = "lab-servicenow-password"  # noqa: S105 - the lab's own, not a secret


class ServiceNowSimulator(Simulator):
    name = "servicenow"

    def __init__(self) -> None:
        super().__init__()
        self.reset_state()

    def reset_state(self) -> None:
        self.incidents: list[dict[str, Any]] = []

    def routes(self) -> Iterable[Rule]:
        return [
            Rule("/api/now/table/incident", methods=["GET"], endpoint="query"),
            Rule("/api/now/table/incident", methods=["POST"], endpoint="create"),
        ]

    def error(
        self, status: int, message: str, headers: Mapping[str, str] | None = None
    ) -> Response:
        return json_response(
            {"error": {"message": message, "detail": None}, "status": "failure"}, status, headers
        )

    def rate_limit_headers(self, retry_after: float) -> dict[str, str]:
        import time

        return {"Retry-After": str(int(retry_after)), "X-RateLimit-Limit": "500",
                "X-RateLimit-Reset": str(int(time.time() + retry_after)), "X-RateLimit-Rule": "lab"}  # fmt: skip

    def _authorized(self, request: Request) -> bool:
        expected = base64.b64encode(f"{LAB_USERNAME}:{LAB_PASSWORD}".encode()).decode()
        return request.headers.get("Authorization") == f"Basic {expected}"

    def _fields(self, request: Request, record: dict[str, Any]) -> dict[str, Any]:
        wanted = request.args.get("sysparm_fields")
        return {k: v for k, v in record.items() if not wanted or k in wanted.split(",")}

    def query(self, request: Request) -> Response:
        if not self._authorized(request):
            return self.error(401, "User Not Authenticated")
        query = request.args.get("sysparm_query", "")
        with self.lock:
            found = [
                i
                for i in self.incidents
                if not query or query == f"correlation_id={i.get('correlation_id')}"
            ]
        limit = int(request.args.get("sysparm_limit", "100"))
        return json_response({"result": [self._fields(request, i) for i in found[:limit]]})

    def create(self, request: Request) -> Response:
        if not self._authorized(request):
            return self.error(401, "User Not Authenticated")
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not body.get("short_description"):
            return self.error(400, "Mandatory field short_description is missing")
        with self.lock:
            record = {**{k: str(v) for k, v in body.items()}, "sys_id": uuid.uuid4().hex,
                      "number": f"INC{10001 + len(self.incidents):07d}", "state": "1"}  # fmt: skip
            self.incidents.append(record)
        base = f"{request.host_url.rstrip('/')}{request.script_root}"
        return json_response({"result": self._fields(request, record)}, 201,
                             {"Location": f"{base}/api/now/table/incident/{record['sys_id']}"})  # fmt: skip
