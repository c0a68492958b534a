"""CrowdStrike Falcon API: OAuth2 client credentials, the `{meta, resources, errors}`
envelope, host actions and Real Time Response (vendor-apis.md §1.1, §2.2)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx

from integrations.errors import PermanentError, TransientError
from integrations.vendor import VendorAPI, credential, json_body


class FalconError(PermanentError):
    """Falcon refused the request; `code` is its HTTP status."""


class Falcon(VendorAPI):
    integration = "crowdstrike"

    def oauth_token_request(self) -> tuple[str, dict[str, str]]:
        form = {
            "client_id": credential(self.connection, "client_id"),
            "client_secret": credential(self.connection, "client_secret"),
        }
        if member := self.connection.credentials.get("member_cid"):
            form["member_cid"] = str(member)  # an MSSP's child tenant
        return "oauth2/token", form

    def call(self, method: str, path: str, *, expect: tuple[int, ...] = (),
             **kwargs: Any) -> tuple[int, dict[str, Any]]:  # fmt: skip
        """One API call; returns its status and envelope. Statuses in `expect` come back
        to the caller; other errors are raised with the envelope's messages."""
        response = self.request(method, path, expect_status=(*expect, 400, 403, 404, 409), **kwargs)
        envelope = _envelope(response)
        if response.status_code in expect or response.status_code < 300:
            return response.status_code, envelope
        messages = "; ".join(str(e.get("message", e)) for e in envelope.get("errors") or [])
        where = f"{method} {response.request.url.path}"
        raise FalconError(
            self.redacted(
                f"{where} returned HTTP {response.status_code}: {messages or 'no detail'}"
            ),
            kind={404: "not_found", 409: "conflict", 403: "forbidden"}.get(
                response.status_code, "http_status"
            ),
            details={"status_code": response.status_code},
        )

    # -- hosts -------------------------------------------------------------------------
    def device(self, device_id: str) -> dict[str, Any]:
        _, envelope = self.call("GET", "devices/entities/devices/v2", params={"ids": device_id})
        resources = envelope.get("resources") or []
        if not resources:
            raise FalconError(f"host {device_id} was not found", kind="not_found")
        return dict(resources[0])

    def device_action(self, action_name: str, device_id: str) -> int:
        """POST a host action; returns 202, or 409 when the host is already in that state."""
        status, _ = self.call(
            "POST", "devices/entities/devices-actions/v2", params={"action_name": action_name},
            json={"ids": [device_id]}, expect=(409,),
        )  # fmt: skip
        return status

    # -- Real Time Response -------------------------------------------------------------
    def open_session(self, device_id: str) -> str:
        _, envelope = self.call(
            "POST", "real-time-response/entities/sessions/v1",
            json={"device_id": device_id, "queue_offline": False, "origin": "bulwark"},
        )  # fmt: skip
        return str(_first(envelope, "session_id"))

    def run_get(self, session_id: str, file_path: str) -> str:
        _, envelope = self.call(
            "POST", "real-time-response/entities/active-responder-command/v1",
            json={"session_id": session_id, "base_command": "get",
                  "command_string": f"get {file_path}"},
        )  # fmt: skip
        return str(_first(envelope, "cloud_request_id"))

    def command_status(self, cloud_request_id: str) -> dict[str, Any]:
        _, envelope = self.call(
            "GET", "real-time-response/entities/active-responder-command/v1",
            params={"cloud_request_id": cloud_request_id, "sequence_id": 0},
        )  # fmt: skip
        return dict((envelope.get("resources") or [{}])[0])

    def session_files(self, session_id: str) -> list[dict[str, Any]]:
        _, envelope = self.call(
            "GET", "real-time-response/entities/file/v2", params={"session_id": session_id}
        )
        return list(envelope.get("resources") or [])

    def download_file[T](self, session_id: str, sha256: str, filename: str,
                      consume: Callable[[httpx.Response, Iterator[bytes]], T]) -> T:  # fmt: skip
        """Stream a retrieved file (a 7z archive, password `infected`) into `consume`."""
        return self.download(
            "real-time-response/entities/extracted-file-contents/v1", consume,
            params={"session_id": session_id, "sha256": sha256, "filename": filename},
        )  # fmt: skip

    def close_session(self, session_id: str) -> None:
        self.call(
            "DELETE", "real-time-response/entities/sessions/v1",
            params={"session_id": session_id}, expect=(404,),
        )  # fmt: skip


def _envelope(response: httpx.Response) -> dict[str, Any]:
    if response.status_code == 204 or not response.content:
        return {}
    body = json_body(response)
    if not isinstance(body, dict):
        raise TransientError(f"Falcon answered a {type(body).__name__}, not an envelope")
    return body


def _first(envelope: dict[str, Any], field: str) -> Any:
    resources = envelope.get("resources") or []
    if not resources or field not in resources[0]:
        raise PermanentError(f"Falcon's answer has no {field}", kind="vendor_response")
    return resources[0][field]
