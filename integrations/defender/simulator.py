"""A Defender for Endpoint simulator: the Entra token endpoint, machine actions (isolate,
unisolate, collect an investigation package) that go Pending → InProgress → Succeeded,
the OData action list, ActiveRequestAlreadyExists, and a SAS download link."""

from __future__ import annotations

import io
import secrets
import time
import uuid
import zipfile
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from integrations.lab.simulator import Simulator, json_response

LAB_TENANT = "00000000-0000-4000-8000-00000000b0a1"
LAB_CLIENT_ID = "lab-defender-app"
LAB_CLIENT_SECRET = "lab-defender-secret"  # noqa: S105 - the lab's own, not a secret
MACHINES = {
    "1e5c0d0f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d": "ws-fin-042.corp.example",
    "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432": "srv-web-01.corp.example",
}
VERBS = {"isolate": "Isolate", "unisolate": "Unisolate",
         "collectInvestigationPackage": "CollectInvestigationPackage"}  # fmt: skip


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class DefenderSimulator(Simulator):
    name = "defender"
    # Seconds an action spends Pending, then InProgress, before it succeeds.
    step_seconds = 0.3

    def __init__(self) -> None:
        super().__init__()
        self.reset_state()

    def reset_state(self) -> None:
        self.tokens: dict[str, float] = {}
        self.actions: dict[str, dict[str, Any]] = {}
        self.started: dict[str, float] = {}
        self.fail_next: set[str] = set()  # action types whose next request ends Failed
        self.packages: dict[str, str] = {}  # SAS token -> action id

    def routes(self) -> Iterable[Rule]:
        return [
            Rule("/<tenant>/oauth2/v2.0/token", methods=["POST"], endpoint="token"),
            Rule("/api/machines", methods=["GET"], endpoint="list_machines"),
            Rule("/api/machines/<machine_id>/<any(isolate, unisolate, collectInvestigationPackage):verb>",
                 methods=["POST"], endpoint="request_action"),
            Rule("/api/machineactions", methods=["GET"], endpoint="list_actions"),
            Rule("/api/machineactions/<action_id>", methods=["GET"], endpoint="get_action"),
            Rule("/api/machineactions/<action_id>/getPackageUri", methods=["GET"], endpoint="package_uri"),
            Rule("/packages/<action_id>.zip", methods=["GET"], endpoint="download_package"),
        ]  # fmt: skip

    def error(
        self, status: int, message: str, headers: Mapping[str, str] | None = None
    ) -> Response:
        code = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "ResourceNotFound",
                429: "TooManyRequests"}.get(status, "InternalServerError")  # fmt: skip
        return self.odata_error(status, code, message, headers)

    def odata_error(self, status: int, code: str, message: str,
                    headers: Mapping[str, str] | None = None) -> Response:  # fmt: skip
        return json_response({"error": {"code": code, "message": message, "target": str(uuid.uuid4())}},
                             status, headers)  # fmt: skip

    def token(self, request: Request, tenant: str) -> Response:
        form = request.form
        ok = (tenant == LAB_TENANT and form.get("grant_type") == "client_credentials"
              and form.get("client_id") == LAB_CLIENT_ID and form.get("client_secret") == LAB_CLIENT_SECRET)  # fmt: skip
        if not ok:
            return json_response({"error": "invalid_client", "error_codes": [7000215],
                                  "error_description": "AADSTS7000215: Invalid client secret provided."}, 401)  # fmt: skip
        token = secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[token] = time.time() + 3599
        return json_response({"token_type": "Bearer", "expires_in": 3599, "access_token": token})

    def _authorized(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        return scheme == "Bearer" and self.tokens.get(token, 0) > time.time()

    def _advance(self, action: dict[str, Any]) -> None:
        elapsed = time.time() - self.started[action["id"]]
        if action["status"] in ("Pending", "InProgress"):
            if elapsed >= 2 * self.step_seconds:
                action["status"] = "Failed" if action.get("will_fail") else "Succeeded"
            elif elapsed >= self.step_seconds:
                action["status"] = "InProgress"
            action["lastUpdateDateTimeUtc"] = _now()

    def _shown(self, action: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in action.items() if k != "will_fail"}

    def list_machines(self, request: Request) -> Response:
        if not self._authorized(request):
            return self.error(401, "Authorization has been denied for this request.")
        return json_response(
            {"value": [{"id": m, "computerDnsName": n} for m, n in MACHINES.items()]}
        )

    def request_action(self, request: Request, machine_id: str, verb: str) -> Response:
        if not self._authorized(request):
            return self.error(401, "Authorization has been denied for this request.")
        if machine_id not in MACHINES:
            return self.error(404, f"Machine {machine_id} was not found")
        body = request.get_json(silent=True) or {}
        if not body.get("Comment"):
            return self.odata_error(400, "MissingRequiredParameter", "Comment is required")
        if verb == "isolate" and body.get("IsolationType", "Full") not in (
            "Full",
            "Selective",
            "UnManagedDevice",
        ):
            return self.odata_error(400, "InvalidRequestBody", "IsolationType is invalid")
        kind = VERBS[verb]
        with self.lock:
            for existing in self.actions.values():
                self._advance(existing)
                if (
                    existing["machineId"] == machine_id
                    and existing["type"] == kind
                    and existing["status"] in ("Pending", "InProgress")
                ):
                    return self.odata_error(
                        400, "ActiveRequestAlreadyExists", "Action is already in progress"
                    )
            action = {"id": str(uuid.uuid4()), "type": kind, "scope": body.get("IsolationType") if verb == "isolate" else None,
                      "requestor": LAB_CLIENT_ID, "requestorComment": body["Comment"], "status": "Pending",
                      "machineId": machine_id, "computerDnsName": MACHINES[machine_id],
                      "creationDateTimeUtc": _now(), "lastUpdateDateTimeUtc": _now(), "externalID": None,
                      "relatedFileInfo": None, "will_fail": kind in self.fail_next}  # fmt: skip
            self.fail_next.discard(kind)
            self.actions[action["id"]] = action
            self.started[action["id"]] = time.time()
        return json_response(self._shown(action), 201)

    def list_actions(self, request: Request) -> Response:
        if not self._authorized(request):
            return self.error(401, "Authorization has been denied for this request.")
        odata = request.args.get("$filter", "")
        with self.lock:
            found = []
            for action in self.actions.values():
                self._advance(action)
                if (
                    f"machineId eq '{action['machineId']}'" in odata
                    and f"type eq '{action['type']}'" in odata
                ):
                    found.append(self._shown(action))
        return json_response({"@odata.context": "MachineActions", "value": found})

    def get_action(self, request: Request, action_id: str) -> Response:
        if not self._authorized(request):
            return self.error(401, "Authorization has been denied for this request.")
        with self.lock:
            action = self.actions.get(action_id)
            if action is None:
                return self.error(404, f"Machine action {action_id} was not found")
            self._advance(action)
            return json_response(self._shown(action))

    def package_uri(self, request: Request, action_id: str) -> Response:
        if not self._authorized(request):
            return self.error(401, "Authorization has been denied for this request.")
        with self.lock:
            action = self.actions.get(action_id)
            if action is None or action["type"] != "CollectInvestigationPackage":
                return self.error(404, f"Machine action {action_id} was not found")
            self._advance(action)
            if action["status"] != "Succeeded":
                return self.error(404, "The package is not ready")
            sas = secrets.token_urlsafe(16)
            self.packages[sas] = action_id
        base = f"{request.host_url.rstrip('/')}{request.script_root}"
        return json_response({"@odata.context": "$metadata#Edm.String",
                              "value": f"{base}/packages/{action_id}.zip?sv=2024-01-01&sig={sas}"})  # fmt: skip

    def download_package(self, request: Request, action_id: str) -> Response:
        if self.packages.get(request.args.get("sig", "")) != action_id:
            return Response("AuthenticationFailed", status=403)
        return Response(
            package_content(self.actions[action_id]["machineId"]), content_type="application/zip"
        )


def package_content(machine_id: str) -> bytes:
    """A small, repeatable investigation package: a zip of the usual folders."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as package:
        for name in (
            "Autoruns/autoruns.txt",
            "Processes/processes.csv",
            "Network connections/netstat.txt",
        ):
            info = zipfile.ZipInfo(name, date_time=(2026, 12, 1, 0, 0, 0))
            package.writestr(info, f"{name} collected from {machine_id}\n" * 20)
    return buffer.getvalue()
