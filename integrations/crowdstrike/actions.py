"""CrowdStrike Falcon actions: contain and lift containment (waiting for the host to
confirm), look a host up, and fetch a file from it over Real Time Response as evidence."""

from __future__ import annotations

from typing import Any

from integrations.context import ActionContext
from integrations.crowdstrike.client import Falcon
from integrations.errors import PermanentError
from integrations.evidence import keeper
from integrations.polling import DEFAULT_POLL_INTERVAL, DEFAULT_WAIT_TIMEOUT, wait
from integrations.probes import prober
from integrations.registry import action

HOST_FIELDS = ("device_id", "hostname", "status", "platform_name", "os_version", "local_ip",
               "external_ip", "last_seen", "agent_version")  # fmt: skip


def _host(device: dict[str, Any]) -> dict[str, Any]:
    return {name: device[name] for name in HOST_FIELDS if name in device}


def _change_state(ctx: ActionContext, *, device_id: str, action_name: str, pending: str,
                  done: str, wait_done: bool, poll_interval: float,
                  wait_timeout: float) -> dict[str, Any]:  # fmt: skip
    """Ask for `action_name` unless the host is already there or on its way (the vendor
    queues the command; the host's status says when it took effect), then wait for `done`."""
    with Falcon(ctx) as falcon:
        device = falcon.device(device_id)
        status = device.get("status")
        progress = dict(ctx.progress or {"device_id": device_id})
        if status == done:
            return {**_host(device), "requested": bool(progress.get("requested"))}
        if status != pending and not progress.get("requested"):
            # Looked up first, so a repeated attempt never sends the action twice.
            answer = falcon.device_action(action_name, device_id)
            progress["requested"] = True
            progress["conflict"] = answer == 409
            status = pending
        if not wait_done:
            return {**_host(device), "status": status, "requested": bool(progress.get("requested"))}
        raise wait(ctx, progress, poll_interval=poll_interval, wait_timeout=wait_timeout,
                   what=f"host {device_id} to be {done} (it is {status})")  # fmt: skip


@action("crowdstrike.contain_host", plan='contain host {device_id}', side_effect="destructive", idempotent=True,
        connection="crowdstrike", connection_required=True,
        output="the host (`device_id`, `hostname`, `status`: contained, platform, addresses) and `requested`")  # fmt: skip
def contain_host(ctx: ActionContext, *, device_id: str, wait: bool = True,
                 poll_interval: float = DEFAULT_POLL_INTERVAL,
                 wait_timeout: float = DEFAULT_WAIT_TIMEOUT) -> dict[str, Any]:  # fmt: skip
    """Network-contain a host (by its agent id) and wait until Falcon reports it `contained`.

    The host's status is read first: a host already contained or pending containment is
    not asked again. With `wait: false` the step ends once the request is queued.
    """
    return _change_state(ctx, device_id=device_id, action_name="contain",
                         pending="containment_pending", done="contained", wait_done=wait,
                         poll_interval=poll_interval, wait_timeout=wait_timeout)  # fmt: skip


@action("crowdstrike.lift_containment", plan='lift the containment of host {device_id}', side_effect="write", idempotent=True,
        connection="crowdstrike", connection_required=True,
        output="the host (`device_id`, `hostname`, `status`: normal, …) and `requested`")  # fmt: skip
def lift_containment(ctx: ActionContext, *, device_id: str, wait: bool = True,
                     poll_interval: float = DEFAULT_POLL_INTERVAL,
                     wait_timeout: float = DEFAULT_WAIT_TIMEOUT) -> dict[str, Any]:  # fmt: skip
    """Lift a host's network containment and wait until Falcon reports it `normal`."""
    return _change_state(ctx, device_id=device_id, action_name="lift_containment",
                         pending="lift_containment_pending", done="normal", wait_done=wait,
                         poll_interval=poll_interval, wait_timeout=wait_timeout)  # fmt: skip


@action("crowdstrike.get_host", side_effect="read", connection="crowdstrike",
        connection_required=True,
        output="`device_id`, `hostname`, `status`, `platform_name`, `os_version`, `local_ip`, `external_ip`, `last_seen`")  # fmt: skip
def get_host(ctx: ActionContext, *, device_id: str) -> dict[str, Any]:
    """A host's details: hostname, containment status, platform, addresses, last seen."""
    with Falcon(ctx) as falcon:
        return _host(falcon.device(device_id))


@action("crowdstrike.rtr_get_file", plan='fetch {file_path} from host {device_id} over Real Time Response', side_effect="write", idempotent=True,
        connection="crowdstrike", connection_required=True,
        output="the evidence artifact: `artifact_id`, `sha256`, `size`, `filename`, `url`; `vendor_sha256` of the file itself")  # fmt: skip
def rtr_get_file(ctx: ActionContext, *, device_id: str, file_path: str,
                 poll_interval: float = 2.0,
                 wait_timeout: float = 600.0) -> dict[str, Any]:  # fmt: skip
    """Retrieve a file from a host over Real Time Response and keep it as evidence.

    Opens an RTR session, runs `get <file_path>`, waits for the command to complete,
    downloads the retrieved file (Falcon's 7z archive, password `infected`) into the
    artifact store by SHA-256, and closes the session.
    """
    progress = dict(ctx.progress or {})
    with Falcon(ctx) as falcon:
        if "cloud_request_id" not in progress:
            progress["session_id"] = falcon.open_session(device_id)
            progress["cloud_request_id"] = falcon.run_get(progress["session_id"], file_path)
        status = falcon.command_status(progress["cloud_request_id"])
        if not status.get("complete"):
            if status.get("stderr"):
                raise PermanentError(f"RTR get failed on {device_id}: {status['stderr']}",
                                     kind="vendor_error")  # fmt: skip
            raise wait(ctx, progress, poll_interval=poll_interval, wait_timeout=wait_timeout,
                       what=f"RTR get {file_path} on host {device_id}")  # fmt: skip
        session = progress["session_id"]
        found = [f for f in falcon.session_files(session) if f.get("name") == file_path]
        if not found:
            raise PermanentError(f"RTR retrieved no file named {file_path}", kind="not_found")
        listed = found[-1]

        keep = keeper(
            ctx, action="crowdstrike.rtr_get_file",
            filename=f"{file_path.replace(chr(92), '/').rsplit('/', 1)[-1]}.7z",
            default_type="application/x-7z-compressed",
            source=f"crowdstrike.rtr_get_file host {device_id} {file_path}",
            metadata={"device_id": device_id, "file_path": file_path, "vendor_sha256": listed.get("sha256"),
                      "vendor_size": listed.get("size"), "archive": "7z, password infected"},
        )  # fmt: skip

        kept = falcon.download_file(session, str(listed["sha256"]), file_path, keep)
        falcon.close_session(session)
    return {**kept, "device_id": device_id, "file_path": file_path,
            "vendor_sha256": listed.get("sha256")}  # fmt: skip


@prober("crowdstrike")
def check_connection(ctx: ActionContext) -> str:
    """A token from the OAuth2 endpoint proves the client id and secret."""
    with Falcon(ctx) as falcon:
        falcon.call("GET", "devices/queries/devices/v1", params={"limit": 1})
    return "token issued; host query answered"
