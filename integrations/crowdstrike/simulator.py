"""A CrowdStrike Falcon simulator: token endpoint, host actions with the containment state
machine, host lookup, and Real Time Response file retrieval (vendor-apis.md §1.1, §2.2)."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from integrations.lab.simulator import Simulator, json_response

# The lab's own credentials (the embedded default's connection uses them); not secrets.
LAB_CLIENT_ID = "lab-falcon-client"
LAB_CLIENT_SECRET = "lab-falcon-secret"  # noqa: S105
# Hosts every fresh simulator knows (the example playbooks and the demo use them).
DEMO_HOSTS = {
    "4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f90": {"hostname": "WS-FIN-042", "local_ip": "10.20.4.42",
                                         "platform_name": "Windows", "os_version": "Windows 11"},
    "0a1b2c3d4e5f60718293a4b5c6d7e8f9": {"hostname": "SRV-WEB-01", "local_ip": "10.20.9.11",
                                         "platform_name": "Linux", "os_version": "Ubuntu 24.04"},
}  # fmt: skip
NEXT = {"contain": ("normal", "containment_pending", "contained"),
        "lift_containment": ("contained", "lift_containment_pending", "normal")}  # fmt: skip


class CrowdStrikeSimulator(Simulator):
    name = "crowdstrike"
    # Seconds a host takes to move from *_pending to its final state.
    transition_seconds = 0.5

    def __init__(self, *, client_id: str = LAB_CLIENT_ID, client_secret: str = LAB_CLIENT_SECRET,
                 token_lifetime: int = 1799) -> None:  # fmt: skip
        self.client_id, self.client_secret, self.token_lifetime = (
            client_id,
            client_secret,
            token_lifetime,
        )
        super().__init__()
        self.reset_state()

    def reset_state(self) -> None:
        self.tokens: dict[str, float] = {}
        self.devices: dict[str, dict[str, Any]] = {
            aid: {"device_id": aid, "status": "normal", **host} for aid, host in DEMO_HOSTS.items()
        }
        self.pending: dict[str, tuple[float, str]] = {}  # aid -> (when, final status)
        self.offline: set[str] = set()  # hosts that never check in: stay *_pending
        self.sessions: dict[str, str] = {}  # session id -> aid
        self.commands: dict[str, dict[str, Any]] = {}
        self.files: dict[str, list[dict[str, Any]]] = {}  # session id -> retrieved files

    def routes(self) -> Iterable[Rule]:
        return [
            Rule("/oauth2/token", methods=["POST"], endpoint="token"),
            Rule("/devices/entities/devices/v2", methods=["GET"], endpoint="get_devices"),
            Rule("/devices/queries/devices/v1", methods=["GET"], endpoint="query_devices"),
            Rule("/devices/entities/devices-actions/v2", methods=["POST"], endpoint="device_action"),
            Rule("/real-time-response/entities/sessions/v1", methods=["POST"], endpoint="open_session"),
            Rule("/real-time-response/entities/sessions/v1", methods=["DELETE"], endpoint="close_session"),
            Rule("/real-time-response/entities/active-responder-command/v1", methods=["POST"],
                 endpoint="run_command"),
            Rule("/real-time-response/entities/active-responder-command/v1", methods=["GET"],
                 endpoint="command_status"),
            Rule("/real-time-response/entities/file/v2", methods=["GET"], endpoint="list_files"),
            Rule("/real-time-response/entities/extracted-file-contents/v1", methods=["GET"],
                 endpoint="file_contents"),
        ]  # fmt: skip

    # -- the vendor's envelope ----------------------------------------------------------
    def envelope(self, resources: list[Any], status: int = 200, errors: list[Any] | None = None,
                 headers: Mapping[str, str] | None = None) -> Response:  # fmt: skip
        body = {"meta": {"query_time": 0.004, "powered_by": "bulwark-lab", "trace_id": str(uuid.uuid4())},
                "resources": resources, "errors": errors or []}  # fmt: skip
        limits = {"X-Ratelimit-Limit": "6000", "X-Ratelimit-Remaining": "5999", **(headers or {})}
        return json_response(body, status, limits)

    def error(
        self, status: int, message: str, headers: Mapping[str, str] | None = None
    ) -> Response:
        return self.envelope([], status, [{"code": status, "message": message}], headers)

    def rate_limit_headers(self, retry_after: float) -> dict[str, str]:
        # Falcon sends the moment to retry at, in epoch seconds, not a delay.
        return {
            "X-Ratelimit-Retryafter": str(int(time.time() + retry_after)),
            "X-Ratelimit-Remaining": "0",
        }

    def _authorized(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        expires = self.tokens.get(token)
        return scheme.lower() == "bearer" and expires is not None and expires > time.time()

    def expire_tokens(self) -> None:
        """Make every issued token invalid (the next call gets a 401)."""
        with self.lock:
            self.tokens.clear()

    # -- endpoints ----------------------------------------------------------------------
    def token(self, request: Request) -> Response:
        form = request.form
        if (
            form.get("client_id") != self.client_id
            or form.get("client_secret") != self.client_secret
        ):
            return self.error(401, "access denied, invalid client credentials")
        token = secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[token] = time.time() + self.token_lifetime
        body = {"access_token": token, "token_type": "bearer", "expires_in": self.token_lifetime}
        return json_response(body, 201, {"X-Cs-Region": "us-1"})

    def _settle(self, aid: str) -> None:
        when, final = self.pending.get(aid, (0.0, ""))
        if final and when <= time.time() and aid not in self.offline:
            self.devices[aid]["status"] = final
            del self.pending[aid]

    def get_devices(self, request: Request) -> Response:
        if not self._authorized(request):
            return self.error(401, "access denied, authorization failed")
        ids = request.args.getlist("ids")
        with self.lock:
            for aid in ids:
                if aid in self.devices:
                    self._settle(aid)
            found = [dict(self.devices[aid]) for aid in ids if aid in self.devices]
        if not found:
            return self.error(404, f"no devices found for ids {','.join(ids)}")
        return self.envelope(found)

    def query_devices(self, request: Request) -> Response:
        if not self._authorized(request):
            return self.error(401, "access denied, authorization failed")
        limit = int(request.args.get("limit", "100"))
        return self.envelope(sorted(self.devices)[:limit])

    def device_action(self, request: Request) -> Response:
        if not self._authorized(request):
            return self.error(401, "access denied, authorization failed")
        action = request.args.get("action_name", "")
        body = request.get_json(silent=True) or {}
        ids = body.get("ids")
        if action not in NEXT:
            return self.error(400, f"invalid action_name {action!r}")
        if not isinstance(ids, list) or not ids:
            return self.error(400, "ids must be a non-empty list of device ids")
        before, pending, final = NEXT[action]
        with self.lock:
            unknown = [aid for aid in ids if aid not in self.devices]
            if unknown:
                return self.error(404, f"devices not found: {', '.join(unknown)}")
            for aid in ids:
                self._settle(aid)
                if self.devices[aid]["status"] != before:
                    return self.error(
                        409, f"host {aid} is {self.devices[aid]['status']}; cannot {action}"
                    )
            for aid in ids:
                self.devices[aid]["status"] = pending
                self.pending[aid] = (time.time() + self.transition_seconds, final)
        return self.envelope([{"id": aid, "path": ""} for aid in ids], 202)

    def open_session(self, request: Request) -> Response:
        if not self._authorized(request):
            return self.error(401, "access denied, authorization failed")
        aid = (request.get_json(silent=True) or {}).get("device_id", "")
        if aid not in self.devices:
            return self.error(404, f"device {aid} not found")
        session = str(uuid.uuid4())
        with self.lock:
            self.sessions[session] = aid
            self.files[session] = []
        return self.envelope([{"session_id": session, "pwd": "C:\\", "scripts": []}], 201)

    def close_session(self, request: Request) -> Response:
        if not self._authorized(request):
            return self.error(401, "access denied, authorization failed")
        with self.lock:
            found = self.sessions.pop(request.args.get("session_id", ""), None)
        return Response(status=204) if found else self.error(404, "session not found")

    def run_command(self, request: Request) -> Response:
        if not self._authorized(request):
            return self.error(401, "access denied, authorization failed")
        body = request.get_json(silent=True) or {}
        session, command = body.get("session_id", ""), str(body.get("command_string", ""))
        if session not in self.sessions:
            return self.error(404, "session not found or expired")
        if body.get("base_command") != "get" or not command.startswith("get "):
            return self.error(400, "this simulator runs only the `get` command")
        path = command.removeprefix("get ").strip()
        request_id = str(uuid.uuid4())
        with self.lock:
            self.commands[request_id] = {"session": session, "path": path,
                                         "ready_at": time.time() + self.transition_seconds}  # fmt: skip
        return self.envelope(
            [{"cloud_request_id": request_id, "queued_command_offline": False}], 201
        )

    def command_status(self, request: Request) -> Response:
        if not self._authorized(request):
            return self.error(401, "access denied, authorization failed")
        with self.lock:
            command = self.commands.get(request.args.get("cloud_request_id", ""))
            if command is None:
                return self.error(404, "cloud request not found")
            complete = command["ready_at"] <= time.time()
            if complete and not command.get("stored"):
                content = file_content(self.sessions.get(command["session"], ""), command["path"])
                name = command["path"]
                self.files[command["session"]].append(
                    {"name": name, "sha256": hashlib.sha256(content).hexdigest(),
                     "size": len(content), "content": content}
                )  # fmt: skip
                command["stored"] = True
        return self.envelope([{"session_id": command["session"], "complete": complete,
                               "stdout": command["path"] if complete else "", "stderr": ""}])  # fmt: skip

    def list_files(self, request: Request) -> Response:
        if not self._authorized(request):
            return self.error(401, "access denied, authorization failed")
        session = request.args.get("session_id", "")
        with self.lock:
            files = [
                {k: v for k, v in f.items() if k != "content"} for f in self.files.get(session, [])
            ]
        return self.envelope(files)

    def file_contents(self, request: Request) -> Response:
        if not self._authorized(request):
            return self.error(401, "access denied, authorization failed")
        session, sha = request.args.get("session_id", ""), request.args.get("sha256", "")
        with self.lock:
            match = next((f for f in self.files.get(session, []) if f["sha256"] == sha), None)
        if match is None:
            return self.error(404, "file not found in this session")
        # Falcon sends a password-protected 7z archive; the lab sends the bytes as one.
        return Response(
            archive(match["content"]), status=200, content_type="application/x-7z-compressed"
        )


def file_content(aid: str, path: str) -> bytes:
    """The (made-up, repeatable) content of a file on a simulated host."""
    return f"MZ lab file {path} from host {aid}\n".encode() * 64


def archive(content: bytes) -> bytes:
    """What the lab serves for a retrieved file: a 7z signature, then the content."""
    return b"7z\xbc\xaf\x27\x1c" + content
